"""The pages' side of the audit trail: who is acting in this browser session, and one-line recording.

    from ui.audit import record, record_once
    record(Action.HISTORY_EXPORTED, cases=ids, format="csv", count=len(ids))
    record_once("history-view", row_id, Action.CASE_VIEWED, cases=[row_id], via="history")

Streamlit re-runs a page on every click, so a view is recorded once per thing shown (`record_once`), not once
per re-run. Recording returns at once and never fails the page (storage/audit_trail.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import streamlit as st

from domain.audit import Action, Actor, ActorKind, Outcome
from ui.client import client_address

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"  # AUTH_MODE=off: nobody is signed in


def actor(name: str | None = None) -> Actor:
    """This session's user (or `name`, for a sign-in attempt) from this client's address."""
    try:
        address = client_address()
    except Exception:  # no request in sight (a callback after the tab went away): the event still counts
        address = None
    return Actor(ActorKind.USER, name or st.session_state.get("user") or ANONYMOUS, address)


def record(action: Action, *, cases: Iterable[str] = (), outcome: Outcome = Outcome.SUCCESS, who: Actor | None = None,
           **detail: Any) -> None:
    """Record an audit event of this session's user (or `who`); returns at once, never raises."""
    try:
        import startup

        startup.audit().record(action, who or actor(), outcome=outcome, cases=cases, **detail)
    except Exception as exc:  # the trail is never a reason for a page to fail
        log.error("audit event %s not recorded (%s)", action, type(exc).__name__)


def record_once(slot: str, value: object, action: Action, **kwargs: Any) -> None:
    """`record` when what `slot` shows changed to `value` since this session's last run (a view, a search)."""
    key = f"audit_seen_{slot}"
    if st.session_state.get(key) == value:
        return
    st.session_state[key] = value
    record(action, **kwargs)


def forget_seen(slot: str) -> None:
    """Let `slot` be recorded again the next time it is shown (the reader closed it)."""
    st.session_state.pop(f"audit_seen_{slot}", None)


__all__ = ["ANONYMOUS", "actor", "forget_seen", "record", "record_once"]
