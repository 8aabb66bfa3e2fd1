"""Performance figures of every app process, through one Redis.

Each process records its assessments in the store's history (the clinic's record);
with REDIS_URL set it also pushes a compact metrics record, with no patient text, to a
sorted set scored by time and capped in length, so the Performance page of any process
shows every process's figures. `MetricsFeed` is the `storage.history.MetricsSink` the
history pushes each recorded row to (`History(..., metrics=feed_for(url))`).
`MetricsFeed.rows` returns rows shaped like the `assessments` rows `storage.metrics`
reads; `MetricsFeed.connect` loads them into an in-memory SQLite table of that shape, so
the same SQLAlchemy queries compute the same report.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, cast

import redis
import sqlalchemy as sa

from storage.metrics import _FLAGS, FIELDS, TABLE, record_of
from storage.redis_client import FAILURES, Breaker, breaker, connect, key

log = logging.getLogger(__name__)

METRICS_KEY = key("metrics", "v1")

# The newest records kept; at ~120 bytes each, 200 000 records are ~25 MB of Redis memory.
DEFAULT_CAP = 200_000

class MetricsFeed:
    """The shared sorted set of metrics records: written by every engine's history (a `MetricsSink`), read by
    the Performance page."""

    def __init__(self, client: redis.Redis, *, cap: int = DEFAULT_CAP, retention_seconds: float | None = None,
                 breaker: Breaker | None = None) -> None:
        self._redis = client
        self.cap = cap
        self.retention_seconds = retention_seconds
        self._breaker = breaker or Breaker()

    def push(self, row: dict[str, Any], at: float | None = None) -> bool:
        """Add one assessment's record (trimming to the cap and retention); False when Redis did not take it."""
        if not self._breaker.closed:
            return False
        at = time.time() if at is None else at
        # The random id keeps two identical records (same millisecond, same figures) apart in the set.
        member = json.dumps([uuid.uuid4().hex[:12], *record_of(row, at)], separators=(",", ":"))
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.zadd(METRICS_KEY, {member: at})
            pipe.zremrangebyrank(METRICS_KEY, 0, -self.cap - 1)
            if self.retention_seconds:
                pipe.zremrangebyscore(METRICS_KEY, "-inf", f"({at - self.retention_seconds}")
            pipe.execute()
            return True
        except FAILURES as exc:
            self._breaker.trip(exc, "metrics")
            return False

    def rows(self, since: float | None = None, until: float | None = None) -> list[dict[str, Any]] | None:
        """Records created in [since, until) (None: unbounded) as dicts shaped like `assessments` rows.

        None (not an empty list) when Redis did not answer, so the caller can fall back to its own history.
        """
        if not self._breaker.closed:
            return None
        low = "-inf" if since is None else repr(float(since))
        high = "+inf" if until is None else f"({float(until)!r}"
        try:
            # Members only (no scores), as bytes: redis-py's return type covers every option of the call.
            members = cast("list[bytes]", self._redis.zrangebyscore(METRICS_KEY, low, high))
        except FAILURES as exc:
            self._breaker.trip(exc, "metrics")
            return None
        found = []
        for member in members:
            try:
                values = json.loads(member)[1:]
            except ValueError:
                continue
            if len(values) == len(FIELDS):
                found.append(dict(zip(FIELDS, values, strict=True)))
        return found

    def connect(self, since: float | None = None, until: float | None = None) -> sa.Connection | None:
        """A connection to an in-memory SQLite database whose `assessments` table holds `rows(since, until)`; None if
        Redis is down. Close it, then dispose of its `engine`, to free that database.

        `storage.metrics` runs its usual queries on it: one definition of every figure for every source.
        """
        rows = self.rows(since, until)
        if rows is None:
            return None
        engine = sa.create_engine("sqlite://", poolclass=sa.StaticPool)  # one connection: the database is its memory
        conn = engine.connect()
        TABLE.create(conn)
        records = [{**r, **{f: r[f] or 0 for f in _FLAGS}} for r in rows if r["kind"]]
        if records:
            conn.execute(TABLE.insert(), records)
        conn.commit()
        return conn



_feeds: dict[tuple[str, float], MetricsFeed] = {}


def feed_for(url: str, retention_seconds: float | None = None) -> MetricsFeed:
    """One feed per URL and retention in this process, so its breaker is shared by every caller."""
    found = _feeds.get((url, retention_seconds or 0.0))
    if found is None:
        found = _feeds.setdefault((url, retention_seconds or 0.0),
                                  MetricsFeed(connect(url), retention_seconds=retention_seconds,
                                              breaker=breaker(url)))
    return found
