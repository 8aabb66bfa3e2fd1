"""Every assessment, and every one that failed, as a row in the history and one `observe` for the metrics;
and deleting a case again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

import sqlalchemy as sa

from domain.errors import ProviderError
from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from engine.runtime import Plan, Step
from storage.cache import AnswerCache
from storage.database import UNAVAILABLE_ERRORS, StoreError
from storage.group_commit import GroupCommit
from storage.history import History, thumbnail
from storage.store import dumps

log = logging.getLogger(__name__)

# A database down, too slow or out of disk: no row of a batch would be written alone either.
_DOWN: tuple[type[BaseException], ...] = (StoreError, OSError, *UNAVAILABLE_ERRORS)
# Any failed write of a row: the clinician still gets the answer, marked "not recorded".
_NOT_WRITTEN: tuple[type[BaseException], ...] = (StoreError, sa.exc.SQLAlchemyError, OSError)


class AssessmentObserver(Protocol):
    """Told of every assessment the engine finishes, from any source (the metrics: engine/prometheus_metrics.py)."""

    def observe(self, request: DiagnosisRequest, result: Diagnosis | None, error: BaseException | None,
                elapsed: float) -> None:
        """`result` when it was answered (from a provider, the cache or a demo replay), else the `error` it
        failed with; `elapsed` is its end-to-end time in seconds. Must be quick and must not raise."""

    def reading(self, provider: str, concordance: str) -> None:
        """A second reading by `provider` ended with `concordance` (domain/readings.py: agree, differ, differ_risk
        or unavailable). Must be quick and must not raise."""


class Recorder:
    """Writes results to `history` (None: HISTORY_ENABLED=false, nothing is kept) and tells `observer`;
    a failed write (the database down or too slow) or a failing observer never fails a case: the result then
    says it was not recorded (`Diagnosis.not_recorded`)."""

    def __init__(self, history: History | None, cache: AnswerCache, *, keep_images: bool,
                 observer: AssessmentObserver | None = None) -> None:
        """`cache` holds the answers that `forget` deletes too; `keep_images` is HISTORY_KEEP_IMAGES."""
        self.history = history
        self.cache = cache
        self.keep_images = keep_images
        self.observer = observer
        # Cases finishing together share one transaction, and waiting for it holds no thread of the engine's pool.
        # It is handed rows made by `History.prepare`: a batch written again row by row counts each row once.
        self.writer = GroupCommit(self._write_many, name="history-writer")

    def recorded(self, request: DiagnosisRequest, result: Diagnosis, key: str | None) -> Diagnosis:
        """Record `result` (its answer cached under `key`); returns it with its `assessment_id` when one was written,
        marked `not_recorded` when the history could not write it."""
        return self._recorded(request, result, self._written(self._row_of(request, result, key)))

    def record(self, request: DiagnosisRequest, result: Diagnosis, key: str | None) -> Plan[Diagnosis]:
        """`recorded` as a plan step (engine/runtime.py): the write is awaited on the provider loop, so an API
        assessment holds no pool thread while its row waits for its transaction."""
        assessment_id: str | None = None
        if self.history is not None:
            try:
                assessment_id = yield self._written_step(self.history.prepare(self._row_of(request, result, key)))
            except _NOT_WRITTEN as exc:
                _not_written(exc)
        return self._recorded(request, result, assessment_id)

    def _written_step(self, row: dict[str, Any]) -> Step:
        async def written(_progress: object) -> str | None:
            return await asyncio.wrap_future(self.writer.submit(row))
        return written

    def _recorded(self, request: DiagnosisRequest, result: Diagnosis, assessment_id: str | None) -> Diagnosis:
        self._observe(request, result, None, result.elapsed_ms / 1000)
        if assessment_id:
            return replace(result, assessment_id=assessment_id)
        return result if self.history is None else replace(result, not_recorded=True)

    def _row_of(self, request: DiagnosisRequest, result: Diagnosis, key: str | None) -> dict[str, object]:
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
        return row

    def replayed(self, request: DiagnosisRequest, result: Diagnosis) -> Diagnosis:
        """A demo-mode replay of a pinned case: counted, not recorded again (the pinned row is its record)."""
        self._observe(request, result, None, result.elapsed_ms / 1000)
        return result

    def failure(self, request: DiagnosisRequest, exc: ProviderError, started: float) -> None:
        """Record that no provider answered `request` (started at `started`, a `time.monotonic()` value)."""
        elapsed = time.monotonic() - started
        row = self._row(request, elapsed * 1000)
        row.update(provider=exc.provider or None, error=type(exc).__name__)
        self._written(row)
        self._observe(request, None, exc, elapsed)

    def _observe(self, request: DiagnosisRequest, result: Diagnosis | None, error: BaseException | None,
                 elapsed: float) -> None:
        if self.observer is None:
            return
        try:
            self.observer.observe(request, result, error, elapsed)
        except Exception as exc:  # figures are a by-product: the clinician still gets the answer
            log.warning("assessment metrics not updated: %s", type(exc).__name__)

    def forget(self, assessment_id: str) -> bool:
        """Delete everything about one case: its history row, its reviews and its cached answer."""
        if self.history is None:
            return False
        row = self.history.delete(assessment_id)
        if row and row["cache_key"]:
            self.cache.delete(row["cache_key"])
        return row is not None

    def _row(self, request: DiagnosisRequest, latency_ms: float) -> dict[str, object]:
        row: dict[str, object] = {
            "user": request.user, "source": request.source, "qa_case": request.qa_case, "kind": request.kind,
            "language": request.language, "text": request.text, "info": dumps(request.info.canonical()),
            "latency_ms": latency_ms}
        if request.image is not None and self.keep_images:
            row["thumbnail"] = thumbnail(request.image.jpeg)
            if request.source == "qa":  # a reviewed QA case becomes a labelled case with its photo (labelled_set)
                row["photo"] = request.image.jpeg
        return row

    def _written(self, row: dict[str, Any]) -> str | None:
        """`row` written (waiting for its transaction in this thread); its id, None when it was not."""
        if self.history is None:
            return None
        try:
            return self.writer.write(self.history.prepare(row))
        except _NOT_WRITTEN as exc:
            _not_written(exc)
            return None

    def _write_many(self, rows: Sequence[dict[str, Any]]) -> list[str | None]:
        assert self.history is not None  # no writer is handed rows without a history
        try:
            return list(self.history.insert(rows))
        except _DOWN as exc:  # down for every row: none is tried alone
            _not_written(exc, len(rows))
            return [None] * len(rows)


def _not_written(exc: BaseException, rows: int = 1) -> None:
    # The clinician still gets the answer, marked "not recorded".
    log.warning("history write failed, %d assessment(s) not recorded: %s", rows, type(exc).__name__)
