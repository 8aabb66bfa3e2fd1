"""The engine's figures in Prometheus form: what `GET /metrics` serves.

Counters and histograms are fed by the engine's recorder (one `observe` per assessment, answered or
failed, from every source), so they count this process only: with several app servers Prometheus
scrapes each and `sum()` adds them up. The gauges are read when scraped: each configured provider's
circuit, and the jobs queued and running (from the job store; with REDIS_URL that is the one queue
all servers share, so every server reports the same figure: take `max()`, not `sum()`).

Every label has a fixed, small set of values (providers come from the registry, sources and
outcomes from the lists below), so no request can create a new series; no label carries patient
text, a user name or a key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderNotConfigured,
    ProviderRateLimited,
    ProviderRequestError,
    ProviderTimeout,
    ProviderUnavailable,
)
from domain.readings import CONCORDANCES
from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from engine.health import CLOSED, HALF_OPEN, OPEN

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST  # Prometheus's text exposition format

SOURCES = ("page", "job", "cli", "api", "batch", "qa", "bench")  # any other source counts as "other"
ANSWERED, INCOMPLETE, CACHED, REPLAYED = "answered", "incomplete", "cached", "replayed"
_FAILURES: tuple[tuple[type[ProviderError], str], ...] = (
    (ProviderTimeout, "failed_timeout"), (ProviderUnavailable, "failed_unavailable"),
    (ProviderRateLimited, "failed_rate_limited"), (ProviderAuthError, "failed_auth"),
    (ProviderRequestError, "failed_request"), (ProviderNotConfigured, "failed_not_configured"))
FAILED_OTHER = "failed_other"
OUTCOMES = (ANSWERED, INCOMPLETE, CACHED, REPLAYED, *(name for _, name in _FAILURES), FAILED_OTHER)

# A text answer takes 1-15 s, a photo up to 30 s (the budgets); the original backend took up to a minute.
ASSESSMENT_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0)
# A warm provider starts writing within 0.3-2 s; 10 s and more is a cold start (COLD_START_SECONDS).
FIRST_TOKEN_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0)
CIRCUIT_VALUES = {CLOSED: 0, OPEN: 1, HALF_OPEN: 2}


def outcome_of(result: Diagnosis | None, error: BaseException | None) -> str:
    """The `outcome` label of one assessment: how it ended, from a fixed set (`OUTCOMES`)."""
    if result is not None:
        if result.replayed:
            return REPLAYED
        if result.cached:
            return CACHED
        return ANSWERED if result.complete else INCOMPLETE
    for kind, name in _FAILURES:
        if isinstance(error, kind):
            return name
    return FAILED_OTHER


class PrometheusMetrics:
    """An `AssessmentObserver` (engine/recording.py) that keeps Prometheus figures in its own registry.

    Its own `CollectorRegistry`, not the library's global one: each engine (tests build many, and
    `reset_engine` builds a new one after `.env` changed) starts from zero without name clashes.
    """

    def __init__(self, *, circuits: Callable[[], Mapping[str, str]],
                 job_counts: Callable[[], Mapping[str, int]]) -> None:
        """`circuits()` gives each configured provider's circuit state (engine/health.py: closed, open,
        half-open); `job_counts()` gives {"queued": n, "running": m} and may raise when its store is down."""
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.assessments = Counter("skinai_assessments", "Assessments by who answered, input kind, how they ended "
                                   "and where they came from", ["provider", "kind", "outcome", "source"], registry=r)
        self.seconds = Histogram("skinai_assessment_seconds", "End-to-end time of an assessment (photo shrinking, "
                                 "cache, every provider tried)", ["kind", "outcome"], buckets=ASSESSMENT_BUCKETS,
                                 registry=r)
        self.first_token = Histogram("skinai_first_token_seconds", "Time to the winning provider's first token",
                                     ["provider", "kind"], buckets=FIRST_TOKEN_BUCKETS, registry=r)
        self.cache_hits = Counter("skinai_cache_hits", "Assessments answered from the answer cache", ["kind"],
                                  registry=r)
        self.hedges = Counter("skinai_hedges", "Assessments during which a hedge (a second call) was started",
                              ["kind"], registry=r)
        self.fallbacks = Counter("skinai_fallbacks", "Assessments during which a fallback provider was asked",
                                 ["kind"], registry=r)
        self.readings = Counter("skinai_second_readings", "Second readings (double reading) by the second reader "
                                "and how they compared with the first", ["provider", "concordance"], registry=r)
        r.register(_ScrapeTimeGauges(circuits, job_counts))

    def observe(self, request: DiagnosisRequest, result: Diagnosis | None, error: BaseException | None,
                elapsed: float) -> None:
        """Count one assessment: `result` when it was answered, else the `error` it failed with; `elapsed` s."""
        outcome = outcome_of(result, error)
        provider = (result.provider if result is not None else getattr(error, "provider", "")) or "none"
        source = request.source if request.source in SOURCES else "other"
        kind = request.kind
        self.assessments.labels(provider, kind, outcome, source).inc()
        self.seconds.labels(kind, outcome).observe(max(elapsed, 0.0))
        if result is None or result.replayed:
            return
        if result.cached:
            self.cache_hits.labels(kind).inc()
            return
        if result.first_token_ms is not None:
            self.first_token.labels(result.provider, kind).observe(result.first_token_ms / 1000)
        if result.hedged:
            self.hedges.labels(kind).inc()
        if result.fallback:
            self.fallbacks.labels(kind).inc()

    def reading(self, provider: str, concordance: str) -> None:
        """Count one second reading that ended (`concordance`: one of domain.readings.CONCORDANCES)."""
        self.readings.labels(provider or "none", concordance if concordance in CONCORDANCES else "unavailable").inc()

    def exposition(self) -> bytes:
        """Every figure in Prometheus's text format (reads the job store: call it off the event loop)."""
        return generate_latest(self.registry)


