"""Building the engine and its backends from settings: the one place that knows which backend goes where.

Without REDIS_URL everything is local (the answer cache on disk, jobs in SQLite); with it, answers,
jobs and the performance figures are shared through Redis with every other app process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from providers.health import ProviderHealth
from providers.jobs import Jobs
from storage.cache import AnswerCache
from storage.history import History
from storage.store import Store
from utils.crypto import Sealer
from utils.settings import Settings

if TYPE_CHECKING:
    from providers.answering import Cache
    from providers.base import Provider
    from providers.engine import Engine


def open_store(settings: Settings) -> Store:
    """The app's SQLite store under DATA_DIR (migrated on first use); cheap, opens no connection."""
    return Store(settings.data_dir / "app.db")


def build_engine(settings: Settings, *, store: Store | None = None) -> Engine:
    """An engine with every backend `settings` asks for; `store` shares an already open store."""
    # The providers pull in langchain and the HTTP stack (~1 s): sign-in, which needs only
    # `open_store`, does not pay for them.
    from providers.engine import Engine
    from providers.registry import build_providers

    sealer = Sealer(settings.data_encryption_key)  # encryption at rest; a pass-through without a key
    providers = build_providers(settings)
    store = store or open_store(settings)
    return Engine(settings, sealer=sealer, providers=providers, health=_health(settings, providers),
                  cache=_answer_cache(settings, sealer), store=store, history=_history(settings, store, sealer),
                  jobs=_jobs_factory(settings))


def _health(settings: Settings, providers: dict[str, Provider]) -> dict[str, ProviderHealth]:
    return {name: ProviderHealth(name, failures_to_open=settings.health_failures,
                                 cooldown=settings.health_cooldown_seconds, cold_start=settings.cold_start_seconds,
                                 serverless=p.serverless,
                                 hedge_bounds=(settings.hedge_min_seconds, settings.hedge_max_seconds),
                                 idle_timeout=settings.serverless_idle_seconds)
            for name, p in providers.items()}


def _answer_cache(settings: Settings, sealer: Sealer) -> Cache:
    if settings.redis_url:  # more than one server: answers are shared through Redis
        from storage.redis_cache import RedisCache  # only imported (and redis needed) when REDIS_URL is set
        return RedisCache.from_settings(settings, sealer=sealer)
    return AnswerCache(settings.data_dir / "cache", ttl_seconds=settings.cache_ttl_seconds,
                       enabled=settings.cache_enabled, sealer=sealer)


def _history(settings: Settings, store: Store, sealer: Sealer) -> History | None:
    # With REDIS_URL, a MeteredHistory: it delegates to the History and feeds the shared figures too.
    if not settings.history_enabled:
        return None
    history = History(store, keep_images=settings.history_keep_images,
                      retention_days=settings.history_retention_days, sealer=sealer)
    if settings.redis_url:  # and every process's figures, for the Performance page
        from storage.redis_metrics import MeteredHistory, feed_for
        return MeteredHistory(history, feed_for(settings.redis_url, settings.history_retention_days * 86_400))
    return history


def _jobs_factory(settings: Settings) -> Callable[[Engine], Any]:
    """How the engine makes its job runner on first use (starting one marks a previous run's jobs interrupted)."""
    if settings.redis_url:
        def redis_jobs(engine: Engine) -> Any:
            # One queue for every app process: a job submitted here may run, and be read, in another.
            from providers.redis_jobs import RedisJobs
            return RedisJobs(engine, workers=settings.job_workers)
        return redis_jobs
    return lambda engine: Jobs(engine, workers=settings.job_workers)
