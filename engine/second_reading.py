"""Double reading: after the first answer, the second reader (the clinic's own model) reads the case again.

The first answer comes from the fastest providers, as without a second reader; the second reader is then asked
in a background job (so it survives a reload and a restart like any job) with a budget long enough for a
serverless worker to boot (SECOND_READER_BUDGET_SECONDS), and its reading is kept beside the first, never
blended with it. Asked first only when no other provider could answer, it gives the one reading and nothing
more is asked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from domain.errors import DiagnosisError, ProviderError
from domain.messages import Message
from domain.prompt import build_messages
from domain.readings import DONE, PENDING, UNAVAILABLE, Reading
from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from engine.answering import Answerer
from engine.cache_keys import answer_key
from engine.health import ProviderHealth
from engine.recording import AssessmentObserver
from engine.runtime import Plan
from providers.base import Provider
from storage.database import StoreError
from storage.readings import Readings
from utils.settings import Settings

if TYPE_CHECKING:
    from engine.jobs import JobRunner

log = logging.getLogger(__name__)

# Where a case comes from decides whether it is read twice: the clinicians' cases, not QA runs or benchmarks.
_READ_TWICE = ("page", "api", "job")
SOURCE = "second_reading"  # the second reader's job, as the Jobs list and the metrics name it


def second_reader_name(settings: Settings, providers: dict[str, Provider]) -> str | None:
    """The provider that reads every case a second time (SECOND_READER), or None when off or not configured."""
    wanted = settings.second_reader
    if wanted == "off":
        return None
    name = "runpod" if wanted == "auto" else wanted
    provider = providers.get(name)
    if provider is None:
        log.warning("SECOND_READER=%s is no provider (use one of %s, auto or off): double reading is off",
                    wanted, ", ".join(providers))
        return None
    if not provider.configured and wanted != "auto":
        log.warning("SECOND_READER=%s is not configured (%s): double reading is off", wanted, provider.setup_hint())
    return name if provider.configured else None


class SecondReader:
    """Asks the second reader for every clinician's case once the first answer is recorded; safe to share."""

    def __init__(self, settings: Settings, *, providers: dict[str, Provider], health_of: Callable[[str],
                 ProviderHealth], answerer: Answerer, readings: Readings | None,
                 jobs: Callable[[], JobRunner], observer: AssessmentObserver | None = None) -> None:
        """`readings` is None when the history is off (a second reading needs a case to sit beside);
        `jobs()` is the engine's job runner; `observer` counts each reading that ends (the metrics)."""
        self.settings = settings
        self.name = second_reader_name(settings, providers) if readings is not None else None
        self.health_of = health_of
        self.answerer = answerer
        self.readings = readings
        self.jobs = jobs
        self.observer = observer
        # The second reader with a patient attempt timeout: one attempt may take the whole budget (a cold boot),
        # where a first answer's attempt gives up after REQUEST_TIMEOUT. Its own pool, the same health record.
        self.provider: Provider | None = None
        if self.name:
            patient = replace(settings, request_timeout=max(settings.request_timeout,
                                                            settings.second_reader_budget_seconds))
            self.provider = type(providers[self.name]).from_settings(patient)

    @property
    def on(self) -> bool:
        """True when every clinician's case gets a second reading."""
        return self.provider is not None

    def first_chain(self, chain: list[Provider], request: DiagnosisRequest) -> list[Provider]:
        """The chain for the first answer: without the second reader while any other provider can answer."""
        if not self.on or request.source not in _READ_TWICE or not request.fallback or request.provider == self.name:
            return chain  # a clinician who chose the clinic's model by name gets its answer first: one reading
        others = [p for p in chain if p.name != self.name]
        healthy = [p for p in others if not self.health_of(p.name).cooling_down]
        return others if healthy else chain

    def ask(self, request: DiagnosisRequest, result: Diagnosis) -> Diagnosis:
        """Queue the second reading of `request`'s case when it is due; returns `result` unchanged.

        Never raises: a second reading that cannot be queued is recorded as unavailable, with why.
        """
        case = result.assessment_id
        if (not self.on or self.readings is None or case is None or request.source not in _READ_TWICE
                or result.provider == self.name or result.replayed or request.second_reading_of is not None):
            return result
        second = replace(request, provider=self.name, fallback=False, source=SOURCE, second_reading_of=case)
        try:
            self.readings.ask(case, str(self.name), job_id=None)  # pending before the job can possibly end
            self.readings.attach_job(case, self.jobs().submit(second))
        except (DiagnosisError, StoreError) as exc:  # the job store or the database is down: said on the case
            log.warning("second reading: not queued (%s)", type(exc).__name__)
            reason = exc.message if isinstance(exc, DiagnosisError) and exc.message else Message("reading.unavailable")
            self._record(case, Reading(provider=str(self.name), model=self._model(), status=UNAVAILABLE,
                                       at=time.time(), reason=reason))
        return result

    def read(self, request: DiagnosisRequest, started: float) -> Plan[Diagnosis]:
        """The second reading itself (run by the job): the second reader alone, within its own budget.

        Cached like any answer, so a repeat case asks no one. The reading is written beside the case; a failure
        is written as unavailable with its reason, then raised, so the job says it too.
        """
        case = str(request.second_reading_of)
        provider = self.provider
        if provider is None:  # turned off since the job was queued
            raise ProviderError(Message("reading.unavailable"), provider=self.name or "")
        keys = {provider.name: answer_key(request, provider, self.settings)}
        try:
            got = yield from self.answerer.plan([provider], build_messages(request), keys, kind=request.kind,
                                                budget=self.settings.second_reader_budget_seconds, started=started,
                                                use_cache=request.use_cache)
        except ProviderError as exc:
            self._record(case, Reading(provider=provider.name, model=provider.model, status=UNAVAILABLE,
                                       at=time.time(), elapsed_ms=(time.monotonic() - started) * 1000,
                                       reason=exc.message or Message("reading.unavailable")))
            raise
        result = Diagnosis(answer=got.answer, provider=provider.name, model=provider.model, raw=got.raw,
                           elapsed_ms=(time.monotonic() - started) * 1000, usage=got.usage, cached=got.cached,
                           tried=(provider.name,), assessment_id=case)
        self._record(case, Reading.of(result, at=time.time()))
        return result

    def reading_of(self, case: str) -> Reading | None:
        """The second reading of `case` as it stands: pending, done or unavailable (a pending one whose job ended
        without it, after a restart or a crash, is unavailable with the job's reason)."""
        if self.readings is None:
            return None
        reading = self.readings.of(case)
        if reading is None or reading.status != PENDING:
            return reading
        job_id = self.readings.pending_job(case)
        job = self.jobs().get(job_id) if job_id else None
        if job is None or not job.finished:
            return reading
        if job.status == DONE and job.result is not None:  # answered, but its write did not get through: the
            return Reading.of(job.result, at=job.updated_at)  # job kept the answer
        return replace(reading, status=UNAVAILABLE, reason=job.error_message or Message("reading.interrupted"))

    def _record(self, case: str, reading: Reading) -> None:
        assert self.readings is not None
        try:
            agreement = self.readings.record(case, reading)
        except StoreError:  # the reading is lost with the database; the job still says how it went
            log.warning("second reading: not recorded (the database did not answer)")
            return
        log.info("second reading provider=%s status=%s concordance=%s", reading.provider, reading.status, agreement)
        if self.observer is not None and agreement is not None:
            self.observer.reading(reading.provider, agreement)

    def _model(self) -> str:
        return self.provider.model if self.provider else ""
