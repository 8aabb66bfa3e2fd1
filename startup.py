"""Start-up: the one place that builds the engine, the store and every store object from the process settings.

The entry points (the pages, `ui/`, the HTTP routes of `web/`, the command line, the benchmarks) take what they
need from here; everything below them (QA, the engine, the provider adapters, storage) is handed its settings and
collaborators and never reads the process settings itself. Without REDIS_URL the answer cache is on disk and jobs
are in the store (SQLite, or DATABASE_URL's PostgreSQL, shared with the other servers on it); with it, answers,
jobs and the performance figures are shared through Redis with every other app process.

    from startup import diagnose
    result = diagnose(text="2 cm pearly papule on the nose", provider="openai")
    print(result.to_dict())
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from domain.locales import TABLES
from domain.request import DiagnosisRequest, PatientInfo
from domain.result import Diagnosis
from engine.health import ProviderHealth
from engine.jobs import JobRunner
from engine.prometheus_metrics import PrometheusMetrics
from storage.accounts import Accounts, accounts_for
from storage.audit import AuditLog
from storage.audit_trail import AuditTrail
from storage.cache import AnswerCache
from storage.cache.disk import DiskAnswerCache
from storage.devices import KnownDevices
from storage.history import History
from storage.jobs import LEASE_SECONDS, JobStore
from storage.jobs.sql import SqlJobStore
from storage.metrics import MetricsSink
from storage.preferences import Preferences
from storage.readings import Readings
from storage.reviews import Reviews
from storage.sessions import SqlSessionStore, sessions_for
from storage.store import Store
from storage.tokens import SqlTokenStore
from utils.crypto import Sealer
from utils.images import ShrunkImage
from utils.score_calibration import ScoreCalibration, read_calibration
from utils.settings import Settings, SettingsError, get_settings

if TYPE_CHECKING:
    from engine.core import Engine
    from providers.base import Provider
    from storage.metrics.redis import MetricsFeed

_engine: Engine | None = None
_store: Store | None = None
_audit: AuditTrail | None = None
_engine_lock = threading.Lock()


def get_engine() -> Engine:
    """The process-wide engine built from the current settings."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = build_engine(get_settings(), store=_open_store())
        return _engine


def built_engine() -> Engine | None:
    """The process-wide engine if it is built already (at the server's start), else None; never builds it."""
    return _engine


def get_store() -> Store:
    """The process-wide store (history, jobs, accounts), the engine's own, without building the engine.

    Sign-in needs only the accounts: it should not pay for providers, caches and job workers.
    """
    with _engine_lock:
        return _open_store()


def _open_store() -> Store:
    # Called with the lock held. One Store per process, so the file is migrated once per process.
    global _store
    if _store is None:
        _store = open_store(get_settings())
    return _store


def reset_engine() -> None:
    """Forget the engine and the store, and re-read settings on next use (after `.env` changed, and in tests)."""
    global _engine, _store, _audit
    with _engine_lock:
        get_settings.cache_clear()
        if _audit is not None:
            _audit.close()  # what is waiting is written to the store it was recorded for
        if _engine is not None:
            _engine.close()
        _engine = None
        _store = None
        _audit = None


def prepare_image(data: bytes) -> ShrunkImage:
    """Shrink raw photo bytes with the configured limits; raises `InputError` with a clear message."""
    return get_engine().prepare_image(data)


def make_request(text: str | None = None, image: bytes | ShrunkImage | None = None, provider: str | None = None,
                 use_cache: bool = True, *, info: PatientInfo | None = None, language: str = "ko",
                 fallback: bool = True) -> DiagnosisRequest:
    """Build the request object with the process-wide engine's settings (see `Engine.make_request`)."""
    return get_engine().make_request(text, image, provider, use_cache, info=info, language=language,
                                     fallback=fallback)


