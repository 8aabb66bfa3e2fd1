"""Background jobs: submit an assessment, keep working, pick the result up later.

Every job is a row in the store before it runs, so a reload, a dropped connection or
a new browser tab finds it again; a bounded pool runs several at once. When the app
restarts, jobs that were queued or running are marked interrupted (with one-click
re-run in the page), never silently lost.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from domain.errors import DiagnosisError
from domain.request import DiagnosisRequest, PatientInfo
from domain.result import Diagnosis
from utils.crypto import SealedWithAnotherKey
from utils.images import ShrunkImage
from storage.store import dumps, new_id, now

if TYPE_CHECKING:
    from providers.engine import Engine

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, INTERRUPTED = "queued", "running", "done", "failed", "interrupted"


@dataclass(frozen=True)
class Job:
    """One background assessment as the Jobs list shows it."""

    id: str
    created_at: float
    updated_at: float
    status: str
    kind: str
    provider: str | None
    text: str
    user: str | None
    error: str | None
    elapsed_ms: float | None
    result: Diagnosis | None

    @property
    def finished(self) -> bool:
        """True once the job will not change by itself any more."""
        return self.status in (DONE, FAILED, INTERRUPTED)


def _image_record(image: ShrunkImage | None) -> dict | None:
    if image is None:
        return None
    return {"width": image.width, "height": image.height, "original_width": image.original_width,
            "original_height": image.original_height, "original_bytes": image.original_bytes,
            "original_format": image.original_format, "removed": list(image.removed)}


def request_record(request: DiagnosisRequest) -> dict:
    """What a job store keeps of a request, besides the photo's bytes (plain JSON types only)."""
    return {"text": request.text, "info": request.info.canonical(), "language": request.language,
            "provider": request.provider, "use_cache": request.use_cache, "fallback": request.fallback,
            "image": _image_record(request.image)}


def request_from_record(record: dict, jpeg: bytes | None, user: str | None) -> DiagnosisRequest:
    """The request `request_record` and the photo's bytes describe, as the job will run it."""
    image = None
    if jpeg is not None and record.get("image"):
        meta = record["image"]
        image = ShrunkImage(jpeg=jpeg, **{**meta, "removed": tuple(meta["removed"])})
    info = PatientInfo(**{k: v for k, v in record["info"].items() if k in ("age", "sex", "body_site", "duration")})
    return DiagnosisRequest(text=record["text"], image=image, info=info, language=record["language"],
                            provider=record["provider"], use_cache=record["use_cache"],
                            fallback=record.get("fallback", True), user=user, source="job")


class Jobs:
    """The job table and the worker pool (JOB_WORKERS threads) that runs it."""

    def __init__(self, engine: "Engine", *, workers: int) -> None:
        self.engine = engine
        self.store = engine.store
        # The request, photo and result hold patient data: sealed like the history when a key is set.
        self.sealer = engine.sealer
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self._lock = threading.Lock()
        self._interrupt_leftovers()

    def _interrupt_leftovers(self) -> None:
        # Whatever was queued or running belongs to a process that is gone.
        with self.store.connect() as conn:
            count = conn.execute("UPDATE jobs SET status = ?, updated_at = ?, error = ? WHERE status IN (?, ?)",
                                 (INTERRUPTED, now(), "The app restarted while this job was waiting or running.",
                                  QUEUED, RUNNING)).rowcount
        if count:
            log.info("%d unfinished jobs marked interrupted", count)

    def submit(self, request: DiagnosisRequest) -> str:
        """Queue `request`; returns the job's id at once."""
        request = replace(request, source="job")
        job_id = new_id()
        record = request_record(request)
        stamp = now()
        with self.store.connect() as conn:
            conn.execute(
                "INSERT INTO jobs (id, created_at, updated_at, user, status, kind, provider, request, image) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, stamp, stamp, request.user, QUEUED, request.kind, request.provider,
                 self.sealer.seal_text(dumps(record)),
                 self.sealer.seal_bytes(request.image.jpeg) if request.image else None))
        self._pool.submit(self._run, job_id, request)
        return job_id

    def rerun(self, job_id: str) -> str:
        """Submit a finished job's request again (without the cache); returns the new job's id."""
        request = self.request_of(job_id)
        return self.submit(replace(request, use_cache=False))

    def request_of(self, job_id: str) -> DiagnosisRequest:
        """The request a job was submitted with, rebuilt from the store."""
        with self.store.connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        record = json.loads(self.sealer.open_text(row["request"]))
        jpeg = self.sealer.open_bytes(row["image"]) if row["image"] is not None else None
        return request_from_record(record, jpeg, row["user"])

    def _set(self, job_id: str, was: str, **fields) -> bool:
        # Only from the state this worker left it in: a restart may have marked the job interrupted meanwhile.
        fields["updated_at"] = now()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self.store.connect() as conn:
            return conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ? AND status = ?",
                                (*fields.values(), job_id, was)).rowcount == 1

    def _run(self, job_id: str, request: DiagnosisRequest) -> None:
        started = time.monotonic()
        if not self._set(job_id, QUEUED, status=RUNNING):
            return  # no longer queued (interrupted by a restart)
        try:
            result = self.engine.diagnose(request)
        except DiagnosisError as exc:
            self._set(job_id, RUNNING, status=FAILED, error=str(exc), elapsed_ms=(time.monotonic() - started) * 1000)
            return
        except Exception as exc:  # a job thread must never die silently: the row says what happened
            log.exception("job %s crashed", job_id)
            self._set(job_id, RUNNING, status=FAILED, error=f"Unexpected error ({type(exc).__name__}).",
                      elapsed_ms=(time.monotonic() - started) * 1000)
            return
        data = {**result.to_dict(), "assessment_id": result.assessment_id}
        self._set(job_id, RUNNING, status=DONE, result=self.sealer.seal_text(dumps(data)),
                  assessment_id=result.assessment_id,
                  elapsed_ms=(time.monotonic() - started) * 1000)

    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        with self.store.connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def list(self, *, user: str | None = None, limit: int = 200) -> list[Job]:
        """The newest jobs first (one user's, when given)."""
        sql, args = "SELECT * FROM jobs", []
        if user is not None:
            sql += " WHERE user = ?"
            args.append(user)
        with self.store.connect() as conn:
            rows = conn.execute(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit)).fetchall()
        return [self._job(r) for r in rows]

    def _job(self, row) -> Job:
        error = row["error"]
        try:
            record = json.loads(self.sealer.open_text(row["request"]))
            result = Diagnosis.from_dict(json.loads(self.sealer.open_text(row["result"]))) if row["result"] else None
        except SealedWithAnotherKey:
            record, result = {"text": ""}, None
            error = "This job is encrypted with another DATA_ENCRYPTION_KEY and cannot be read here."
        return Job(id=row["id"], created_at=row["created_at"], updated_at=row["updated_at"], status=row["status"],
                   kind=row["kind"], provider=(result.provider if result else row["provider"]), text=record["text"],
                   user=row["user"], error=error, elapsed_ms=row["elapsed_ms"], result=result)

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking jobs; running ones finish (or are marked interrupted at the next start)."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
