"""Sign-in sessions on the server: what a browser's session cookie stands for, with its idle and absolute limits.

A session id is 256 random bits, known only to the browser (an HttpOnly cookie set by `web/sessions.py`);
the store keeps its SHA-256 (`key`), the user, when it started and was last used, and the client's address
and user agent. A lookup is by key, so a stolen copy of the store opens no session.

- Idle limit (SESSION_TIMEOUT_MINUTES) and absolute limit (SESSION_MAX_HOURS) are checked on every
  look-up; "last seen" is written at most once per `touch_seconds` (a minute, or less for short
  idle limits), not on every page re-run.
- Signing in on the Streamlit form starts a session whose id nobody holds yet, plus a sign-in grant:
  a second random secret, single-use and valid `GRANT_SECONDS`, also stored hashed. The browser trades
  the grant at `/auth/session` for the session id in a cookie; the trade gives the session a new key
  (the cookie's), so the grant and the form's tab key are dead after it.
- An OIDC sign-in has Streamlit's own cookie; `track()` records it by a hash of that cookie, so its
  first and last use are the server's, not the browser tab's.
- A session that ends (sign-out, `cli.py sessions revoke`, a removed account, a new password) is
  marked ended, never deleted at once: an OIDC cookie replayed after its end is not tracked anew.
  Rows are purged `RETAIN_SECONDS` after they started.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa

from storage.schema import sessions
from storage.sign_in_throttle import normalise_address
from storage.store import Store
from storage.upsert import upsert
from utils.settings import Settings

log = logging.getLogger(__name__)

ID_BYTES = 32  # 256 bits: far beyond guessing, as the floor of 128 asks
GRANT_SECONDS = 60.0  # the form's redirect to /auth/session takes well under a second
TOUCH_SECONDS = 60.0
RETAIN_SECONDS = 31 * 86_400.0  # past Streamlit's 30-day OIDC cookie, so an ended one stays refused
MAX_AGENT_CHARS = 300
# The contract between the sign-in form (ui/auth.py) and the routes that hold the cookie (web/sessions.py).
COOKIE_NAME = "skinai_session"
GRANT_PATH = "/auth/session"        # ?grant=…&next=…: trades a grant for the cookie, then goes to `next`
SIGNED_OUT_PATH = "/auth/signed-out"  # ?next=…: forgets a cookie whose session has already ended


class Ended(StrEnum):
    """Why a session key no longer opens the app."""

    UNKNOWN = "unknown"    # never issued, or purged
    REVOKED = "revoked"    # signed out, revoked from the command line, account removed or password changed
    IDLE = "idle"          # unused for longer than the idle limit
    LIFETIME = "lifetime"  # older than the absolute limit


@dataclass(frozen=True)
class Session:
    """One live session as the app sees it; `key` is the hash of its id, never the id."""

    key: str
    user: str
    created_at: float
    last_seen: float
    address: str | None
    agent: str


def session_key(secret: str) -> str:
    """The stored form of a session id or grant: SHA-256, hex. A 256-bit random secret needs no salt."""
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def new_secret() -> str:
    """A fresh random secret (session id or grant), URL- and cookie-safe."""
    return secrets.token_urlsafe(ID_BYTES)


class SessionStore(Protocol):
    """Where sessions live; `SqlSessionStore` is the one implementation (in the app's store, SQLite or PostgreSQL)."""

    def start(self, user: str, *, address: str | None, agent: str) -> Session:
        """A new session for `user`, not yet held by any browser (see `grant`)."""
        ...

    def grant(self, key: str) -> str:
        """A single-use sign-in grant for session `key`, valid GRANT_SECONDS; only its hash is stored."""
        ...

    def redeem(self, grant: str) -> tuple[str, Session] | None:
        """Trade a grant for the session's new id (for the cookie) and the session; None if used, late or unknown."""
        ...

    def track(self, key: str, user: str, *, address: str | None, agent: str) -> Session | Ended:
        """A session keyed by a credential held elsewhere (Streamlit's OIDC cookie): recorded at first sight."""
        ...

    def check(self, key: str, *, touch: bool = True) -> Session | Ended:
        """The live session `key` (with `touch`, its last use noted, cheaply), or why it no longer opens the app."""
        ...

    def revoke(self, key: str) -> bool:
        """End one session by its full key; False when no live session has it."""
        ...

    def revoke_prefix(self, prefix: str) -> list[Session]:
        """End the one live session whose key starts with `prefix` (as `cli.py sessions list` shows it)."""
        ...

    def revoke_user(self, user: str) -> int:
        """End every live session of `user`; how many there were."""
        ...

    def live(self, user: str | None = None) -> list[Session]:
        """Every live session (of `user`), the most recently used first."""
        ...


class AmbiguousPrefix(ValueError):
    """A key prefix matches more than one live session; the message says to type more of it."""


class SqlSessionStore:
    """Sessions in the `sessions` table of `store`.

    `idle_seconds` (SESSION_TIMEOUT_MINUTES) and `max_seconds` (SESSION_MAX_HOURS) bound a session's
    life; `clock` is injectable for tests.
    """

    def __init__(self, store: Store, *, idle_seconds: float = 1800.0, max_seconds: float = 12 * 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.clock = clock
        # Writing "last seen" on every re-run would be a write per click; a quarter of the idle limit keeps
        # the error in the idle check small however short the limit is set.
        self.touch_seconds = min(TOUCH_SECONDS, idle_seconds / 4)

    def start(self, user: str, *, address: str | None, agent: str) -> Session:
        """A new session for `user`, not yet held by any browser (see `grant`)."""
        now = self.clock()
        key = session_key(new_secret())  # the form's tab holds the key; the cookie's id comes with the grant
        session = Session(key, user, now, now, normalise_address(address), agent[:MAX_AGENT_CHARS])
        with self.store.connect() as conn:
            conn.execute(sessions.delete().where(sessions.c.created_at < now - RETAIN_SECONDS))
            conn.execute(sessions.insert().values(_row(session)))
        log.info("session started: %s (session %s)", user, key[:12])
        return session

    def grant(self, key: str) -> str:
        """A single-use sign-in grant for session `key`, valid GRANT_SECONDS; only its hash is stored."""
        secret = new_secret()
        query = (sessions.update().where(sessions.c.key == key, sessions.c.ended.is_(None))
                 .values(grant_key=session_key(secret), grant_until=self.clock() + GRANT_SECONDS))
        with self.store.connect() as conn:
            changed = conn.execute(query).rowcount
        if not changed:
            raise KeyError("no live session has this key")
        return secret

    def redeem(self, grant: str) -> tuple[str, Session] | None:
        """Trade a grant for the session's new id (for the cookie) and the session; None if used, late or unknown."""
        now = self.clock()
        secret = new_secret()
        # One statement: two requests with the same grant cannot both get an id.
        trade = (sessions.update()
                 .where(sessions.c.grant_key == session_key(grant), sessions.c.grant_until >= now,
                        sessions.c.ended.is_(None))
                 .values(key=session_key(secret), grant_key=None, grant_until=None, last_seen=now)
                 .returning(*sessions.c))
        with self.store.connect() as conn:
            row = conn.execute(trade).mappings().first()
        if row is None:
            return None
        session = _session(row)
        if self._limit(session, now) is not None:
            self.revoke(session.key)
            return None
        return secret, session

    def track(self, key: str, user: str, *, address: str | None, agent: str) -> Session | Ended:
        """A session keyed by a credential held elsewhere (Streamlit's OIDC cookie): recorded at first sight."""
        found = self.check(key)
        if found is not Ended.UNKNOWN:
            return found  # the usual case, a read: this runs on every page re-run
        now = self.clock()
        first = Session(key, user, now, now, normalise_address(address), agent[:MAX_AGENT_CHARS])
        with self.store.connect() as conn:  # a parallel re-run of the same tab may have recorded it meanwhile
            conn.execute(upsert(self.store, sessions).values(_row(first)).on_conflict_do_nothing())
        log.info("session started: %s (session %s)", user, key[:12])
        return self.check(key)

    def check(self, key: str, *, touch: bool = True) -> Session | Ended:
        """The live session `key` (with `touch`, its last use noted, cheaply), or why it no longer opens the app.

        `touch=False` for checks that are not the user's doing (a page's timed refresh), so they do not
        keep an unattended session alive.
        """
        now = self.clock()
        with self.store.connect() as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.key == key)).mappings().first()
        if row is None:
            return Ended.UNKNOWN
        if row["ended"] is not None:
            return Ended(row["ended"])
        session = _session(row)
        if (ended := self._limit(session, now)) is not None:
            self._end(key, ended)
            log.info("session ended (%s): %s (session %s)", ended.value, session.user, key[:12])
            return ended
        if touch and now - session.last_seen >= self.touch_seconds:
            with self.store.connect() as conn:
                conn.execute(sessions.update().where(sessions.c.key == key, sessions.c.last_seen < now)
                             .values(last_seen=now))
            session = Session(session.key, session.user, session.created_at, now, session.address, session.agent)
        return session

    def _limit(self, session: Session, now: float) -> Ended | None:
        if now - session.created_at > self.max_seconds:
            return Ended.LIFETIME
        if now - session.last_seen > self.idle_seconds:
            return Ended.IDLE
        return None

    def _end(self, key: str, reason: Ended) -> bool:
        with self.store.connect() as conn:
            return conn.execute(_ending(reason).where(sessions.c.key == key)).rowcount > 0

    def revoke(self, key: str) -> bool:
        """End one session by its full key; False when no live session has it."""
        return self._end(key, Ended.REVOKED)

    def revoke_prefix(self, prefix: str) -> list[Session]:
        """End the one live session whose key starts with `prefix` (as `cli.py sessions list` shows it)."""
        prefix = prefix.strip().lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            return []
        matches = [s for s in self.live() if s.key.startswith(prefix)]
        if len(matches) > 1:
            raise AmbiguousPrefix(f"{len(matches)} sessions start with {prefix!r}: give more of the id.")
        return [s for s in matches if self.revoke(s.key)]

    def revoke_user(self, user: str) -> int:
        """End every live session of `user`; how many there were."""
        query = _ending(Ended.REVOKED).where(sa.func.lower(sessions.c.user) == user.strip().lower())
        with self.store.connect() as conn:
            count = conn.execute(query).rowcount
        if count:
            log.info("sessions ended: %d of %s", count, user.strip())
        return count

    def live(self, user: str | None = None) -> list[Session]:
        """Every live session (of `user`), the most recently used first."""
        now = self.clock()
        query = sa.select(sessions).where(sessions.c.ended.is_(None))
        if user is not None:
            query = query.where(sa.func.lower(sessions.c.user) == user.strip().lower())
        with self.store.connect() as conn:
            rows = conn.execute(query.order_by(sessions.c.last_seen.desc(), sessions.c.key)).mappings().all()
        return [s for s in map(_session, rows) if self._limit(s, now) is None]


def _ending(reason: Ended) -> sa.Update:
    """The UPDATE that ends live sessions for `reason` (a WHERE picks which); their grant dies with them."""
    return (sessions.update().where(sessions.c.ended.is_(None))
            .values(ended=reason.value, grant_key=None, grant_until=None))


def _row(session: Session) -> dict[str, Any]:
    return {"key": session.key, "user": session.user, "created_at": session.created_at,
            "last_seen": session.last_seen, "address": session.address, "agent": session.agent}


def _session(row: sa.RowMapping) -> Session:
    return Session(key=row["key"], user=row["user"], created_at=row["created_at"], last_seen=row["last_seen"],
                   address=row["address"], agent=row["agent"])


def sessions_for(store: Store, settings: Settings) -> SqlSessionStore:
    """The sessions of `store` with the limits of `settings`."""
    return SqlSessionStore(store, idle_seconds=settings.session_timeout_minutes * 60,
                              max_seconds=settings.session_max_hours * 3600)


__all__ = ["AmbiguousPrefix", "COOKIE_NAME", "Ended", "GRANT_PATH", "GRANT_SECONDS", "SIGNED_OUT_PATH", "Session",
           "SessionStore", "SqlSessionStore", "new_secret", "session_key", "sessions_for"]
