"""A signed-in clinician keeps working while the database is down, for a bounded time.

The sign-in gate checks the session in the database on every script run. When the database is
down, that check cannot be made; refusing would send the clinician to the sign-in form, and the
page's widgets, not drawn in that run, would lose what was typed. The README promises instead that
assessments go on, each "Not recorded". So each successful check remembers, in the browser session,
until when this session would stay valid by its own limits as known then: the idle limit from that
check (SESSION_TIMEOUT_MINUTES) and the absolute limit from sign-in (SESSION_MAX_HOURS), whichever
comes first. While the database cannot be reached, a session inside that bound stays signed in,
with a notice; past it, or with no successful check in this tab, the sign-in form says why as before.
A revocation made meanwhile (sign-out elsewhere, `cli.py sessions revoke`) applies at the first
check after the database is back.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from storage.sessions import Session
from ui.i18n import t
from utils.settings import Settings

GRACE_KEY = "auth_checked"  # {"key", "user", "until"}: the last successful check of this tab's session


def remember(session: Session, user: str, settings: Settings) -> None:
    """After a successful check of `session` for `user`: until when it may go on unchecked."""
    now = time.time()
    until = min(now + settings.session_timeout_minutes * 60, session.created_at + settings.session_max_hours * 3600)
    st.session_state[GRACE_KEY] = {"key": session.key, "user": user, "until": until}


def still_signed_in() -> str | None:
    """The user of this tab's session when the database cannot check it but its last check still holds, else None."""
    found: Any = st.session_state.get(GRACE_KEY)
    user = st.session_state.get("user")
    if not isinstance(found, dict) or not user:
        return None
    if found.get("key") != st.session_state.get("auth_session") or found.get("user") != user:
        return None
    return user if time.time() < float(found.get("until", 0.0)) else None


def notice() -> None:
    """Say that the app works on without recording (assessments answer; nothing is kept until it is back)."""
    st.warning(t("auth.store_down_grace"), icon=":material/cloud_off:")


__all__ = ["GRACE_KEY", "notice", "remember", "still_signed_in"]
