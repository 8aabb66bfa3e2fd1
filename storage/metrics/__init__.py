"""Every app process's performance figures: the contracts of where they go and come from, and their record.

The clinic's record of each assessment is the history (`storage.history`, the store's `assessments` table);
`storage.metrics.figures` computes the Performance page's figures from it. With REDIS_URL each process also
pushes a compact record of every assessment, with no patient text, to `storage.metrics.redis.MetricsFeed`
(a `MetricsSink`), which any process reads back as a `MetricsSource`: rows of the `assessments` shape (`TABLE`),
so the same queries compute the same figures from either.
"""

from __future__ import annotations

from typing import Any, Protocol

import sqlalchemy as sa


class MetricsSink(Protocol):
    """Somewhere else a recorded assessment's figures go: times, flags, names and the error class, no patient text."""

    def push(self, row: dict[str, Any], at: float | None = None) -> bool:
        """Keep the figures of `row` (an `assessments` row) as of `at`; False when not kept. Never raises."""


class MetricsSource(Protocol):
    """Every process's records, for the figures: read instead of the store's own history when it answers."""

    def connect(self, since: float | None = None, until: float | None = None) -> sa.Connection | None:
        """A connection whose `assessments` table (`TABLE`'s columns) holds the records created in [since, until);
        None when the source does not answer (the caller falls back to its own history)."""


# The record's fields, in the order of its compact JSON list (bump the key's version to change them).
FIELDS = ("created_at", "kind", "provider", "source", "complete", "error", "latency_ms", "first_token_ms",
          "cached", "fallback", "hedged")
_FLAGS = ("complete", "cached", "fallback", "hedged")

# The columns of storage/schema.py's `assessments` that the metrics read, under the same names, so the queries
# storage/metrics/figures.py builds from that table run on this one as they are.
TABLE = sa.Table(
    "assessments", sa.MetaData(),
    sa.Column("created_at", sa.Double, nullable=False, index=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("provider", sa.Text),
    sa.Column("source", sa.Text),
    sa.Column("complete", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("latency_ms", sa.Double),
    sa.Column("first_token_ms", sa.Double),
    *(sa.Column(flag, sa.Integer, nullable=False) for flag in ("cached", "fallback", "hedged")),
)


def record_of(row: dict[str, Any], at: float) -> list[Any]:
    """The compact record of one history row: times, flags, names and the error class, no patient text."""

    def ms(value: Any) -> float | None:
        return None if value is None else float(value)

    # Unrounded: the same rows give the same percentiles from Redis as from the store.
    return [at, row.get("kind"), row.get("provider"), row.get("source"), int(bool(row.get("complete"))),
            row.get("error"), ms(row.get("latency_ms")), ms(row.get("first_token_ms")),
            int(bool(row.get("cached"))), int(bool(row.get("fallback"))), int(bool(row.get("hedged")))]
