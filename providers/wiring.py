"""Building the engine and its backends from settings: the one place that knows which backend goes where.

Without REDIS_URL the answer cache is on disk and jobs are in the store (SQLite, or DATABASE_URL's PostgreSQL,
shared with the other servers on it); with it, answers, jobs and the performance figures are shared through
Redis with every other app process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from providers.health import ProviderHealth
from providers.jobs import JobRunner
from providers.prometheus_metrics import PrometheusMetrics
from storage.cache import AnswerCache, DiskAnswerCache
from storage.history import History, MetricsSink
from storage.jobs import LEASE_SECONDS, JobStore, SqlJobStore
from storage.store import Store
from utils.crypto import Sealer
from utils.settings import Settings

if TYPE_CHECKING:
    from providers.base import Provider
    from providers.engine import Engine


def open_store(settings: Settings) -> Store:
    """The app's store: DATABASE_URL's PostgreSQL, else SQLite under DATA_DIR (migrated on first use); opens nothing."""
    return Store(settings.database_url or settings.data_dir / "app.db", pool_size=settings.database_pool_size,
                 timeout_seconds=settings.database_timeout_seconds)


def build_engine(settings: Settings, *, store: Store | None = None) -> Engine:
    """An engine with every backend `settings` asks for; `store` shares an already open store."""
    # The providers pull in langchain and the HTTP stack (~1 s): sign-in, which needs only
    # `open_store`, does not pay for them.
    from providers.engine import Engine
    from providers.registry import build_providers

    sealer = Sealer(settings.data_encryption_key)  # encryption at rest; a pass-through without a key
    providers = build_providers(settings)
    store = store or open_store(settings)
    job_store = _job_store(settings, store, sealer)

    def circuits() -> dict[str, str]:
        # Read through the engine at each scrape (it is bound below): a benchmark may swap its providers.
        return {name: engine.health[name].state for name, p in engine.providers.items()
                if p.configured and name in engine.health}

    metrics = PrometheusMetrics(circuits=circuits, job_counts=job_store.counts)
    engine = Engine(settings, sealer=sealer, providers=providers, health=_health(settings, providers),
                    cache=_answer_cache(settings, sealer), store=store, history=_history(settings, store, sealer),
                    jobs=_jobs_factory(settings, job_store), observer=metrics)
    return engine


def _health(settings: Settings, providers: dict[str, Provider]) -> dict[str, ProviderHealth]:
    return {name: ProviderHealth(name, failures_to_open=settings.health_failures,
                                 cooldown=settings.health_cooldown_seconds, cold_start=settings.cold_start_seconds,
                                 serverless=p.serverless,
                                 hedge_bounds=(settings.hedge_min_seconds, settings.hedge_max_seconds),
                                 idle_timeout=settings.serverless_idle_seconds)
            for name, p in providers.items()}


def _answer_cache(settings: Settings, sealer: Sealer) -> AnswerCache:
    if settings.redis_url:  # more than one server: answers are shared through Redis
        from storage.redis_cache import RedisAnswerCache  # only imported (and redis needed) when REDIS_URL is set
        return RedisAnswerCache.from_settings(settings, sealer=sealer)
    return DiskAnswerCache(settings.data_dir / "cache", ttl_seconds=settings.cache_ttl_seconds,
                           enabled=settings.cache_enabled, sealer=sealer)


def _history(settings: Settings, store: Store, sealer: Sealer) -> History | None:
    if not settings.history_enabled:
        return None
    metrics = None
    if settings.redis_url:  # every process's figures, for the Performance page
        from storage.redis_metrics import feed_for
        metrics = feed_for(settings.redis_url, settings.history_retention_days * 86_400)
    return open_history(settings, store, sealer=sealer, metrics=metrics)


def open_history(settings: Settings, store: Store | None = None, *, sealer: Sealer | None = None,
                 metrics: MetricsSink | None = None) -> History:
    """The history on `store` (by default `open_store(settings)`) with the data key: what the engine records
    into, and what the command line reads without building the engine."""
    return History(store or open_store(settings), keep_images=settings.history_keep_images,
                   retention_days=settings.history_retention_days,
                   sealer=sealer or Sealer(settings.data_encryption_key), metrics=metrics)


def _job_store(settings: Settings, store: Store, sealer: Sealer) -> JobStore:
    """Where jobs are kept; built at once (it opens no connection) so the metrics can count its jobs before the
    runner starts."""
    if settings.redis_url:
        # One queue for every app process: a job submitted here may run, and be read, in another.
        from storage.redis_jobs import RedisJobStore
        return RedisJobStore.from_url(settings.redis_url, sealer=sealer,
                                      retention_seconds=settings.history_retention_days * 86_400)
    # Else the store's `jobs` table: SQLite is one machine's, so a start interrupts what a previous run left;
    # a PostgreSQL may be shared by several servers, so a job is interrupted only when its server stops renewing
    # its lease (storage/jobs.py).
    return SqlJobStore(store, sealer=sealer, lease_seconds=LEASE_SECONDS if store.dialect == "postgresql" else None)


def _jobs_factory(settings: Settings,
                  job_store: JobStore) -> Callable[[Callable[[DiagnosisRequest], Diagnosis]], JobRunner]:
    """How the engine makes its job runner on first use (starting one marks a previous run's jobs interrupted)."""
    def make(diagnose: Callable[[DiagnosisRequest], Diagnosis]) -> JobRunner:
        return JobRunner(job_store, diagnose, workers=settings.job_workers)
    return make
