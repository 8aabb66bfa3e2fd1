"""Who is calling: `Authorization: Bearer <token>`, checked against the store, and the token's rate.

A token acts as its user. Whose cases that user may see follows the History page:
- AUTH_MODE=accounts: the user must still have an account (a removed user's tokens stop
  working, and so do tokens older than an account later made again under the same name);
  an administrator sees everyone's cases, anyone else their own;
- AUTH_MODE=oidc: the administrators are ADMIN_USERS (there is no account list to check);
- AUTH_MODE=off: every page shows everything to anyone, and so does the API (a token is still needed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

import startup
from domain.audit import Action, Actor, ActorKind, Outcome
from storage.accounts import AccountStore
from storage.database import StoreUnavailable
from storage.sign_in_throttle import normalise_address
from storage.tokens import MISSING, TokenRejected
from utils.settings import get_settings
from web.api.errors import ApiError, retry_after
from web.api.limits import RateLimiter

log = logging.getLogger(__name__)

# Per process, in memory (see limits.py).
RATE = RateLimiter(lambda: get_settings().api_rate_per_minute)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="api"'}


@dataclass(frozen=True)
class Caller:
    """The user a request acts as, whether they see everyone's cases, and the token it came with."""

    user: str
    admin: bool
    token_id: str
    address: str | None = None  # the client's (TRUSTED_PROXY_HOPS as for the pages)
    first_use: bool = False     # this request is the token's first

    @property
    def actor(self) -> Actor:
        """Who the audit trail says acted: the token (by its id, never the token), as its user, from `address`."""
        return Actor(ActorKind.TOKEN, self.token_id, self.address, self.user)

    def audit(self, action: Action, *, cases: Iterable[str] = (), outcome: Outcome = Outcome.SUCCESS,
              **detail: Any) -> None:
        """Record an audit event of this call (returns at once; never fails the request)."""
        startup.audit().record(action, self.actor, outcome=outcome, cases=cases, **detail)

    @property
    def owner(self) -> str | None:
        """Whose cases and jobs this caller sees: None for everyone's (an administrator)."""
        return None if self.admin else self.user

    def may_see(self, owner: str | None) -> bool:
        """Whether a case or job recorded under `owner` is this caller's to read or delete."""
        return self.admin or (owner or "").casefold() == self.user.casefold()


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, headers=_CHALLENGE)


def bearer(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; `ApiError` 401 when there is none."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise _unauthorized(str(TokenRejected(MISSING)))
    return value.strip()


def identify(token: str) -> Caller:
    """The caller a token stands for (blocking: reads the store); `ApiError` 401 when it stands for none.

    A database that is down or too slow is a 503 `busy` with Retry-After: the token may well be good.
    """
    try:
        return _identify(token)
    except StoreUnavailable:
        log.warning("API request refused: the store is unavailable")
        raise ApiError(503, "busy", "The sign-in database is unavailable: try again in a few seconds; if it keeps "
                       "failing, tell the administrator.", headers=retry_after(None, 5)) from None


def _identify(token: str) -> Caller:
    settings = get_settings()
    try:
        record = startup.tokens().check(token)
    except TokenRejected as exc:
        raise _unauthorized(str(exc)) from None
    first = record.last_used_at is None  # storage/tokens.py: None only for the one request that used it first
    if settings.auth_mode == "off":
        return Caller(record.user, True, record.id, first_use=first)
    if settings.auth_mode == "oidc":
        return Caller(record.user, record.user.casefold() in settings.admin_users, record.id, first_use=first)
    accounts: AccountStore = startup.accounts()
    user = accounts.get_user(record.user)
    if user is None or user.created_at > record.created_at:
        raise _unauthorized("This API token's user no longer has an account: ask an administrator for a token of "
                            "a current user (python cli.py tokens add USER).")
    return Caller(user.name, user.is_admin, record.id, first_use=first)


def client_of(request: Request) -> str | None:
    """The client's address: the connection's, or behind TRUSTED_PROXY_HOPS proxies the one they forwarded."""
    from ui.client import forwarded_client  # the pages' own rule, so the trail names a client the same way

    hops = get_settings().trusted_proxy_hops
    if hops and (forwarded := forwarded_client(request.headers.getlist("x-forwarded-for"), hops)):
        return forwarded
    return normalise_address(request.client.host if request.client else None)


async def caller_of(request: Request) -> Caller:
    """The caller of `request`, counted against its token's rate (401 or 429 as `ApiError`)."""
    caller = await run_in_threadpool(identify, bearer(request.headers.get("authorization")))
    caller = replace(caller, address=client_of(request))
    if caller.first_use:
        caller.audit(Action.TOKEN_FIRST_USED, token=caller.token_id, path=request.url.path[:80])
    RATE.take(caller.token_id)
    return caller


__all__ = ["Caller", "RATE", "bearer", "caller_of", "identify"]
