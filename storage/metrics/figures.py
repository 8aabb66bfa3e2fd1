"""How fast and how reliably the clinic gets its answers: aggregates over the recorded history.

Everything is computed from the `assessments` table of the store (see storage/history.py), per
provider and input kind, over a window [since, until); with REDIS_URL set, from the same
columns of every app process's records in Redis (see storage/metrics/redis.py). No Streamlit
here: the performance page only draws what `for_window` returns, and the command line or a
notebook can use it as well.

Percentiles are exact: linear interpolation between the two closest ranks (utils/stats.py), the
definition of numpy's default, Excel's PERCENTILE.INC and `statistics.quantiles(method="inclusive")`. The
database (SQLite or PostgreSQL, the same SQLAlchemy Core queries) selects the window by the
created_at index and counts; the percentiles come from one narrow read of the window's times,
sorted once per measure.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from storage.metrics import MetricsSource
from storage.schema import assessments
from storage.store import Store
from utils.stats import percentile_of_sorted

# The performance guide's targets (docs: performance-guide.ko.md, "성능 목표").
TARGET_MS: dict[str, float] = {"text": 15_000.0, "image": 30_000.0}
SUCCESS_TARGET = 0.95

PERCENTS = (50, 95, 99)
KINDS = ("text", "image")

# The windows the page offers, in order; None means the whole history.
WINDOWS: dict[str, float | None] = {
    "hour": 3600.0,
    "day": 86_400.0,
    "week": 7 * 86_400.0,
    "month": 30 * 86_400.0,
    "all": None,
}

# Chart buckets to choose from, smallest first; the first that keeps the chart readable wins.
_BUCKETS = (60, 300, 900, 3600, 6 * 3600, 86_400, 7 * 86_400)
_MAX_POINTS = 200


@dataclass(frozen=True)
class Percentiles:
    """p50, p95 and p99 of one measure (ms) over `n` values; None when there were none."""

    n: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


@dataclass(frozen=True)
class Stats:
    """One group of assessments: a provider and an input kind, or a total over several.

    `provider` is None in totals (and for the rare failure that named no provider); `kind`
    is None in the overall total. Counts are of assessments; rates are None for no assessments.
    """

    kind: str | None
    provider: str | None
    count: int = 0
    complete: int = 0          # a complete answer came back
    timeouts: int = 0          # error = ProviderTimeout: the time budget ran out
    errors: int = 0            # any error, timeouts included
    fallbacks: int = 0         # answered by a provider other than the first one asked
    hedged: int = 0            # a second provider was asked in parallel
    cached: int = 0            # answered from the cache
    within_target: int = 0     # a complete answer within the guide's target for its kind
    latency_ms: Percentiles = field(default_factory=Percentiles)
    first_token_ms: Percentiles = field(default_factory=Percentiles)

    def _rate(self, part: int) -> float | None:
        return part / self.count if self.count else None

    @property
    def success_rate(self) -> float | None:
        """Complete answers / all assessments (the guide asks for 95 %+)."""
        return self._rate(self.complete)

    @property
    def timeout_rate(self) -> float | None:
        """Assessments that ran out of time / all."""
        return self._rate(self.timeouts)

    @property
    def error_rate(self) -> float | None:
        """Assessments that ended in an error (timeouts included) / all."""
        return self._rate(self.errors)

    @property
    def cache_hit_rate(self) -> float | None:
        """Assessments answered from the cache / all."""
        return self._rate(self.cached)

    @property
    def within_target_rate(self) -> float | None:
        """Complete answers within the target for their kind (text 15 s, image 30 s) / all."""
        return self._rate(self.within_target)


@dataclass(frozen=True)
class SeriesPoint:
    """One bucket of the chart: assessments of `kind` created in [start, start + bucket seconds)."""

    start: float
    kind: str
    count: int
    p95_ms: float


@dataclass(frozen=True)
class Report:
    """Everything the performance page shows, for one window and filter."""

    since: float | None
    until: float | None
    bucket_seconds: int
    providers: tuple[str, ...] | None
    sources: tuple[str, ...] | None
    groups: tuple[Stats, ...]          # per provider and kind: text first, then the busiest provider
    kinds: dict[str, Stats]            # per kind, every provider together
    overall: Stats                     # everything together
    series: tuple[SeriesPoint, ...]    # p95 latency per kind and bucket, oldest first

    @property
    def empty(self) -> bool:
        """No assessment matched the window and filters."""
        return self.overall.count == 0

    def kind(self, kind: str) -> Stats:
        """The total for one input kind (an empty `Stats` when there was none)."""
        return self.kinds.get(kind) or Stats(kind=kind, provider=None)

    def table(self, labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """The groups as rows for a table: rates as fractions, times in seconds.

        `labels` renames provider and kind codes for display (e.g. "runpod" -> "RunPod");
        seconds, because the guide's targets are in seconds and a clinician reads "8.2 s".
        """
        labels = labels or {}

        def name(code: str | None) -> str:
            return "—" if code is None else labels.get(code, code)

        def seconds(ms: float | None) -> float | None:
            return None if ms is None else ms / 1000

        rows = []
        for g in self.groups:
            rows.append({
                "provider": name(g.provider), "kind": name(g.kind), "count": g.count,
                "success_rate": g.success_rate, "within_target": g.within_target_rate,
                "timeout_rate": g.timeout_rate, "error_rate": g.error_rate, "cache_hit_rate": g.cache_hit_rate,
                "fallbacks": g.fallbacks, "hedged": g.hedged,
                "latency_p50_s": seconds(g.latency_ms.p50), "latency_p95_s": seconds(g.latency_ms.p95),
                "latency_p99_s": seconds(g.latency_ms.p99),
                "first_token_p50_s": seconds(g.first_token_ms.p50),
                "first_token_p95_s": seconds(g.first_token_ms.p95),
                "first_token_p99_s": seconds(g.first_token_ms.p99),
            })
        return rows


# -- pure helpers ------------------------------------------------------------------------------

def window_bounds(window: str, now: float | None = None) -> tuple[float | None, float]:
    """[since, until) for a window name from `WINDOWS`, ending now; since is None for "all"."""
    if window not in WINDOWS:
        raise ValueError(f"Unknown window '{window}': use one of {', '.join(WINDOWS)}.")
    until = time.time() if now is None else now
    length = WINDOWS[window]
    return (None if length is None else until - length), until


def bucket_seconds(span: float) -> int:
    """The chart's bucket for a window of `span` seconds: the finest with at most 200 points.

    One hour gives minutes, a day quarter-hours, a week hours, a month six hours.
    """
    for bucket in _BUCKETS:
        if span / bucket <= _MAX_POINTS:
            return bucket
    return _BUCKETS[-1]


# -- reading the store -------------------------------------------------------------------------

def for_window(store: Store, window: str = "day", *, providers: Sequence[str] | None = None,
               sources: Sequence[str] | None = None, now: float | None = None,
               feed: MetricsSource | None = None) -> Report:
    """The report for a named window ("hour", "day", "week", "month", "all") ending now."""
    since, until = window_bounds(window, now)
    return compute(store, since, until, providers=providers, sources=sources, feed=feed)


def compute(store: Store, since: float | None = None, until: float | None = None, *,
            providers: Sequence[str] | None = None, sources: Sequence[str] | None = None,
            bucket: int | None = None, feed: MetricsSource | None = None) -> Report:
    """The report over assessments created in [since, until) (None: unbounded).

    `providers` and `sources` (page, job, cli, qa, batch, bench, ...) keep only those rows when
    given; every source counts otherwise. `bucket` is the chart's bucket in seconds, chosen
    from the window's span when not given. `feed` (with REDIS_URL, `startup.metrics_feed()`)
    supplies every app process's records instead of `store`'s; when it does not answer,
    `store` is used.
    """
    providers = tuple(providers) if providers else None
    sources = tuple(sources) if sources else None
    where = _where(since, until, providers, sources)
    with _connect(store, feed, since, until) as conn:
        if bucket is None:
            bucket = bucket_seconds(_span(conn, since, until, where))
        counts = _counts(conn, where)
        values = _values(conn, where, bucket)

    def stats(kind: str | None, provider: str | None, counts: dict[str, int], grouping: str, key: _Group) -> Stats:
        return Stats(kind=kind, provider=provider, **counts,
                     latency_ms=_percentiles(values["latency_ms"][grouping].get(key)),
                     first_token_ms=_percentiles(values["first_token_ms"][grouping].get(key)))

    groups = [stats(kind, provider, c, "pair", (provider, kind)) for (provider, kind), c in counts.items()]
    groups.sort(key=lambda g: (_kind_order(g.kind), -g.count, g.provider is None, g.provider or ""))
    kinds = {kind: stats(kind, None, _sum(g for g in groups if g.kind == kind), "kind", (kind,))
             for kind in sorted({kind for _, kind in counts}, key=_kind_order)}
    overall = stats(None, None, _sum(groups), "all", ())
    # The engine records a latency for every assessment, failures included, so these are all rows.
    series = sorted((SeriesPoint(start=float(start), kind=kind, count=len(v), p95_ms=percentile_of_sorted(v, 95))
                     for (kind, start), v in values["latency_ms"]["series"].items()),
                    key=lambda p: (p.start, _kind_order(p.kind)))
    return Report(since=since, until=until, bucket_seconds=int(bucket), providers=providers, sources=sources,
                  groups=tuple(groups), kinds=kinds, overall=overall, series=tuple(series))


@contextmanager
def _connect(store: Store, feed: MetricsSource | None, since: float | None,
             until: float | None) -> Iterator[sa.Connection]:
    """The `assessments` rows to compute over: every process's (from Redis) or this store's own."""
    shared = feed.connect(since, until) if feed is not None else None
    if shared is None:
        with store.connect() as conn:
            yield conn
        return
    try:
        yield shared
    finally:
        shared.close()
        shared.engine.dispose()  # the feed's in-memory database goes with its engine


def _where(since: float | None, until: float | None, providers: tuple[str, ...] | None,
           sources: tuple[str, ...] | None) -> list[sa.ColumnElement[bool]]:
    a = assessments.c
    where: list[sa.ColumnElement[bool]] = []
    if since is not None:  # created_at is indexed: both bounds use it
        where.append(a.created_at >= since)
    if until is not None:
        where.append(a.created_at < until)
    if providers:
        where.append(a.provider.in_(providers))
    if sources:
        where.append(a.source.in_(sources))
    return where


def _span(conn: sa.Connection, since: float | None, until: float | None,
          where: list[sa.ColumnElement[bool]]) -> float:
    """Seconds the chart covers: the window, or for an open end, the rows actually there."""
    if since is not None and until is not None:
        return until - since
    a = assessments.c
    first, last = conn.execute(sa.select(sa.func.min(a.created_at), sa.func.max(a.created_at)).where(*where)).one()
    if first is None:
        return 0.0
    return (last if until is None else until) - (first if since is None else since)


def _tally(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """How many rows of a group meet `condition` (0 rather than NULL for none)."""
    return sa.func.sum(sa.case((condition, 1), else_=0))


_A = assessments.c
_COUNTS: dict[str, sa.ColumnElement[int]] = {
    "count": sa.func.count(),
    "complete": _tally(_A.complete == 1),
    "timeouts": _tally(_A.error == "ProviderTimeout"),
    "errors": _tally(_A.error.is_not(None)),
    "fallbacks": _tally(_A.fallback == 1),
    "hedged": _tally(_A.hedged == 1),
    "cached": _tally(_A.cached == 1),
    # A timeout a hair before the target is not an answer in time: only complete answers count.
    "within_target": _tally(sa.and_(_A.complete == 1, _A.latency_ms <= sa.case(TARGET_MS, value=_A.kind))),
}


def _counts(conn: sa.Connection, where: list[sa.ColumnElement[bool]]) -> dict[tuple[str | None, str], dict[str, int]]:
    # Keyed by (provider, kind): a failure may name no provider; every row has a kind.
    query = (sa.select(_A.provider, _A.kind, *(column.label(name) for name, column in _COUNTS.items()))
             .where(*where).group_by(_A.provider, _A.kind))
    return {(r["provider"], r["kind"]): {name: int(r[name]) for name in _COUNTS}
            for r in conn.execute(query).mappings()}


# A group's key: (provider, kind), (kind,), (kind, bucket start) or (); its values, in ascending order.
_Group = tuple[Any, ...]
_Grouped = dict[str, dict[_Group, list[float]]]


def _values(conn: sa.Connection, where: list[sa.ColumnElement[bool]], bucket: int) -> dict[str, _Grouped]:
    """Every latency and first-token time in the window, grouped, each group in ascending order.

    {measure: {grouping: {key: values}}} with the groupings "pair" (provider, kind), "kind" (kind,),
    "all" () and, for latency, "series" (kind, bucket start). One narrow read, then one sort per
    measure; rows are dealt out in that order, so no group needs sorting again. For 100 000 rows
    this takes a fraction of a second, where ranking with window functions in SQL took seconds
    (one sort per grouping and measure). The bucket is worked out here, not in SQL, where the
    databases round a cast differently (SQLite truncates, PostgreSQL rounds to nearest).
    """
    query = sa.select(_A.provider, _A.kind, _A.created_at, _A.latency_ms, _A.first_token_ms).where(*where)
    rows = [(provider, kind, int(created // bucket) * bucket, latency, first)
            for provider, kind, created, latency, first in conn.execute(query)]
    found: dict[str, _Grouped] = {}
    for measure, column in (("latency_ms", 3), ("first_token_ms", 4)):
        ordered = sorted((r for r in rows if r[column] is not None), key=itemgetter(column))
        pair: defaultdict[_Group, list[float]] = defaultdict(list)
        kind: defaultdict[_Group, list[float]] = defaultdict(list)
        series: defaultdict[_Group, list[float]] = defaultdict(list)
        for r in ordered:
            pair[r[0], r[1]].append(r[column])
            kind[(r[1],)].append(r[column])
            if measure == "latency_ms":
                series[r[1], r[2]].append(r[column])
        found[measure] = {"pair": pair, "kind": kind, "series": series,
                          "all": {(): [r[column] for r in ordered]} if ordered else {}}
    return found


def _percentiles(ascending: Sequence[float] | None) -> Percentiles:
    if not ascending:
        return Percentiles()
    return Percentiles(len(ascending), *(percentile_of_sorted(ascending, p) for p in PERCENTS))


def _sum(groups: Iterable[Stats]) -> dict[str, int]:
    """Counts add up across groups (percentiles do not, and are queried per total instead)."""
    total = dict.fromkeys(_COUNTS, 0)
    for g in groups:
        for name in _COUNTS:
            total[name] += getattr(g, name)
    return total


def _kind_order(kind: str | None) -> tuple[int, str]:
    return (KINDS.index(kind) if kind in KINDS else len(KINDS), kind or "")


__all__ = ["TARGET_MS", "SUCCESS_TARGET", "WINDOWS", "KINDS", "Percentiles", "Stats", "SeriesPoint", "Report",
           "window_bounds", "bucket_seconds", "for_window", "compute"]
