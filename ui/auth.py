"""The sign-in gate: nothing of the app shows until the session is signed in (AUTH_MODE).

- `accounts` (the default): the app's own accounts (`storage/accounts.py`, made with
  `python cli.py users add`); a form, growing waits for a client address that keeps failing
  and for an account that keeps failing from devices that never signed in to it; no lock-out
  (`storage/sign_in_throttle.py`, the device cookie in `storage/devices.py`). A right
  password starts a server session (`storage/sessions.py`) and sends the browser once through
  `/auth/session` (`web/sessions.py`), which sets the HttpOnly session cookie: a reload, a new tab
  or a link then opens the app directly. Every script run checks the session on the server (the
  tab's own, else the cookie's), so a sign-out in one tab, `cli.py sessions revoke` or a removed
  account ends every tab at its next click; it also ends after SESSION_TIMEOUT_MINUTES idle and
  SESSION_MAX_HOURS after sign-in. Failures are counted by the client's address (`ui/client.py`).
  A database that is down shows a message on the form; a tab checked lately goes on (ui/auth_grace.py).
- `oidc`: Streamlit's built-in OpenID Connect sign-in (`st.login`), configured in
  `.streamlit/secrets.toml` `[auth]`; administrators are the e-mail addresses in ADMIN_USERS.
  Streamlit's cookie is tracked in the same session store (by its hash), so the same idle and
  absolute limits hold across reloads and tabs; at either, `st.logout()`.
- `off`: no gate, for development and tests; the sidebar says so.

`main.py` calls `require_sign_in()` before the navigation, and every page calls
`ensure_signed_in()` on its first line: AppTest runs a page of the `app_pages/` folder without
`main.py` on a re-run (the server does not: `app.py` turns Streamlit's old pages-folder mode off,
so a link to `/jobs` runs `main.py`, gate and navigation included). The session keeps `user`,
`is_admin` and `auth_session` (the server session's key, never its id); the typed password is
dropped from it as soon as it is checked.
"""

from __future__ import annotations

import html
import importlib.util
import logging
import math
import time
from urllib.parse import urlencode, urlsplit

import streamlit as st

from domain.audit import Action, Outcome
from storage.accounts import AccountLocked, AccountStore, AccountThrottled, TooManyAttempts, WrongCredentials
from storage.database import StoreUnavailable
from storage.devices import DEVICE_COOKIE
from storage.sessions import (
    COOKIE_NAME,
    GRANT_PATH,
    SIGNED_OUT_PATH,
    Ended,
    Session,
    SessionStore,
    new_secret,
    session_key,
)
from ui import auth_grace as grace
from ui import language, plain
from ui.audit import actor, record
from ui.client import client_address, forwarded_client, user_agent
from ui.i18n import t
from ui.state import init_state
from utils.settings import get_settings

log = logging.getLogger(__name__)

# Session keys that survive signing out: the language stays the browser's until the next user's own applies.
KEEP_ON_SIGN_OUT = ("lang", "lang_picker", language.SOURCE)
SETUP_COMMAND = ".venv/bin/python cli.py users add YOUR-NAME --admin --password-stdin"


def require_sign_in() -> str | None:
    """Stop this script run unless the session is signed in; returns the user (None when sign-in is off).

    Checked on every run: an idle session (SESSION_TIMEOUT_MINUTES) or a removed account is
    signed out here, with a message on the sign-in screen.
    """
    init_state()  # a page served without app.py reads the same keys
    mode = get_settings().auth_mode
    if mode == "off":
        return st.session_state.get("user")
    if mode == "oidc":
        return _oidc_gate()
    return _accounts_gate()


def ensure_signed_in() -> None:
    """The first line of every page: the same gate, so no page can be reached around `app.py`."""
    require_sign_in()


def session_still_valid() -> bool:
    """False once the session should show the sign-in screen (for code that re-runs without the gate).

    Does not count as activity: a page's timed refresh must not keep an unattended session alive.
    """
    if get_settings().auth_mode == "off":
        return True
    key = st.session_state.get("auth_session")
    if not (key and st.session_state.get("user")):
        return False
    try:
        return isinstance(_sessions().check(key, touch=False), Session)
    except StoreUnavailable:
        return grace.still_signed_in() is not None  # unverifiable: its last check holds for a while (auth_grace.py)


def visible_owner() -> str | None:
    """Whose jobs and history this session may see: None for everyone's (an admin, or sign-in off)."""
    if st.session_state.get("is_admin"):
        return None
    return st.session_state.get("user")


