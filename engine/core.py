"""The engine: one request in, one result out, for the pages, the command line and the benchmarks.

It checks the input, chooses the providers and runs an assessment through them; the backends it
works with (cache, store, history, job runner) are built by `startup` and handed in.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

from domain.demo import DEMO_PROVIDER
from domain.errors import DiagnosisError, InputError, ProviderError, ProviderNotConfigured, ProviderUnavailable
from domain.messages import Message
from domain.parser import parse_answer
from domain.prompt import build_messages
from domain.request import LANGUAGES, DiagnosisRequest, PatientInfo
from domain.result import Diagnosis, ParsedAnswer, Usage
from engine import runtime
from engine.answering import Answerer
from engine.assist import Assistant
from engine.cache_keys import answer_key
from engine.demo import Demo, DemoSource
from engine.health import ProviderHealth
from engine.jobs import JobRunner
from engine.recording import AssessmentObserver, Recorder
from engine.retry import RetryPolicy
from engine.second_reading import SecondReader
from engine.warmup import WarmUp
from providers.base import Provider
from storage.cache import AnswerCache
from storage.database import StoreUnavailable
from storage.history import History
from storage.readings import Readings
from storage.store import Store
from utils.crypto import Sealer
from utils.images import ImageRejected, ShrunkImage, shrink_image
from utils.score_calibration import ScoreCalibration
from utils.settings import Settings

log = logging.getLogger(__name__)

_MAX_INFO_CHARS = 200  # body site, duration, sex: a few words each
# Threads for the API's blocking moments (cache, history write, photo shrinking): a few milliseconds each, so a few
# threads serve hundreds of assessments in flight; the waiting for providers holds none.
IO_THREADS = 8
T = TypeVar("T")


class Engine:
    """Assesses requests with the configured providers; safe to share between threads."""

    def __init__(self, settings: Settings, *, sealer: Sealer, providers: dict[str, Provider],
                 health: dict[str, ProviderHealth], cache: AnswerCache, store: Store, history: History | None,
                 jobs: Callable[[Callable[[DiagnosisRequest], Diagnosis]], JobRunner],
                 observer: AssessmentObserver | None = None, calibration: ScoreCalibration | None = None) -> None:
        """Use `startup.build_engine(settings)`, which builds these backends from the settings.

        `health` has one record per provider; `history` is None when HISTORY_ENABLED=false;
        `jobs(diagnose)` makes the background job runner, which runs `diagnose`, on first use;
        `observer` is told of every assessment, answered or failed (the Prometheus metrics); `calibration` maps each
        provider's top-1 score to a calibrated one (CALIBRATION_FILE; None: off), set on every result.
        """
        self.settings = settings
        self.calibration = calibration
        self.sealer = sealer  # encryption at rest (a pass-through without a key); the job runner reads it too
        self.providers = providers
        self.health = health
        self.cache = cache
        self.store = store
        self.history = history
        self._make_jobs = jobs
        self._jobs: JobRunner | None = None
        self._jobs_lock = threading.Lock()
        # Looked up through the engine at each use: a benchmark may swap `providers` or add health records.
        self.warm_up = WarmUp(lambda: self.providers.values(), self._health_of, settings)
        self.answerer = Answerer(cache=cache, attempt=RetryPolicy(settings, self._health_of).attempts,
                                 health_of=self._health_of, warm_up=self.warm_up, settings=settings)
        self.observer = observer
        self.recorder = Recorder(history, cache, keep_images=settings.history_keep_images, observer=observer)
        self.demo = Demo(history)
        self.assist = Assistant(self.answerer, chain=self.chain, validate=self.validate, settings=settings)
        self._pool = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="engine-io")
        # Double reading needs the case in the history to sit beside.
        self.readings = Readings(store, sealer) if history is not None else None
        self.second = SecondReader(settings, providers=providers, health_of=self._health_of, answerer=self.answerer,
                                   readings=self.readings, jobs=lambda: self.jobs, observer=observer)

    def _health_of(self, name: str) -> ProviderHealth:
        return self.health[name]

    @property
    def jobs(self) -> JobRunner:
        """The background job runner (over SQLite, or Redis with REDIS_URL), started on first use.

        Starting it marks a previous run's jobs interrupted.
        """
        with self._jobs_lock:
            if self._jobs is None:
                self._jobs = self._make_jobs(self.diagnose)
            return self._jobs

    def close(self) -> None:
        """Close every provider's connections; the engine must not be used afterwards."""
        self.warm_up.stop()
        self._pool.shutdown(wait=False)
        if self._jobs is not None:
            self._jobs.shutdown()
        self.cache.close()

        async def close_all() -> None:
            for provider in [*self.providers.values(), *([self.second.provider] if self.second.provider else [])]:
                await provider.aclose()
        runtime.run(lambda _emit: close_all())

    # -- input ------------------------------------------------------------------------------

    def prepare_image(self, data: bytes) -> ShrunkImage:
        """Shrink raw photo bytes with the configured limits; raises `InputError` with a clear message."""
        s = self.settings
        try:
            return shrink_image(data, max_side=s.image_max_side, quality=s.image_jpeg_quality,
                                max_bytes=s.image_max_upload_bytes, max_pixels=s.image_max_pixels,
                                concurrency=s.image_decode_concurrency)
        except ImageRejected as exc:
            raise InputError(Message(exc.code, exc.params)) from None

    def make_request(self, text: str | None = None, image: bytes | ShrunkImage | None = None,
                     provider: str | None = None, use_cache: bool = True, *, info: PatientInfo | None = None,
                     language: str = "ko", fallback: bool = True, source: str = "page",
                     user: str | None = None, demo: bool = False) -> DiagnosisRequest:
        """Build the request object; raw photo bytes are shrunk here, an already shrunk photo is kept.

        `demo`: the session chose the demo, so the demo pack answers (as with DEMO_MODE=true)."""
        if isinstance(image, (bytes, bytearray, memoryview)):
            image = self.prepare_image(bytes(image))
        return DiagnosisRequest(text=text or "", image=image, info=info or PatientInfo(), language=language,
                                provider=provider or None, use_cache=use_cache, fallback=fallback, source=source,
                                user=user, demo=demo)

    def validate(self, request: DiagnosisRequest) -> None:
        """Raise what `diagnose` would raise before asking anyone (for a job about to be queued)."""
        self._validate(request)
        if not self.demo_mode(request):  # in demo mode no provider is asked, so none need be configured
            self._provider_for(request)

    def demo_mode(self, request: DiagnosisRequest | None = None) -> bool:
        """Whether the demo pack answers: DEMO_MODE=true, `request` comes from a session that chose the demo, or it
        asks for the provider "demo" by name (a Provider QA batch over the demo cases)."""
        return self.settings.demo_mode or (request is not None and (request.demo or request.provider == DEMO_PROVIDER))

    def offered(self, demo: bool = False) -> dict[str, Provider | DemoSource]:
        """The providers a page may offer: the configured ones; in demo mode (`demo`: the session's choice) the demo
        pack alone, since no provider is asked then."""
        if demo or self.settings.demo_mode:
            return {DEMO_PROVIDER: self.demo.source}
        return {name: p for name, p in self.providers.items() if p.configured}

    def source(self, name: str) -> Provider | DemoSource | None:
        """The provider called `name`, or the demo pack for "demo"; None for an unknown name."""
        return self.demo.source if name == DEMO_PROVIDER else self.providers.get(name)

    def title_of(self, name: str) -> str:
        """The title of provider `name` (the demo pack's for "demo"), for a report; the name when unknown."""
        found = self.source(name)
        return found.title if found is not None else name

    # -- choosing ---------------------------------------------------------------------------

    def default_provider(self, kind: str) -> str:
        """The provider used for 'text' or 'image' when none is chosen.

        The configured default (SKIN_DIAGNOSIS_PROVIDER / SKIN_DIAGNOSIS_IMAGE_PROVIDER) when it
        can answer, else the first configured provider that can, else the configured default name.
        """
        wanted = self.settings.image_provider if kind == "image" else self.settings.text_provider
        usable = [p.name for p in self.providers.values() if p.configured and (kind == "text" or p.accepts_images)]
        return wanted if wanted in usable or not usable else usable[0]

    def _provider_for(self, request: DiagnosisRequest) -> Provider:
        name = request.provider or self.default_provider(request.kind)
        provider = self.providers.get(name)
        if provider is None:
            raise InputError(Message("input.unknown_provider", {"name": name, "choices": ", ".join(self.providers)}))
        if not provider.configured:
            others = [p.title for p in self.providers.values() if p.configured]
            raise ProviderNotConfigured(provider.not_configured(others), provider=name)
        if request.image is not None and not provider.accepts_images:
            raise InputError(Message("input.no_photos", {"title": provider.title}))
        return provider

    def _validate(self, request: DiagnosisRequest) -> None:
        if request.image is None and not request.text.strip():
            raise InputError(Message("input.empty"))
        if len(request.text) > self.settings.max_text_chars:
            raise InputError(Message("input.text_too_long",
                                     {"chars": len(request.text), "limit": self.settings.max_text_chars}))
        info = request.info
        # Keys of the word group "field" ("word.field.<name>"), so the message names the field in any language.
        fields = (("description", request.text), ("body_site", info.body_site), ("duration", info.duration),
                  ("sex", info.sex))
        for name, value in fields[1:]:  # the description's limit must not be side-stepped through these
            if len(value) > _MAX_INFO_CHARS:
                raise InputError(Message("input.field_too_long",
                                         {"field": name, "chars": len(value), "limit": _MAX_INFO_CHARS}))
        for name, value in fields:
            try:  # lone surrogates (invalid UTF-8 on a command line) would fail later, in the cache key or the request
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InputError(Message("input.field_not_text", {"field": name})) from None
        if request.language not in LANGUAGES:
            raise InputError(Message("input.unknown_language",
                                     {"language": request.language, "choices": ", ".join(LANGUAGES)}))

    def budget(self, kind: str) -> float:
        """Seconds one assessment of this kind may take, retries included."""
        return self.settings.image_budget_seconds if kind == "image" else self.settings.text_budget_seconds

    # -- routing ----------------------------------------------------------------------------

    def chain(self, request: DiagnosisRequest) -> list[Provider]:
        """The providers to try for `request`, in order.

        The chosen one first, then the fallbacks (PROVIDER_FALLBACKS, else every other configured
        provider) that can take this input; providers cooling down after failures or cold starts
        go last, and a hosted provider may appear a second time as a hedge against its own slow tail.
        """
        primary = self._provider_for(request)
        if not request.fallback:
            return [primary]
        order = self.settings.provider_fallbacks
        names = list(self.providers) if order is None else list(order)
        others = [self.providers[n] for n in names if n in self.providers and n != primary.name]
        usable = [primary] + [p for p in others if p.configured and (request.image is None or p.accepts_images)]
        # A scale-to-zero worker that has gone quiet would only make this case wait for a boot.
        skip = {p.name for p in usable
                if self.health[p.name].cooling_down or (self.health[p.name].likely_cold and len(usable) > 1)}
        ready = [p for p in usable if p.name not in skip]
        hosted_again = [p for p in ready if not p.serverless][:1]
        return ready + hosted_again + [p for p in usable if p.name in skip]

    # -- assessing --------------------------------------------------------------------------

    def diagnose(self, request: DiagnosisRequest, on_progress: Callable[[str], None] | None = None, *,
                 started: float | None = None) -> Diagnosis:
        """Assess `request`; `on_progress` gets the raw answer so far while it streams.

        The time budget runs from `started` (a `time.monotonic()` value; default now), so that a
        caller who shrank the photo as part of the assessment counts that time too. Raises
        `InputError` for unusable input and a `ProviderError` subclass when no answer came in time.
        """
        return runtime.drive(self._assessment(request, time.monotonic() if started is None else started),
                             on_progress)

    async def adiagnose(self, request: DiagnosisRequest, *, started: float | None = None) -> Diagnosis:
        """`diagnose` for an event loop (the HTTP API): no thread is held while the providers answer.

        The cache, the history and the checks run in the engine's small thread pool, the provider
        calls on the provider loop; the same steps as `diagnose`, without progress.
        """
        return await self.aplan(self._assessment(request, time.monotonic() if started is None else started))

    async def aplan(self, plan: runtime.Plan[T]) -> T:
        """Run `plan` from an event loop: its blocking steps in the engine's pool, its calls on the provider loop
        (refine and explain for the API: `assist.refine_plan`, `assist.explain_plan`)."""
        return await runtime.adrive(plan, self._pool)

    async def offload(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in the engine's bounded thread pool (shrinking a photo for the API), awaited."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    def _assessment(self, request: DiagnosisRequest, started: float) -> runtime.Plan[Diagnosis]:
        self._validate(request)
        if request.second_reading_of is not None:  # the second reader's job: a reading beside the case
            second: Diagnosis = yield from self.second.read(request, started)
            return second
        if self.demo_mode(request):
            return self._replay(request, started)
        chain = self.second.first_chain(self.chain(request), request)
        self.warm_up.touch()
        keys = {p.name: answer_key(request, p, self.settings) for p in dict.fromkeys(chain)}
        try:
            got = yield from self.answerer.plan(chain, build_messages(request), keys, kind=request.kind,
                                                budget=self.budget(request.kind), started=started,
                                                use_cache=request.use_cache)
        except ProviderError as exc:
            self.recorder.failure(request, exc, started)
            raise
        result = self._result(request, got.provider, got.raw, got.usage, started, cached=got.cached,
                              answer=got.answer)
        if (outcome := got.outcome) is not None:
            first_token_ms = None if outcome.first_token_s is None else outcome.first_token_s * 1000
            result = replace(result, first_token_ms=first_token_ms, hedged=outcome.hedged, fallback=outcome.fallback,
                             tried=outcome.tried)
            log.info("assessment kind=%s provider=%s tried=%s hedged=%s fallback=%s complete=%s elapsed_ms=%.0f",
                     request.kind, got.provider.name, ",".join(outcome.tried), outcome.hedged, outcome.fallback,
                     result.complete, result.elapsed_ms)
        recorded = yield from self.recorder.record(request, result, got.key)
        return self.second.ask(request, recorded)

    def _replay(self, request: DiagnosisRequest, started: float) -> Diagnosis:
        """Demo mode: a demo pack case's recorded answer, else the pinned answer to this case; no provider is asked."""
        try:
            case = self.demo.pack.match(request)
            if case is not None:  # recorded as the clinician's own assessment, marked demo by its provider
                return self.recorder.recorded(request, self.demo.answer(request, case, started), None)
            pinned = self.history.pinned_answer(self._pinned_keys(request)) if self.history else None
        except StoreUnavailable:  # the page, the command line and the API show this instead of a traceback
            log.warning("demo replay: the history database is unavailable")
            raise ProviderUnavailable(Message("demo.store_down"), retryable=True) from None
        if pinned is None:
            raise self.demo.not_in_set()
        provider = self.providers.get(pinned["provider"]) or next(iter(self.providers.values()))
        usage = Usage(pinned["prompt_tokens"], pinned["completion_tokens"])
        result = replace(self._result(request, provider, pinned["raw"], usage, started, cached=True),
                         model=pinned["model"], replayed=True, assessment_id=pinned["id"])
        return self.recorder.replayed(request, result)

    def _pinned_keys(self, request: DiagnosisRequest) -> list[str]:
        """The cache keys a case pinned after a real provider call may have: one per configured provider asked."""
        try:
            chain = self.chain(request)
        except DiagnosisError:  # no provider configured, or none takes this input: nothing was pinned under one
            return []
        return [answer_key(request, p, self.settings) for p in dict.fromkeys(chain)]

    def _result(self, request: DiagnosisRequest, provider: Provider, raw: str, usage: Usage, started: float,
                *, cached: bool, answer: ParsedAnswer | None = None) -> Diagnosis:
        answer = answer or parse_answer(raw)
        calibrated = None
        if self.calibration is not None and answer.label is not None:
            calibrated = self.calibration.calibrate(provider.name, answer.label.score)
        return Diagnosis(answer=answer, provider=provider.name, model=provider.model,
                         raw=raw, elapsed_ms=(time.monotonic() - started) * 1000, usage=usage, cached=cached,
                         image=request.image, tried=(provider.name,), calibrated=calibrated)

    def forget(self, assessment_id: str) -> bool:
        """Delete everything about one case: its history row, its reviews and its cached answer."""
        return self.recorder.forget(assessment_id)
