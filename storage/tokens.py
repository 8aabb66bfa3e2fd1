"""Bearer tokens of the HTTP API: made by `cli.py tokens add`, checked on every API request.

A token is 256 random bits, shown once when it is made; the store keeps only its SHA-256
(a token is not a password: it has far too much entropy to be guessed from a fast hash, so
scrypt would only cost every request time). A token acts as its user: what it submits is
recorded under that user's name. Revoking and expiry are permanent; `last_used_at` is
written at most once a minute, so a busy integration does not write on every request.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import sqlalchemy as sa

from storage.schema import api_tokens
from storage.store import Store, new_id

log = logging.getLogger(__name__)

PREFIX = "skai_"  # tells a leaked token apart from other secrets in a log or a scanner's findings
TOKEN_BYTES = 32
MAX_NAME_CHARS = 80
MAX_TOKEN_CHARS = 200  # far above a real token (48 characters); longer is refused unhashed
TOUCH_EVERY_SECONDS = 60.0

MISSING, UNKNOWN, REVOKED, EXPIRED = "missing", "unknown", "revoked", "expired"


class TokenRejected(Exception):
    """A token cannot be used; `reason` is MISSING, UNKNOWN, REVOKED or EXPIRED (the message says what to do)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__({
            MISSING: "No API token was sent: send the header 'Authorization: Bearer <token>' "
                     "(an administrator makes one with: python cli.py tokens add USER).",
            UNKNOWN: "This API token is not valid: check that it was copied whole, or ask for a new one "
                     "(python cli.py tokens add USER).",
            REVOKED: "This API token was revoked: ask an administrator for a new one (python cli.py tokens add USER).",
            EXPIRED: "This API token has expired: ask an administrator for a new one (python cli.py tokens add USER).",
        }[reason])


@dataclass(frozen=True)
class ApiToken:
    """One token as the app sees it; the token itself is never kept, only its hash."""

    id: str
    user: str
    name: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None

    def state(self, now: float) -> str:
        """'active', REVOKED or EXPIRED at `now`."""
        if self.revoked_at is not None:
            return REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return EXPIRED
        return "active"


def digest(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore(Protocol):
    """Where API tokens are kept; `SqlTokenStore` is the one implementation (the app's store, SQLite or PostgreSQL)."""

    def add(self, user: str, *, name: str = "", expires_days: float | None = None) -> tuple[ApiToken, str]:
        """Make a token for `user`; returns its record and the token itself (to show once, never stored)."""

    def check(self, token: str) -> ApiToken:
        """The record of a usable token, else `TokenRejected`; marks it used."""

    def list(self, *, user: str | None = None) -> list[ApiToken]:
        """Every token (one user's, when given), newest first."""

    def revoke(self, token_id: str) -> ApiToken | None:
        """Revoke a token for good; returns its record, None when no token has this id."""


def _token(row: sa.RowMapping) -> ApiToken:
    return ApiToken(id=row["id"], user=row["user"], name=row["name"], created_at=row["created_at"],
                    expires_at=row["expires_at"], revoked_at=row["revoked_at"], last_used_at=row["last_used_at"])


class SqlTokenStore:
    """The `api_tokens` table of the app's store."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def add(self, user: str, *, name: str = "", expires_days: float | None = None) -> tuple[ApiToken, str]:
        """Make a token for `user` (checked by the caller); ValueError for a label or lifetime the app refuses."""
        name = " ".join(name.split())
        if len(name) > MAX_NAME_CHARS:
            raise ValueError(f"A token's label has at most {MAX_NAME_CHARS} characters; this one has {len(name)}.")
        if expires_days is not None and not 0 < expires_days <= 3650:
            raise ValueError("A token's lifetime is 1 to 3650 days; leave --expires-days out for a token that "
                             "lasts until it is revoked.")
        secret = PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        stamp = self.clock()
        record = ApiToken(id=new_id(), user=user, name=name, created_at=stamp,
                          expires_at=None if expires_days is None else stamp + expires_days * 86400,
                          revoked_at=None, last_used_at=None)
        with self.store.connect() as conn:
            conn.execute(api_tokens.insert().values(id=record.id, token_hash=digest(secret), user=user, name=name,
                                                    created_at=stamp, expires_at=record.expires_at))
        log.info("API token %s added for %s", record.id, user)
        return record, secret

    def check(self, token: str) -> ApiToken:
        """The record of a usable token, else `TokenRejected`; `last_used_at` is refreshed once a minute at most.

        The record is as it was before this use: `last_used_at` None means this call is the token's first use.
        """
        token = token.strip()
        if not token:
            raise TokenRejected(MISSING)
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRejected(UNKNOWN)
        with self.store.connect() as conn:
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == digest(token))).mappings().first()
        if row is None:
            raise TokenRejected(UNKNOWN)
        record = _token(row)
        now = self.clock()
        state = record.state(now)
        if state != "active":
            raise TokenRejected(state)
        if record.last_used_at is None:
            # The first use, exactly once however many requests come at once: the one whose UPDATE found it unused
            # returns `last_used_at` None (the audit trail's "first used" event); the others, the time it got.
            with self.store.connect() as conn:
                first = conn.execute(api_tokens.update().where(api_tokens.c.id == record.id,
                                                               api_tokens.c.last_used_at.is_(None))
                                     .values(last_used_at=now)).rowcount
            return record if first else replace(record, last_used_at=now)
        if now - record.last_used_at >= TOUCH_EVERY_SECONDS:
            with self.store.connect() as conn:
                conn.execute(api_tokens.update().where(api_tokens.c.id == record.id).values(last_used_at=now))
        return record

    def list(self, *, user: str | None = None) -> list[ApiToken]:
        """Every token (one user's, when given), newest first."""
        query = sa.select(api_tokens).order_by(api_tokens.c.created_at.desc(), api_tokens.c.id)
        if user is not None:
            query = query.where(sa.func.lower(api_tokens.c.user) == user.lower())
        with self.store.connect() as conn:
            return [_token(r) for r in conn.execute(query).mappings()]

    def revoke(self, token_id: str) -> ApiToken | None:
        """Revoke a token for good (revoking twice keeps the first time); None when no token has this id."""
        token_id = token_id.strip()
        with self.store.connect() as conn:
            conn.execute(api_tokens.update().where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                         .values(revoked_at=self.clock()))
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).mappings().first()
        if row is not None:
            log.info("API token %s revoked", row["id"])
        return _token(row) if row else None


__all__ = ["ApiToken", "EXPIRED", "MISSING", "PREFIX", "REVOKED", "SqlTokenStore", "TokenRejected", "TokenStore",
           "UNKNOWN", "digest"]