def is_admin() -> bool:
    """Whether the signed-in user is an administrator."""
    return bool(st.session_state.get("is_admin"))


def account_sidebar() -> None:
    """Who is signed in and the sign-out button; with sign-in off, a warning instead."""
    mode = get_settings().auth_mode
    if mode == "off":
        st.sidebar.warning(t("auth.off"), icon=":material/no_encryption:")
        return
    user = st.session_state.get("user")
    if not user:
        return
    role = t("auth.admin") if is_admin() else ""
    st.sidebar.caption(t("auth.signed_in_as", user=user, role=role))
    st.sidebar.button(t("auth.sign_out"), key="sign_out", icon=":material/logout:", on_click=_sign_out, args=(mode,))


# -- session ---------------------------------------------------------------------------------

def _sessions() -> SessionStore:
    import startup  # the engine's store, without building the engine: migrated once per process

    return startup.sessions()


def _clear_session() -> None:
    # The next person at this browser must not find the last one's case, result or jobs.
    for key in list(st.session_state.keys()):
        if key not in KEEP_ON_SIGN_OUT:
            del st.session_state[key]
    init_state()


def _start_session(user: str, admin: bool, key: str) -> None:
    _clear_session()
    st.session_state.user = user
    st.session_state.is_admin = admin
    st.session_state.auth_session = key
    language.signed_in_as(user)  # her own language, stored with her account, wherever she signs in


def _cookie(name: str) -> str | None:
    """A cookie of the request that opened this tab's connection (none under AppTest)."""
    value = st.context.cookies.get(name)
    return value if isinstance(value, str) and value else None


def _cookie_key() -> str | None:
    """The key of the session this browser's cookie names (as the page was loaded), or None."""
    secret = _cookie(COOKIE_NAME)
    return session_key(secret) if secret else None


def _end_session(notice: str | None) -> None:
    _clear_session()
    if notice:
        st.session_state.auth_notice = notice
    # The page's cookie names an ended session from now on: not checked again, nor announced twice.
    st.session_state.auth_dead_cookie = _cookie_key()


def _keep_alive(user: str, admin: bool) -> None:
    st.session_state.user = user
    st.session_state.is_admin = admin  # a change made with `cli.py users set-admin` applies at once


def _ended_notice(reason: Ended) -> str:
    settings = get_settings()
    if reason is Ended.IDLE:
        return t("auth.idle", minutes=settings.session_timeout_minutes)
    if reason is Ended.LIFETIME:
        return t("auth.lifetime", hours=settings.session_max_hours)
    return t("auth.ended")


def _current_session() -> Session | None:
    """The live server session of this tab (its own, else the cookie's), or None with the reason on screen."""
    sessions = _sessions()
    key = st.session_state.get("auth_session")
    if key:  # signed in in this tab: newer than the cookie the page was loaded with
        found = sessions.check(key)
        if isinstance(found, Session):
            return found
        log.info("session ended (%s): %s", found.value, st.session_state.get("user"))
        _end_session(_ended_notice(found))
        return None
    if st.session_state.get("user"):
        _end_session(None)  # a name without a server session opens nothing
    key = _cookie_key()
    if key is None or key == st.session_state.get("auth_dead_cookie"):
        return None
    found = sessions.check(key)
    if isinstance(found, Ended):
        _end_session(_ended_notice(found) if found is not Ended.UNKNOWN else None)
        return None
    _start_session(found.user, False, key)  # a reload, a new tab or a link of a signed-in browser
    return found


def _go(path: str, **query: str) -> None:
    """Send the browser to `path` on this site: a meta refresh, which needs no JavaScript of the app's own."""
    target = html.escape(f"{path}?{urlencode(query)}", quote=True)
    st.markdown(f'<meta http-equiv="refresh" content="0; url={target}">', unsafe_allow_html=True)


def _here() -> str:
    """This tab's path and query, where the browser returns after the cookie is set."""
    path = urlsplit(st.context.url or "").path or "/"
    query = st.query_params.to_dict()
    return f"{path}?{urlencode(query)}" if query else path


def _sign_out(mode: str) -> None:
    """The sign-out button's callback: runs before the next script run, so that run is already signed out.

    Ends the server session, so every tab of this browser shows the sign-in form at its next click.
    """
    log.info("signed out: %s", st.session_state.get("user"))
    record(Action.SIGN_OUT, method=mode)
    if key := st.session_state.get("auth_session"):
        _sessions().revoke(key)
    _end_session(t("auth.signed_out"))
    if mode == "oidc":
        st.logout()
    elif _cookie_key() is not None:
        st.session_state.auth_forget_cookie = True


