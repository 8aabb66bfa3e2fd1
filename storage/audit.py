"""The audit trail's store: append-only, hash-chained events in the app's store (SQLite or PostgreSQL).

- `append` numbers an event and chains it in one transaction that holds the trail's lock (SQLite: BEGIN
  IMMEDIATE; PostgreSQL: an advisory lock, and the head row read FOR UPDATE), so servers and threads writing at
  once make one chain: no two events share a number or a previous hash. The number is the primary key: a writer
  that somehow raced another fails on it and tries again, never forks the chain.
- `audit_head` holds the newest event's number and hash, written in the same transaction: the tail of the
  trail removed shows too, unless the head is rewritten with it.
- `verify` walks the chain from the oldest event and names the first one changed, removed or out of order.
- `purge` (AUDIT_RETENTION_DAYS) deletes events older than the retention and appends an anchor event that
  records the cut (how many, up to which number, and the last purged event's hash), so what remains verifies.

Tamper-evident, not tamper-proof: whoever can rewrite the database can rewrite the whole chain after an edit.
Keep the head hash `cli.py audit verify` prints somewhere else (a ticket, the EMR's log) to pin it down.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from domain.audit import GENESIS, Action, Actor, ActorKind, AuditEvent, Outcome, chain_hash, event
from storage.schema import audit_events, audit_head
from storage.store import Store, dumps

log = logging.getLogger(__name__)

LOCK = "audit"  # the name of the trail's lock (Store.connect(serialize=…))
ATTEMPTS = 5    # a writer that lost a race for a number tries again this often
PAGE = 1000     # events read at a time while verifying or exporting


@dataclass(frozen=True)
class AuditFilters:
    """Which events to list: each filter narrows; None means any."""

    since: float | None = None
    until: float | None = None
    user: str | None = None     # the actor: a user name or a token's id, whatever its case
    case: str | None = None     # an assessment id among the events' cases
    action: str | None = None
    limit: int = 500
    newest_first: bool = True

    def shown(self) -> dict[str, Any]:
        """The filters as an audit event's detail says them (the trail's own reads are audited too)."""
        return {k: v for k, v in (("since", self.since), ("until", self.until), ("user", self.user),
                                  ("case", self.case), ("action", self.action)) if v is not None}


@dataclass(frozen=True)
class Verdict:
    """What `verify` found: `ok`, how many events it checked, the head's hash, and else the first bad event."""

    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    problem: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"ok: {self.checked} events, the chain is whole (head #{self.head_seq} {self.head_hash})"
        return f"event #{self.bad_seq}: {self.problem}"


def _from_row(row: sa.RowMapping) -> AuditEvent:
    return AuditEvent(at=row["at"], action=Action(row["action"]),
                      actor=Actor(ActorKind(row["actor_kind"]), row["actor"], row["address"], row["user"]),
                      outcome=Outcome(row["outcome"]), cases=tuple(json.loads(row["cases"])),
                      detail=json.loads(row["detail"]), seq=row["seq"], prev_hash=row["prev_hash"], hash=row["hash"])


def _row(item: AuditEvent) -> dict[str, Any]:
    return {"seq": item.seq, "at": item.at, "action": item.action.value, "actor_kind": item.actor.kind.value,
            "actor": item.actor.id, "user": item.actor.account, "address": item.actor.address,
            "outcome": item.outcome.value,
            "cases": dumps(list(item.cases)), "detail": dumps(dict(item.detail)), "prev_hash": item.prev_hash,
            "hash": item.hash}


