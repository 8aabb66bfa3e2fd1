"""The engine: one request in, one result out, for the pages, the command line and the benchmarks."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import sqlite3
import threading
import time
from dataclasses import replace
from typing import Callable

from providers import runtime
from providers.base import Attempt, Provider
from domain.errors import InputError, ProviderError, ProviderNotConfigured, ProviderTimeout
from providers.health import ProviderHealth
from providers.jobs import JobRunner
from domain.parser import parse_answer
from domain.prompt import (HELPER_PROMPT_VERSION, PROMPT_VERSION, build_messages, explain_messages,
                              refine_messages)
from providers.registry import build_providers
from domain.request import LANGUAGES, DiagnosisRequest, PatientInfo
from domain.result import Assist, Diagnosis, ParsedAnswer, TextAnswer, Usage
from providers.routing import Outcome, Race
from providers.warmup import WarmUp
from storage.cache import AnswerCache, DiskAnswerCache, cache_key
from utils.crypto import Sealer
from storage.history import History, thumbnail
from storage.jobs import SqliteJobStore
from utils.images import ImageRejected, ShrunkImage, shrink_image
from utils.settings import Settings
from storage.store import Store, dumps

log = logging.getLogger(__name__)

_MAX_BACKOFF = 8.0
_STOP_EARLY = 0.02  # of the budget, at most 0.25 s
_MAX_INFO_CHARS = 200  # body site, duration, sex: a few words each


class Engine:
    """Assesses requests with the configured providers; safe to share between threads."""

    def __init__(self, settings: Settings, *, cache: AnswerCache | None = None) -> None:
        self.settings = settings
        self.sealer = Sealer(settings.data_encryption_key)  # encryption at rest; a pass-through without a key
        self.providers: dict[str, Provider] = build_providers(settings)
        if cache is None and settings.redis_url:  # more than one server: answers are shared through Redis
            from storage.redis_cache import RedisAnswerCache  # only imported (and redis needed) with REDIS_URL
            cache = RedisAnswerCache.from_settings(settings, sealer=self.sealer)
        self.cache: AnswerCache = cache or DiskAnswerCache(
            settings.data_dir / "cache", ttl_seconds=settings.cache_ttl_seconds, enabled=settings.cache_enabled,
            sealer=self.sealer)
        self.health = {name: ProviderHealth(name, failures_to_open=settings.health_failures,
                                            cooldown=settings.health_cooldown_seconds,
                                            cold_start=settings.cold_start_seconds, serverless=p.serverless,
                                            hedge_bounds=(settings.hedge_min_seconds, settings.hedge_max_seconds),
                                            idle_timeout=settings.serverless_idle_seconds)
                       for name, p in self.providers.items()}
        self.warm_up = WarmUp(self)
        self.store = Store(settings.data_dir / "app.db")
        self._jobs: JobRunner | None = None
        self._jobs_lock = threading.Lock()
        metrics = None
        if settings.history_enabled and settings.redis_url:  # and every process's figures, for the Performance page
            from storage.redis_metrics import feed_for
            metrics = feed_for(settings.redis_url, settings.history_retention_days * 86_400)
        self.history = (History(self.store, keep_images=settings.history_keep_images,
                                retention_days=settings.history_retention_days, sealer=self.sealer, metrics=metrics)
                        if settings.history_enabled else None)

    @property
    def jobs(self) -> JobRunner:
        """The background job runner, started on first use (it marks a previous run's jobs interrupted).

        With REDIS_URL set, the jobs live in Redis and this process's workers share one queue with every other.
        """
        with self._jobs_lock:
            if self._jobs is None:
                s = self.settings
                if s.redis_url:  # one queue for every process: a job submitted here may run, and be read, in another
                    from storage.redis_jobs import RedisJobStore
                    store = RedisJobStore.from_url(s.redis_url, sealer=self.sealer,
                                                   retention_seconds=s.history_retention_days * 86_400)
                else:
                    store = SqliteJobStore(self.store, sealer=self.sealer)
                self._jobs = JobRunner(store, self.diagnose, workers=s.job_workers)
            return self._jobs

    def close(self) -> None:
        """Close every provider's connections; the engine must not be used afterwards."""
        self.warm_up.stop()
        if self._jobs is not None:
            self._jobs.shutdown()
        self.cache.close()

        async def close_all():
            for provider in self.providers.values():
                await provider.aclose()
        runtime.run(lambda _emit: close_all())

    # -- input ------------------------------------------------------------------------------

    def prepare_image(self, data: bytes) -> ShrunkImage:
        """Shrink raw photo bytes with the configured limits; raises `InputError` with a clear message."""
        s = self.settings
        try:
            return shrink_image(data, max_side=s.image_max_side, quality=s.image_jpeg_quality,
                                max_bytes=int(s.image_max_upload_mb * 1_000_000), max_pixels=s.image_max_pixels)
        except ImageRejected as exc:
            raise InputError(str(exc)) from None

    def make_request(self, text: str | None = None, image: bytes | ShrunkImage | None = None,
                     provider: str | None = None, use_cache: bool = True, *, info: PatientInfo | None = None,
                     language: str = "ko", fallback: bool = True, source: str = "page",
                     user: str | None = None) -> DiagnosisRequest:
        """Build the request object; raw photo bytes are shrunk here, an already shrunk photo is kept."""
        if isinstance(image, (bytes, bytearray, memoryview)):
            image = self.prepare_image(bytes(image))
        return DiagnosisRequest(text=text or "", image=image, info=info or PatientInfo(), language=language,
                                provider=provider or None, use_cache=use_cache, fallback=fallback, source=source,
                                user=user)

    def validate(self, request: DiagnosisRequest) -> None:
        """Raise what `diagnose` would raise before asking anyone (for a job about to be queued)."""
        self._validate(request)
        self._provider_for(request)

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
            raise InputError(f"Unknown provider '{name}': choose one of {', '.join(self.providers)}.")
        if not provider.configured:
            others = [p.title for p in self.providers.values() if p.configured]
            also = f" Configured now: {', '.join(others)}." if others else ""
            raise ProviderNotConfigured(f"{provider.title} is not configured: {provider.setup_hint()}.{also}",
                                        provider=name)
        if request.image is not None and not provider.accepts_images:
            raise InputError(f"{provider.title} does not accept photos: choose another provider, "
                             "or describe the lesion in text.")
        return provider

    def _validate(self, request: DiagnosisRequest) -> None:
        if request.image is None and not request.text.strip():
            raise InputError("Give a photo of the lesion or describe it in text (either is enough).")
        if len(request.text) > self.settings.max_text_chars:
            raise InputError(f"The description has {len(request.text):,} characters; the limit is "
                             f"{self.settings.max_text_chars:,}. Please shorten it.")
        info = request.info
        fields = (("description", request.text), ("body site", info.body_site), ("duration", info.duration),
                  ("sex", info.sex))
        for name, value in fields[1:]:  # the description's limit must not be side-stepped through these
            if len(value) > _MAX_INFO_CHARS:
                raise InputError(f"The {name} has {len(value):,} characters; the limit is {_MAX_INFO_CHARS}. "
                                 "Please shorten it.")
        for name, value in fields:
            try:  # lone surrogates (invalid UTF-8 on a command line) would fail later, in the cache key or the request
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InputError(f"The {name} contains characters that are not valid text (a broken encoding?). "
                                 "Please type it again.") from None
        if request.language not in LANGUAGES:
            raise InputError(f"Unknown language '{request.language}': use one of {', '.join(LANGUAGES)}.")

    def budget(self, kind: str) -> float:
        """Seconds one assessment of this kind may take, retries included."""
        return self.settings.image_budget_seconds if kind == "image" else self.settings.text_budget_seconds

    # -- caching ----------------------------------------------------------------------------

    def cache_key(self, request: DiagnosisRequest, provider: Provider) -> str:
        """The versioned key of this request's answer from `provider`."""
        s = self.settings
        return cache_key({
            "provider": provider.name, "model": provider.model, "base_url": provider.base_url,
            "prompt": PROMPT_VERSION, "temperature": s.temperature, "max_tokens": s.max_tokens,
            "language": request.language, "text": request.text.strip(), "info": request.info.canonical(),
            "image": hashlib.sha256(request.image.jpeg).hexdigest() if request.image else None,
        })

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

    def _look_after_skipped(self, chain: list[Provider]) -> None:
        """Probe providers whose cool-down is over; wake quiet serverless ones for the next clinician."""
        for provider in dict.fromkeys(chain):
            health = self.health[provider.name]
            if health.cooling_down:
                self.warm_up.probe(provider)
            elif health.likely_cold and provider is not chain[0] and self.settings.warm_up:
                self.warm_up.wake_one(provider)

    # -- assessing --------------------------------------------------------------------------

    def diagnose(self, request: DiagnosisRequest, on_progress: Callable[[str], None] | None = None, *,
                 started: float | None = None) -> Diagnosis:
        """Assess `request`; `on_progress` gets the raw answer so far while it streams.

        The time budget runs from `started` (a `time.monotonic()` value; default now), so that a
        caller who shrank the photo as part of the assessment counts that time too. Raises
        `InputError` for unusable input and a `ProviderError` subclass when no answer came in time.
        """
        started = time.monotonic() if started is None else started
        self._validate(request)
        chain = self.chain(request)
        self.warm_up.touch()
        keys = {p.name: self.cache_key(request, p) for p in dict.fromkeys(chain)}
        if self.settings.demo_mode:
            return self._replay(request, keys, started)
        if request.use_cache:
            for name, key in keys.items():
                if hit := self.cache.get(key):
                    result = self._result(request, self.providers[name], hit["raw"], Usage(*hit["usage"]), started,
                                          cached=True)
                    return self._recorded(request, result, key)

        self._look_after_skipped(chain)
        budget = self.budget(request.kind)
        # Stop a hair early: cancelling calls and handing the result back takes a few milliseconds,
        # and the clinician must have the answer (or the message) by the budget, not after it.
        deadline = started + budget - min(_STOP_EARLY * budget, 0.25)
        messages = build_messages(request)

        async def race(emit: Callable[[str], None]) -> Outcome:
            return await Race(self, chain, messages, started=started, budget=budget, deadline=deadline,
                              kind=request.kind, emit=emit).run()

        try:
            outcome: Outcome = runtime.run(race, on_progress)
        except ProviderError as exc:
            self._record_failure(request, exc, started)
            raise
        attempt, provider = outcome.attempt, outcome.provider
        result = replace(self._result(request, provider, attempt.raw, attempt.usage, started, cached=False,
                                      answer=outcome.answer),
                         first_token_ms=None if outcome.first_token_s is None else outcome.first_token_s * 1000,
                         hedged=outcome.hedged, fallback=outcome.fallback, tried=outcome.tried)
        if result.complete:
            self.cache.set(keys[provider.name],
                           {"raw": attempt.raw, "usage": [attempt.usage.prompt_tokens, attempt.usage.completion_tokens]})
        log.info("assessment kind=%s provider=%s tried=%s hedged=%s fallback=%s complete=%s elapsed_ms=%.0f",
                 request.kind, provider.name, ",".join(outcome.tried), outcome.hedged, outcome.fallback,
                 result.complete, result.elapsed_ms)
        return self._recorded(request, result, keys[provider.name])

    def _replay(self, request: DiagnosisRequest, keys: dict[str, str], started: float) -> Diagnosis:
        """Demo mode: the pinned answer to this case, from the store; no provider is asked."""
        pinned = self.history.pinned_answer(keys.values()) if self.history else None
        if pinned is None:
            raise InputError("Demo mode replays pinned cases only, and this case is not one of them: "
                             "choose a pinned case, or set DEMO_MODE=false to ask a provider.")
        provider = self.providers.get(pinned["provider"]) or next(iter(self.providers.values()))
        usage = Usage(pinned["prompt_tokens"], pinned["completion_tokens"])
        result = replace(self._result(request, provider, pinned["raw"], usage, started, cached=True),
                         model=pinned["model"], replayed=True, assessment_id=pinned["id"])
        return result

    # -- helper pipelines -------------------------------------------------------------------

    def refine(self, text: str, *, language: str = "ko", provider: str | None = None,
               use_cache: bool = True) -> Assist:
        """A patient's own words rewritten as a concise clinical description (the original 'refine')."""
        if not text.strip():
            raise InputError("Type the patient's description first: there is nothing to refine.")
        self._validate(DiagnosisRequest(text=text, language=language))  # the same limits as an assessment's
        return self._assist("refine", refine_messages(text, language), text.strip(), language, provider, use_cache)

    def explain(self, result: Diagnosis, *, language: str = "ko", provider: str | None = None,
                use_cache: bool = True) -> Assist:
        """An assessment in plain language for the patient (the original 'explain')."""
        if result.label is None:
            raise InputError("This answer names no lesion class, so there is nothing to explain: re-run it first.")
        label = result.label.lesion.name_ko if language == "ko" else result.label.lesion.name_en
        risk = result.risk_flag.value if result.risk_flag else "benign"
        messages = explain_messages(label, risk, result.answer.summary, language)
        return self._assist("explain", messages, f"{label}|{risk}|{result.answer.summary}", language, provider,
                            use_cache)

    def _assist(self, task: str, messages: list[dict], subject: str, language: str, provider: str | None,
                use_cache: bool) -> Assist:
        # Same providers, cache, budget and race as an assessment; only the answer is plain text.
        started = time.monotonic()
        chain = self.chain(DiagnosisRequest(text=subject, language=language, provider=provider))
        keys = {p.name: cache_key({"task": task, "prompt": HELPER_PROMPT_VERSION, "provider": p.name,
                                   "model": p.model, "base_url": p.base_url, "language": language,
                                   "temperature": self.settings.temperature, "input": subject})
                for p in dict.fromkeys(chain)}
        if use_cache:
            for name, key in keys.items():
                if hit := self.cache.get(key):
                    return Assist(task, hit["raw"], name, self.providers[name].model,
                                  (time.monotonic() - started) * 1000, Usage(*hit["usage"]), cached=True)
        budget = self.budget("text")
        deadline = started + budget - min(_STOP_EARLY * budget, 0.25)

        async def race(emit: Callable[[str], None]) -> Outcome:
            return await Race(self, chain, messages, started=started, budget=budget, deadline=deadline,
                              kind="text", emit=emit, judge=lambda raw: TextAnswer(raw.strip())).run()

        outcome: Outcome = runtime.run(race)
        text = outcome.answer.text
        if text:
            self.cache.set(keys[outcome.provider.name],
                           {"raw": text, "usage": [outcome.attempt.usage.prompt_tokens,
                                                   outcome.attempt.usage.completion_tokens]})
        return Assist(task, text, outcome.provider.name, outcome.provider.model, (time.monotonic() - started) * 1000,
                      outcome.attempt.usage)

    # -- history ----------------------------------------------------------------------------

    def _recorded(self, request: DiagnosisRequest, result: Diagnosis, key: str | None) -> Diagnosis:
        answer = result.answer
        row = self._row(request, result.elapsed_ms)
        row.update(
            provider=result.provider, model=result.model, complete=int(answer.complete),
            label_code=answer.label.lesion.code if answer.label else None,
            label_score=answer.label.score if answer.label else None,
            risk=result.risk_flag.value if result.risk_flag else None, summary=answer.summary,
            similar=dumps([s.to_dict() for s in answer.similar]), raw=result.raw,
            first_token_ms=result.first_token_ms, prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens, cached=int(result.cached),
            fallback=int(result.fallback), hedged=int(result.hedged), tried=",".join(result.tried), cache_key=key)
        assessment_id = self._write(row)
        return replace(result, assessment_id=assessment_id) if assessment_id else result

    def _record_failure(self, request: DiagnosisRequest, exc: ProviderError, started: float) -> None:
        row = self._row(request, (time.monotonic() - started) * 1000)
        row.update(provider=exc.provider or None, error=type(exc).__name__)
        self._write(row)

    def _row(self, request: DiagnosisRequest, latency_ms: float) -> dict:
        row = {"user": request.user, "source": request.source, "qa_case": request.qa_case, "kind": request.kind,
               "language": request.language, "text": request.text, "info": dumps(request.info.canonical()),
               "latency_ms": latency_ms}
        if request.image is not None and self.settings.history_keep_images:
            row["thumbnail"] = thumbnail(request.image.jpeg)
        return row

    def _write(self, row: dict) -> str | None:
        if self.history is None:
            return None
        try:
            return self.history.record(row)
        except (sqlite3.Error, OSError) as exc:  # the clinician still gets the answer
            log.warning("history write failed, assessment not recorded: %s", type(exc).__name__)
            return None

    def forget(self, assessment_id: str) -> bool:
        """Delete everything about one case: its history row, its reviews and its cached answer."""
        if self.history is None:
            return False
        row = self.history.delete(assessment_id)
        if row and row["cache_key"]:
            self.cache.delete(row["cache_key"])
        return row is not None

    def _result(self, request: DiagnosisRequest, provider: Provider, raw: str, usage: Usage, started: float,
                *, cached: bool, answer: ParsedAnswer | None = None) -> Diagnosis:
        return Diagnosis(answer=answer or parse_answer(raw), provider=provider.name, model=provider.model,
                         raw=raw, elapsed_ms=(time.monotonic() - started) * 1000, usage=usage, cached=cached,
                         image=request.image, tried=(provider.name,))

    async def attempts(self, provider: Provider, messages: list[dict], deadline: float, budget: float,
                       on_text: Callable[[str], None], on_retry: Callable[[], None] = lambda: None) -> Attempt:
        """Call `provider` until it answers, a non-retryable error, or the deadline; the only retry layer.

        Retries what is worth retrying (timeouts, connection errors, 408/409/429/5xx), honouring
        Retry-After when it fits in what is left; `on_retry` is called before each wait.
        """
        s = self.settings
        health = self.health[provider.name]
        for attempt in range(s.max_retries + 1):
            remaining = deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(remaining, 0)):
                    return await provider.complete(messages, stream=s.stream, on_text=on_text)
            except TimeoutError:
                health.failure()
                raise ProviderTimeout(f"{provider.title} did not answer within the {budget:g} s time budget.",
                                      provider=provider.name) from None
            except ProviderError as exc:
                if exc.retryable:
                    health.failure()
                if not exc.retryable or attempt == s.max_retries:
                    raise
                delay = self._backoff(attempt, exc.retry_after)
                if time.monotonic() + delay >= deadline:
                    raise
                log.info("retrying provider=%s after %s in %.2f s", provider.name, type(exc).__name__, delay)
                on_retry()
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        # Exponential with jitter, as openai-python does, so retries from many sessions spread out.
        return min(self.settings.retry_base_delay * 2 ** attempt, _MAX_BACKOFF) * (1 - 0.25 * random.random())
