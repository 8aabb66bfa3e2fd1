"""Streamlit building blocks the pages share: strings, session state, the result card."""
