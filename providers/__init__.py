"""The assessment engine. The UI, the command line and the benchmarks all enter here.

    from providers import diagnose
    result = diagnose(text="2 cm pearly papule on the nose", provider="openai")
    print(result.to_dict())
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from domain.errors import (
    DiagnosisError,
    InputError,
    ProviderAuthError,
    ProviderError,
    ProviderNotConfigured,
    ProviderRateLimited,
    ProviderRequestError,
    ProviderTimeout,
    ProviderUnavailable,
)
from domain.request import DiagnosisRequest, PatientInfo
from domain.result import Diagnosis
from storage.store import Store
from utils.images import ShrunkImage
from utils.settings import get_settings

if TYPE_CHECKING:
    from providers.engine import Engine

__all__ = [
    "diagnose", "warm_up", "get_engine", "get_store", "reset_engine", "make_request", "prepare_image", "Engine",
    "Diagnosis", "DiagnosisRequest", "PatientInfo", "DiagnosisError", "InputError", "ProviderError",
    "ProviderNotConfigured", "ProviderAuthError", "ProviderRequestError", "ProviderRateLimited", "ProviderTimeout",
    "ProviderUnavailable",
]

_engine: Engine | None = None
_store: Store | None = None
_engine_lock = threading.Lock()


def __getattr__(name: str):
    # `Engine` pulls in langchain and the HTTP stack (~1 s); only callers that need it pay for it,
    # so `import providers.base` or a page that only reads settings stays light.
    if name == "Engine":
        from providers.engine import Engine
        return Engine
    raise AttributeError(f"module 'providers' has no attribute {name!r}")


def get_engine() -> Engine:
    """The process-wide engine built from the current settings."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from providers.wiring import build_engine
            _engine = build_engine(get_settings(), store=_open_store())
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
        from providers.wiring import open_store
        _store = open_store(get_settings())
    return _store


def reset_engine() -> None:
    """Forget the engine and the store, and re-read settings on next use (after `.env` changed, and in tests)."""
    global _engine, _store
    with _engine_lock:
        get_settings.cache_clear()
        if _engine is not None:
            _engine.close()
        _engine = None
        _store = None


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
