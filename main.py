"""The Streamlit script: page set-up, session state, language, sign-in and navigation (served by app.py)."""

import logging

import streamlit as st

from ui import plain
from ui.a11y import accessible_styles
from ui.auth import account_sidebar, is_admin, require_sign_in
from ui.i18n import lang, t
from ui.language import keep_in_page, settle_language, tab_title
from ui.mobile import thumb_sized_controls
from ui.sidebar import language_picker
from ui.state import init_state
from ui.streamlit_words import streamlit_words
from utils.settings import SettingsError, get_settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

# The tab's title is each page's own, in the reader's language (set below, once the page is known).
st.set_page_config(page_icon=":material/dermatology:", layout="wide")
thumb_sized_controls()
accessible_styles()
init_state()
settle_language()  # once per session: this browser's last choice, else the language it asks for
language_picker()
drawn_in = lang()
keep_in_page()  # <html lang> and the browser's cookie
streamlit_words()  # Streamlit's own English (its hints, placeholders, aria-labels) in the reader's language

try:
    get_settings()
except SettingsError as exc:  # a typo in .env must say which variable, not crash the app
    st.set_page_config(page_title=tab_title(t("error.settings")))
    plain.alert("error", str(exc), title=t("error.settings"), icon=":material/settings:")  # quotes .env values
    st.stop()

# Nothing below (no page, no navigation) is drawn until the session is signed in (AUTH_MODE).
require_sign_in()
if lang() != drawn_in:  # the gate has just opened a session in the user's own language: draw it all in that one
    st.rerun()
account_sidebar()

PAGES = [
    ("app_pages/diagnose.py", "nav.diagnose", ":material/dermatology:"),
    ("app_pages/jobs.py", "nav.jobs", ":material/work_history:"),
    ("app_pages/history.py", "nav.history", ":material/history:"),
    ("app_pages/qa.py", "nav.qa", ":material/fact_check:"),
    ("app_pages/performance.py", "nav.performance", ":material/speed:"),
]
if is_admin():  # the audit trail names every user's actions: administrators only (with AUTH_MODE=off, nobody is one)
    PAGES.append(("app_pages/audit.py", "nav.audit", ":material/policy:"))
page = st.navigation([st.Page(path, title=t(title), icon=icon, default=(i == 0))
                      for i, (path, title, icon) in enumerate(PAGES)])
st.set_page_config(page_title=tab_title(page.title))
page.run()
