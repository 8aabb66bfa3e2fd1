"""The audit trail's event: who did what to which cases, when, from where, and how it ended; and its hash.

An event never carries patient text or a photo: its `detail` is a small flat mapping of counts, field names,
filter values and formats (`clean_detail` refuses anything else), and a case is named by its id only. Each
event's `hash` is SHA-256 over the previous event's hash and the event's canonical form (`canonical`), so an
event changed, removed or reordered in the database breaks the chain from there on (storage/audit.py).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

GENESIS = "0" * 64  # the `prev_hash` of the first event ever written
FORMAT_VERSION = 1  # in every canonical form: a later change of the form cannot be mistaken for tampering
MAX_DETAIL_KEYS = 16
MAX_DETAIL_TEXT = 80  # a filter's value or a format; never a description, a finding or a note
MAX_CASES = 10_000  # an export or a purge names at most this many cases; beyond it, the count says how many


class Action(StrEnum):
    """Every kind of event the app records: a closed set, so a list or a filter can name each."""

    SIGN_IN = "sign_in"                      # outcome success or failure (detail: reason)
    SIGN_OUT = "sign_out"
    SESSION_REVOKED = "session.revoked"      # ended by an administrator (detail: user, count)
    CASE_VIEWED = "case.viewed"              # detail: via (history, jobs, api), format
    HISTORY_SEARCHED = "history.searched"    # detail: the filters used (never the words searched for)
    HISTORY_EXPORTED = "history.exported"    # detail: format, count
    LABELLED_SET_EXPORTED = "labelled_set.exported"
    QA_REPORT_EXPORTED = "qa_report.exported"
    CASE_DELETED = "case.deleted"
    HISTORY_PURGED = "history.purged"        # the history's retention (detail: count)
    TOKEN_CREATED = "token.created"          # detail: token (its id), user
    TOKEN_REVOKED = "token.revoked"
    TOKEN_FIRST_USED = "token.first_used"
    USER_ADDED = "user.added"                # detail: user, admin
    USER_REMOVED = "user.removed"
    PASSWORD_SET = "user.password_set"
    ROLE_CHANGED = "user.role_changed"       # detail: user, admin
    REVIEW_RECORDED = "review.recorded"      # detail: verdict
    ARBITRATION_RECORDED = "arbitration.recorded"  # detail: code
    AUDIT_READ = "audit.read"                # the trail itself listed or exported (detail: filters, format)
    AUDIT_PURGED = "audit.purged"            # the anchor of a retention cut (detail: count, through_seq, last_hash)


class Outcome(StrEnum):
    """How the action ended."""

    SUCCESS = "success"
    FAILURE = "failure"


class ActorKind(StrEnum):
    """Who acted: a signed-in user (by name), an API token (by its id, never the token), the command line (the
    operating-system account that ran it), or the app itself (retention)."""

    USER = "user"
    TOKEN = "token"
    CLI = "cli"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who acted and from where: `address` is the client's (None: this machine); `user` the account acted as (a
    token's user; for a user, the same name), so one user's events are found whichever way she came."""

    kind: ActorKind
    id: str
    address: str | None = None
    user: str | None = None

    @property
    def account(self) -> str | None:
        """The account acted as: `user`, or for a signed-in user her own name."""
        return self.user if self.user is not None or self.kind is not ActorKind.USER else self.id


@dataclass(frozen=True)
class AuditEvent:
    """One event; `seq`, `prev_hash` and `hash` are given when it is written into the chain."""

    at: float
    action: Action
    actor: Actor
    outcome: Outcome = Outcome.SUCCESS
    cases: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""

    def sealed(self, seq: int, prev_hash: str) -> AuditEvent:
        """This event as the `seq`-th of the chain, after the event whose hash is `prev_hash`."""
        placed = replace(self, seq=seq, prev_hash=prev_hash, hash="")
        return replace(placed, hash=chain_hash(prev_hash, placed))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form `cli.py audit export --format json` writes: every field, hashes included."""
        return {"seq": self.seq, "at": iso_time(self.at), "action": self.action.value,
                "actor_kind": self.actor.kind.value, "actor": self.actor.id, "user": self.actor.account,
                "address": self.actor.address, "outcome": self.outcome.value, "cases": list(self.cases),
                "detail": dict(self.detail), "prev_hash": self.prev_hash, "hash": self.hash}


def event(action: Action, actor: Actor, *, at: float, outcome: Outcome = Outcome.SUCCESS,
          cases: Iterable[str] = (), **detail: Any) -> AuditEvent:
    """A new event (not yet in the chain): `cases` are assessment ids, `detail` small non-patient facts."""
    return AuditEvent(at=round(at, 6), action=Action(action), actor=actor, outcome=Outcome(outcome),
                      cases=tuple(str(c) for c in cases)[:MAX_CASES], detail=clean_detail(detail))


def clean_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    """`detail` kept to what an audit event may carry: at most `MAX_DETAIL_KEYS` keys, each value a number, a
    flag, None, a short text (cut at `MAX_DETAIL_TEXT`) or a short list of those; a nested mapping (the filters
    of a search) one level deep. Anything else is dropped, so a caller's mistake cannot put a record into it."""
    kept: dict[str, Any] = {}
    for key, value in list(detail.items())[:MAX_DETAIL_KEYS]:
        if isinstance(value, Mapping):
            inner = {str(k)[:40]: v for k, v in ((k, _scalar(v)) for k, v in value.items()) if v is not _DROP}
            kept[str(key)[:40]] = dict(list(inner.items())[:MAX_DETAIL_KEYS])
        elif isinstance(value, list | tuple):
            kept[str(key)[:40]] = [v for v in map(_scalar, value[:MAX_DETAIL_KEYS]) if v is not _DROP]
        elif (one := _scalar(value)) is not _DROP:
            kept[str(key)[:40]] = one
    return kept


_DROP = object()


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _DROP
    if isinstance(value, str):
        return value[:MAX_DETAIL_TEXT]
    return _DROP


def stamp(at: float) -> str:
    """An event's time in its canonical form: seconds since the epoch with six decimals (microseconds)."""
    return f"{at:.6f}"


def iso_time(at: float) -> str:
    """An event's time as ISO 8601 in UTC, to the microsecond (what exports and lists show)."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def canonical(item: AuditEvent) -> str:
    """The exact text the hash covers: every field but the hashes, as sorted, compact JSON (UTF-8)."""
    body = {"v": FORMAT_VERSION, "seq": item.seq, "at": stamp(item.at), "action": item.action.value,
            "actor_kind": item.actor.kind.value, "actor": item.actor.id, "user": item.actor.account,
            "address": item.actor.address, "outcome": item.outcome.value, "cases": list(item.cases),
            "detail": item.detail}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chain_hash(prev_hash: str, item: AuditEvent) -> str:
    """SHA-256 (hex) over the previous event's hash and this event's canonical form."""
    return hashlib.sha256(f"{prev_hash}\n{canonical(item)}".encode()).hexdigest()


__all__ = ["Action", "Actor", "ActorKind", "AuditEvent", "GENESIS", "Outcome", "canonical", "chain_hash",
           "clean_detail", "event", "iso_time", "stamp"]