class AuditLog:
    """The audit trail of `store`: append, list, verify and purge."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    # -- writing ---------------------------------------------------------------------------------

    def append(self, item: AuditEvent) -> AuditEvent:
        """Write `item` as the chain's next event; returns it numbered and hashed. Raises `StoreUnavailable`."""
        for attempt in range(ATTEMPTS):
            try:
                with self.store.connect(serialize=LOCK) as conn:
                    return self._append(conn, item)
            except sa.exc.IntegrityError:  # another writer took the number: read the head again
                if attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _head(self, conn: sa.Connection) -> tuple[int, str]:
        query = sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        if self.store.dialect == "postgresql":
            query = query.with_for_update()
        found = conn.execute(query).first()
        return (found.seq, found.hash) if found else (0, GENESIS)

    def _append(self, conn: sa.Connection, item: AuditEvent) -> AuditEvent:
        seq, prev = self._head(conn)
        sealed = item.sealed(seq + 1, prev)
        conn.execute(audit_events.insert().values(_row(sealed)))
        if seq == 0:  # the first event ever: the head row is made with it
            conn.execute(audit_head.insert().values(id=1, seq=sealed.seq, hash=sealed.hash))
        else:
            conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=sealed.seq, hash=sealed.hash))
        return sealed

    def purge(self, older_than_days: float, *, actor: Actor | None = None) -> int:
        """Delete the events older than `older_than_days` and append the anchor that records the cut; how many.

        The newest event is never purged, so the chain always has a head to verify against.
        """
        cutoff = self.clock() - older_than_days * 86_400
        with self.store.connect(serialize=LOCK) as conn:
            head_seq, _ = self._head(conn)
            last = conn.execute(sa.select(audit_events.c.seq, audit_events.c.hash)
                                .where(audit_events.c.at < cutoff, audit_events.c.seq < head_seq)
                                .order_by(audit_events.c.seq.desc()).limit(1)).first()
            if last is None:
                return 0
            count = conn.execute(audit_events.delete().where(audit_events.c.seq <= last.seq)).rowcount
            anchor = event(Action.AUDIT_PURGED, actor or Actor(ActorKind.SYSTEM, "retention"), at=self.clock(),
                           count=count, through_seq=last.seq, last_hash=last.hash, days=older_than_days)
            self._append(conn, anchor)
        log.info("audit trail: %d events older than %g days purged (through #%d)", count, older_than_days, last.seq)
        return count

    # -- reading ---------------------------------------------------------------------------------

    def events(self, filters: AuditFilters | None = None) -> list[AuditEvent]:
        """The events `filters` picks, newest first unless it says otherwise, at most `filters.limit`."""
        f = filters or AuditFilters()
        query = sa.select(audit_events)
        if f.since is not None:
            query = query.where(audit_events.c.at >= f.since)
        if f.until is not None:
            query = query.where(audit_events.c.at < f.until)
        if f.user:  # who acted, or whose account a token acted as
            name = f.user.strip().lower()
            query = query.where(sa.or_(sa.func.lower(audit_events.c.user) == name,
                                       sa.func.lower(audit_events.c.actor) == name))
        if f.action:
            query = query.where(audit_events.c.action == f.action)
        if f.case:  # ids are hex: the quoted id inside the JSON list matches that case only
            query = query.where(audit_events.c.cases.contains(json.dumps(f.case.strip()), autoescape=True))
        order = audit_events.c.seq.desc() if f.newest_first else audit_events.c.seq
        with self.store.connect() as conn:
            rows = conn.execute(query.order_by(order).limit(f.limit)).mappings().all()
        return [_from_row(r) for r in rows]

    def walk(self) -> Iterator[AuditEvent]:
        """Every event, oldest first, a page at a time (for verifying and exporting a long trail)."""
        after = 0
        while True:
            with self.store.connect() as conn:
                rows = conn.execute(sa.select(audit_events).where(audit_events.c.seq > after)
                                    .order_by(audit_events.c.seq).limit(PAGE)).mappings().all()
            if not rows:
                return
            for row in rows:
                yield _from_row(row)
            after = rows[-1]["seq"]

    def head(self) -> tuple[int, str]:
        """The newest event's number and hash as the head row records them ((0, GENESIS) before any event)."""
        with self.store.connect() as conn:
            return self._head(conn)

    def verify(self) -> Verdict:
        """Walk the whole chain; the first event changed, removed or out of order is named (see `Verdict`)."""
        head_seq, head_hash = self.head()
        anchors: dict[int, str] = {}  # through_seq → last purged hash, from every anchor event
        with self.store.connect() as conn:
            for row in conn.execute(sa.select(audit_events.c.detail)
                                    .where(audit_events.c.action == Action.AUDIT_PURGED.value)):
                detail = json.loads(row.detail)
                if isinstance(detail.get("through_seq"), int) and isinstance(detail.get("last_hash"), str):
                    anchors[detail["through_seq"]] = detail["last_hash"]
        checked, expected, prev_seq = 0, GENESIS, 0

        def bad(seq: int, problem: str) -> Verdict:
            return Verdict(False, checked, head_seq, head_hash, seq, problem)

        for item in self.walk():
            if checked == 0 and item.seq != 1:
                if item.seq - 1 not in anchors:
                    return bad(item.seq - 1, f"missing: the trail starts at #{item.seq} and no purge anchor "
                                             "records a cut there (events were removed)")
                expected = anchors[item.seq - 1]
            elif checked and item.seq != prev_seq + 1:
                return bad(prev_seq + 1, f"missing: #{prev_seq} is followed by #{item.seq} (removed)")
            if chain_hash(item.prev_hash, item) != item.hash:
                return bad(item.seq, "changed: its content does not match its hash")
            if item.prev_hash != expected:
                return bad(item.seq, f"out of place: it does not follow #{item.seq - 1} (an event before it was "
                                     "changed, removed or reordered)")
            expected, prev_seq, checked = item.hash, item.seq, checked + 1
        if (prev_seq, expected) != (head_seq, head_hash):
            if head_seq > prev_seq:
                return bad(prev_seq + 1, f"missing: the head says #{head_seq}, the trail ends at #{prev_seq} "
                                         "(the newest events were removed)")
            return bad(prev_seq, f"head mismatch: the head records #{head_seq}, not this event")
        return Verdict(True, checked, head_seq, head_hash)

    def readable(self) -> bool:
        """Whether the trail's tables answer a read now (for /readyz); raises `StoreUnavailable` when not."""
        with self.store.connect() as conn:
            conn.execute(sa.select(audit_head.c.seq).limit(1)).first()
        return True


__all__ = ["AuditFilters", "AuditLog", "LOCK", "Verdict"]