def _sign_in_title() -> None:
    st.set_page_config(page_title=language.tab_title(t("auth.sign_in")))
    st.title(t("auth.sign_in"))


def _show_notice() -> None:
    if notice := st.session_state.get("auth_notice"):
        st.info(notice, icon=":material/info:")


# -- accounts --------------------------------------------------------------------------------

def _accounts() -> AccountStore:
    import startup  # the engine's store, without building the engine: migrated once per process

    return startup.accounts()


def _store_down(exc: StoreUnavailable) -> None:
    """Say on the form that sign-in cannot be checked now (the database's address goes to the log only)."""
    log.error("sign-in unavailable: %s", exc)
    st.session_state.auth_error = t("auth.store_down")


def _signed_in(accounts: AccountStore) -> str | None:
    """The user of this tab's live session, whose account still exists; None shows the form."""
    if (session := _current_session()) is None:
        return None
    current = accounts.get_user(session.user)
    if current is None:
        _sessions().revoke(session.key)
        _end_session(t("auth.removed"))
        return None
    _keep_alive(current.name, current.is_admin)
    grace.remember(session, current.name, get_settings())  # how long it may go on while the database is down
    if grant := st.session_state.pop("auth_grant", None):
        _go(GRANT_PATH, grant=grant, next=_here())  # the cookie, so a reload stays signed in
    return current.name


def _accounts_gate() -> str:
    accounts = _accounts()
    try:
        if (user := _signed_in(accounts)) is not None:
            return user
        has_users = accounts.has_users()
    except StoreUnavailable as exc:  # nothing opens unchecked, but a session checked lately goes on (auth_grace.py)
        if (user := grace.still_signed_in()) is not None:
            grace.notice()
            return user
        _store_down(exc)
        has_users = True
    if st.session_state.pop("auth_forget_cookie", False):
        _go(SIGNED_OUT_PATH, next=_here())
    _sign_in_title()
    _show_notice()
    if not has_users:
        _setup_message()
    else:
        _sign_in_form()
    st.stop()
    raise AssertionError("st.stop() returns only outside a script run")


def _setup_message() -> None:
    # Never open access because nobody can sign in yet: say how to create the first account.
    st.warning(t("auth.no_users"), icon=":material/person_add:")
    plain.block(SETUP_COMMAND)
    st.caption(t("auth.no_users_then"))


def _sign_in_form() -> None:
    with st.form("login_form"):
        st.text_input(t("auth.user_name"), key="login_name", autocomplete="username", max_chars=64)
        st.text_input(t("auth.password"), type="password", key="login_password",
                      autocomplete="current-password", max_chars=1024)
        st.form_submit_button(t("auth.sign_in"), key="login_submit", type="primary", icon=":material/login:",
                              on_click=_submit)
    if error := st.session_state.pop("auth_error", None):
        st.error(error, icon=":material/lock:")


def _wait_text(seconds: float) -> str:
    if seconds < 120:
        return t("auth.wait_seconds", n=max(1, math.ceil(seconds)))
    return t("auth.wait_minutes", n=math.ceil(seconds / 60))


