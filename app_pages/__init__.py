"""The page scripts `main.py`'s navigation runs (never imported). Not named `pages/`: Streamlit would run such a
folder as its legacy multipage app until a session reaches st.navigation."""