def diagnose(text: str | None = None, image: bytes | ShrunkImage | None = None, provider: str | None = None,
             use_cache: bool = True, *, info: PatientInfo | None = None, language: str = "ko",
             fallback: bool = True, on_progress: Callable[[str], None] | None = None) -> Diagnosis:
    """Assess a lesion from symptom text and/or raw photo bytes; safe to call from many threads.

    Raises `InputError` for unusable input and `ProviderError` subclasses when no provider answered;
    every message says what to do.
    """
    started = time.monotonic()
    engine = get_engine()
    request = engine.make_request(text, image, provider, use_cache, info=info, language=language, fallback=fallback)
    return engine.diagnose(request, on_progress=on_progress, started=started)


def warm_up(kind: str | None = None) -> list[str]:
    """Wake serverless providers (RunPod) so a cold worker boots while the clinician is still typing.

    Returns immediately with the names of the providers pinged now; at most one ping per provider
    every WARM_UP_SECONDS, so a page may call it on every run.
    """
    return get_engine().warm_up.wake(kind)


# -- the store objects the pages, the API and the commands use -----------------------------------


def history() -> History:
    """The history of the process's store, with the data key (what the command line reads without the engine)."""
    return open_history(get_settings(), get_store())


def reviews() -> Reviews:
    """The QA reviews of the process's store."""
    return Reviews(get_store())


def readings() -> Readings | None:
    """The second readings and arbitrations of the process's store (None when the history is off)."""
    return get_engine().readings


def tokens() -> SqlTokenStore:
    """The API tokens of the process's store."""
    return SqlTokenStore(get_store())


def accounts() -> Accounts:
    """The sign-in accounts of the process's store, with the sign-in policy of the settings."""
    return accounts_for(get_store(), get_settings())


def devices() -> KnownDevices:
    """The devices that signed in before (exempt from an account's sign-in wait), of the process's store."""
    return KnownDevices(get_store())


def preferences() -> Preferences:
    """What each user chose that follows them from browser to browser (the language), of the process's store."""
    return Preferences(get_store(), languages=TABLES)


def metrics_feed() -> MetricsFeed | None:
    """Every app process's performance records (REDIS_URL), for the Performance page; None without Redis."""
    return _metrics_feed(get_settings())


def audit() -> AuditTrail:
    """The process's audit writer (storage/audit_trail.py): `audit().record(Action.…, actor, cases=…, **detail)`
    returns at once and never fails the caller; events go to the process's store."""
    global _audit
    with _engine_lock:
        if _audit is None:
            _audit = open_audit(get_settings(), _open_store())
        return _audit


def audit_log() -> AuditLog:
    """The audit trail of the process's store, to list, verify, export and purge."""
    return AuditLog(get_store())


def close_audit(timeout: float = 10.0) -> None:
    """Write the events still waiting (a command's end): a short-lived process must not drop its own events."""
    if _audit is not None:
        _audit.flush(timeout)


def sessions() -> SqlSessionStore:
    """The sign-in sessions of the process's store, with the session limits of the settings."""
    return sessions_for(get_store(), get_settings())


# -- building from settings ----------------------------------------------------------------------


def open_store(settings: Settings) -> Store:
    """The app's store: DATABASE_URL's PostgreSQL, else SQLite under DATA_DIR (migrated on first use); opens nothing."""
    return Store(settings.database_url or settings.data_dir / "app.db", pool_size=settings.database_pool_size,
                 timeout_seconds=settings.database_timeout_seconds)


def build_engine(settings: Settings, *, store: Store | None = None) -> Engine:
    """An engine with every backend `settings` asks for; `store` shares an already open store."""
    # The providers pull in langchain and the HTTP stack (~1 s): sign-in, which needs only
    # `open_store`, does not pay for them.
    from engine.core import Engine
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
                    jobs=_jobs_factory(settings, job_store), observer=metrics, calibration=calibration(settings))
    return engine


def calibration(settings: Settings) -> ScoreCalibration | None:
    """The score calibration of CALIBRATION_FILE with REFER_BELOW (None when unset); `SettingsError` when the file
    cannot be used (checked when the settings were read, but it may have changed since)."""
    if settings.calibration_file is None:
        return None
    try:
        return read_calibration(settings.calibration_file, refer_below=settings.refer_below)
    except ValueError as exc:
        raise SettingsError(f"CALIBRATION_FILE ({settings.calibration_file}) cannot be used: {exc}") from None


