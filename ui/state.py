"""Session state, initialised once per browser session."""

from __future__ import annotations

import streamlit as st

# The language ("lang") is not here: ui/language.py settles it once per session, from the account, the browser's
# cookie or the browser's own language.
DEFAULTS = {
    "result": None,         # the last Diagnosis shown on the diagnose page
    "error": None,          # the last error (an exception, said in the UI language when drawn)
    "photo": None,          # ui.photo's slot: the shrunk photo (or why it was refused) and where it came from
    # Sign-in (ui/auth.py): who, whether an administrator, the server session's key (storage/sessions.py).
    "user": None,
    "is_admin": False,
    "auth_session": None,
}


def init_state() -> None:
    """Put every key the pages read into `st.session_state`, once."""
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