class _ScrapeTimeGauges(Collector):
    """The gauges read when Prometheus scrapes: circuits and jobs. A store that does not answer leaves its
    gauges out of that scrape (logged by the error's class) rather than failing the whole page."""

    def __init__(self, circuits: Callable[[], Mapping[str, str]],
                 job_counts: Callable[[], Mapping[str, int]]) -> None:
        self.circuits = circuits
        self.job_counts = job_counts

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the registry must not call `collect` (and the job store) when this is registered."""
        return []

    def collect(self) -> Iterable[Metric]:
        """The current circuit of each configured provider and the current number of jobs."""
        circuit = GaugeMetricFamily("skinai_provider_circuit_state", "Circuit breaker of each configured provider: "
                                    "0 closed, 1 open (skipped while cooling down), 2 half-open (one probe out)",
                                    labels=["provider"])
        for name, state in sorted(self.circuits().items()):
            circuit.add_metric([name], CIRCUIT_VALUES.get(state, 1))
        yield circuit
        try:
            counts = self.job_counts()
        except Exception as exc:  # a metrics page must not fail because one store is down
            log.warning("metrics: job counts unavailable: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily("skinai_jobs_queued", "Background jobs waiting to run (with REDIS_URL: the queue "
                                "every server shares)", value=counts.get("queued", 0))
        yield GaugeMetricFamily("skinai_jobs_running", "Background jobs running (with REDIS_URL: on every server)",
                                value=counts.get("running", 0))


def audit_exposition(counts: Mapping[str, int]) -> bytes:
    """The audit writer's figures (storage/audit_trail.py `counts()`) in Prometheus's text format: events written
    and failed since the process started, and waiting for the database now."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_AuditFigures(counts))
    return generate_latest(registry)


class _AuditFigures(Collector):
    def __init__(self, counts: Mapping[str, int]) -> None:
        self.counts = counts

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        """The three figures, read once."""
        yield CounterMetricFamily("skinai_audit_events_written", "Audit events written into the trail",
                                  value=self.counts.get("written", 0))
        yield CounterMetricFamily("skinai_audit_events_failed", "Audit events that could not be written (the "
                                  "database down or refusing, or too many waiting); each is in the log",
                                  value=self.counts.get("failed", 0))
        yield GaugeMetricFamily("skinai_audit_events_pending", "Audit events waiting for the database",
                                value=self.counts.get("pending", 0))