def _submit() -> None:
    """The form's callback: checks the name and password before the run that draws the next screen."""
    name = (st.session_state.get("login_name") or "").strip()
    password = st.session_state.get("login_password") or ""
    if not name or not password:
        st.session_state.auth_error = t("auth.missing_fields")
        return
    failed = actor(name)  # the name typed (never the password), from this client
    try:
        user = _accounts().verify(name, password, client_address(), device=_cookie(DEVICE_COOKIE))
        sessions = _sessions()
        session = sessions.start(user.name, address=client_address(), agent=user_agent())
        grant = sessions.grant(session.key)
    except StoreUnavailable as exc:
        record(Action.SIGN_IN, who=failed, outcome=Outcome.FAILURE, method="accounts", reason="store_down")
        _store_down(exc)
    except AccountThrottled as exc:  # before TooManyAttempts, its parent: the name's wait, not the address's
        record(Action.SIGN_IN, who=failed, outcome=Outcome.FAILURE, method="accounts", reason="account_throttled")
        st.session_state.auth_error = t("auth.account_throttled", wait=_wait_text(exc.wait_seconds))
    except TooManyAttempts as exc:
        record(Action.SIGN_IN, who=failed, outcome=Outcome.FAILURE, method="accounts", reason="address_throttled")
        st.session_state.auth_error = t("auth.too_many_address", wait=_wait_text(exc.wait_seconds))
    except AccountLocked as exc:
        record(Action.SIGN_IN, who=failed, outcome=Outcome.FAILURE, method="accounts", reason="locked")
        minutes = max(1, round((exc.until - time.time()) / 60))
        st.session_state.auth_error = t("auth.locked",
            until=time.strftime("%H:%M", time.localtime(exc.until)), minutes=minutes)
    except WrongCredentials as exc:
        record(Action.SIGN_IN, who=failed, outcome=Outcome.FAILURE, method="accounts", reason="wrong_credentials")
        wrong = t("auth.wrong")
        if exc.retry_at is not None:
            wrong += " " + t("auth.retry_wait", wait=_wait_text(exc.retry_at - time.time()))
        st.session_state.auth_error = wrong
    else:
        _start_session(user.name, user.is_admin, session.key)  # also drops the typed password from the session
        st.session_state.auth_grant = grant
        record(Action.SIGN_IN, who=actor(user.name), method="accounts", admin=user.is_admin)


# -- OpenID Connect --------------------------------------------------------------------------

def admin_users() -> set[str]:
    """ADMIN_USERS (environment, else `.env`): the comma-separated e-mails that are administrators in oidc mode."""
    return set(get_settings().admin_users)


def _authlib_installed() -> bool:
    return importlib.util.find_spec("authlib") is not None


def _oidc_problem() -> str | None:
    """What is missing before `st.login()` can work, or None."""
    if not _authlib_installed():
        return t("auth.no_authlib")
    try:
        section = st.secrets.get("auth")
    except Exception:  # no secrets.toml at all, or one that does not parse
        section = None
    needed = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")
    missing = [key for key in needed if not section or key not in section]
    if missing:
        return t("auth.secrets_missing", keys=", ".join(missing))
    return None


def _oidc_key() -> str:
    """The session key of this OIDC sign-in: a hash of Streamlit's identity cookie (new at each sign-in).

    A large identity cookie comes in chunks (`_streamlit_user`, `_streamlit_user__1`, ...): all are hashed,
    as the sign-in's time may sit in a later one. Without the cookie in sight (AppTest), a key of this tab's own.
    """
    names = ["_streamlit_user", *(f"_streamlit_user__{n}" for n in range(1, 20))]
    if chunks := [chunk for name in names if (chunk := _cookie(name))]:
        return session_key("oidc:" + "|".join(chunks))
    return st.session_state.get("auth_session") or session_key(new_secret())


def _oidc_gate() -> str:
    info = st.user
    if info.get("is_logged_in", False):
        # Unverified addresses must not match ADMIN_USERS: some providers let anyone claim one.
        email = str(info.get("email") or "").strip().lower() if info.get("email_verified", True) else ""
        name = email or str(info.get("name") or "").strip()
        if not name:
            st.error(t("auth.no_identity"), icon=":material/error:")
            st.button(t("auth.sign_out"), key="sign_out", on_click=_sign_out, args=("oidc",))
            st.stop()
        admin = bool(email) and email in admin_users()
        key = _oidc_key()
        found = _sessions().track(key, name, address=client_address(), agent=user_agent())
        if isinstance(found, Ended):
            log.info("session ended (%s): %s", found.value, name)
            _end_session(_ended_notice(found))
            st.logout()  # also forgets the identity cookie, or the next run would sign straight in again
            st.stop()
        if st.session_state.get("user") != name or st.session_state.get("auth_session") != key:
            _start_session(name, admin, key)  # a new browser session of a signed-in identity
            log.info("signed in: %s", name)
            record(Action.SIGN_IN, who=actor(name), method="oidc", admin=admin)
            return name
        _keep_alive(name, admin)
        return name
    _sign_in_title()
    if problem := _oidc_problem():
        st.error(problem, icon=":material/settings:")
        st.stop()
    _show_notice()
    st.button(t("auth.oidc_sign_in"), key="oidc_login", type="primary", icon=":material/login:", on_click=st.login)
    st.stop()
    raise AssertionError("st.stop() returns only outside a script run")


__all__ = ["require_sign_in", "ensure_signed_in", "visible_owner", "is_admin", "account_sidebar", "admin_users",
           "client_address", "forwarded_client"]
