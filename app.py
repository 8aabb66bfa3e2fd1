"""The one server: the Streamlit UI (`main.py`) and, beside it, the HTTP routes of `web/`.

    streamlit run app.py

Streamlit finds `app` (an `st.App`, a Starlette application) and serves it: the pages, the
original backend's HTTP API and the operators' endpoints, in one process on one engine.
"""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from web.routes import routes

# `main.py`'s st.navigation is the app's only navigation. Streamlit would otherwise treat the `pages/` folder as
# an old-style multipage app until some session first reaches st.navigation, which a sign-in gate delays: a link
# to /history would run pages/history.py alone, with a navigation made of file names.
PagesManager.uses_pages_directory = False

app = st.App("main.py", routes=routes())