def _health(settings: Settings, providers: dict[str, Provider]) -> dict[str, ProviderHealth]:
    return {name: ProviderHealth(name, failures_to_open=settings.health_failures,
                                 cooldown=settings.health_cooldown_seconds, cold_start=settings.cold_start_seconds,
                                 serverless=p.serverless,
                                 hedge_bounds=(settings.hedge_min_seconds, settings.hedge_max_seconds),
                                 idle_timeout=settings.serverless_idle_seconds)
            for name, p in providers.items()}


def _answer_cache(settings: Settings, sealer: Sealer) -> AnswerCache:
    if settings.redis_url:  # more than one server: answers are shared through Redis
        from storage.cache.redis import RedisAnswerCache  # only imported (and redis needed) when REDIS_URL is set
        return RedisAnswerCache.from_settings(settings, sealer=sealer)
    return DiskAnswerCache(settings.data_dir / "cache", ttl_seconds=settings.cache_ttl_seconds,
                           enabled=settings.cache_enabled, sealer=sealer)


def _history(settings: Settings, store: Store, sealer: Sealer) -> History | None:
    if not settings.history_enabled:
        return None
    # With REDIS_URL every process's figures also go to Redis, for the Performance page.
    return open_history(settings, store, sealer=sealer, metrics=_metrics_feed(settings))


def open_history(settings: Settings, store: Store | None = None, *, sealer: Sealer | None = None,
                 metrics: MetricsSink | None = None) -> History:
    """The history on `store` (by default `open_store(settings)`) with the data key: what the engine records
    into, and what the command line reads without building the engine."""
    return History(store or open_store(settings), keep_images=settings.history_keep_images,
                   retention_days=settings.history_retention_days,
                   sealer=sealer or Sealer(settings.data_encryption_key), metrics=metrics)


def open_audit(settings: Settings, store: Store | None = None) -> AuditTrail:
    """An audit writer on `store` (by default `open_store(settings)`) with AUDIT_RETENTION_DAYS."""
    return AuditTrail(AuditLog(store or open_store(settings)), retention_days=settings.audit_retention_days)


def _metrics_feed(settings: Settings) -> MetricsFeed | None:
    if not settings.redis_url:
        return None
    from storage.metrics.redis import feed_for  # only imported (and redis needed) when REDIS_URL is set
    return feed_for(settings.redis_url, settings.history_retention_days * 86_400)


def _job_store(settings: Settings, store: Store, sealer: Sealer) -> JobStore:
    """Where jobs are kept; built at once (it opens no connection) so the metrics can count its jobs before the
    runner starts."""
    if settings.redis_url:
        # One queue for every app process: a job submitted here may run, and be read, in another.
        from storage.jobs.redis import RedisJobStore
        return RedisJobStore.from_url(settings.redis_url, sealer=sealer,
                                      retention_seconds=settings.history_retention_days * 86_400)
    # Else the store's `jobs` table: SQLite is one machine's, so a start interrupts what a previous run left;
    # a PostgreSQL may be shared by several servers, so a job is interrupted only when its server stops renewing
    # its lease (storage/jobs/).
    return SqlJobStore(store, sealer=sealer, lease_seconds=LEASE_SECONDS if store.dialect == "postgresql" else None)


def _jobs_factory(settings: Settings,
                  job_store: JobStore) -> Callable[[Callable[[DiagnosisRequest], Diagnosis]], JobRunner]:
    """How the engine makes its job runner on first use (starting one marks a previous run's jobs interrupted)."""
    def make(diagnose: Callable[[DiagnosisRequest], Diagnosis]) -> JobRunner:
        return JobRunner(job_store, diagnose, workers=settings.job_workers,
                         max_queued_per_user=settings.job_max_queued_per_user)
    return make
