"""The one server: the Streamlit UI (`main.py`) and, beside it, the HTTP routes of `web/`.

    streamlit run app.py

Streamlit finds `app` (an `st.App`, a Starlette application) and serves it: the pages, the
original backend's HTTP API and the operators' endpoints, in one process on one engine.
"""

import streamlit as st

from web.routes import routes

app = st.App("main.py", routes=routes())
