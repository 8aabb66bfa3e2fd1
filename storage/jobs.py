"""Where background jobs are kept: the `JobStore` contract, its sealed record, and the SQLite store.

A job store is passive: it keeps jobs, hands out the next one to run, and changes a job's
state only along queued → running → done/failed/interrupted; the threads that run jobs
belong to `providers.jobs.JobRunner`, which works over any store. Two stores exist:

- `SqliteJobStore` (here): the `jobs` table of the app's SQLite store; the line of jobs
  waiting to run is a queue in this process's memory, so only this process runs them.
  When the app starts, jobs a previous run left queued or running are marked interrupted.
- `storage.redis_jobs.RedisJobStore` (REDIS_URL): hashes in Redis and one shared queue,
  so any app process may run a job and any may show it.

Both seal a job's request, photo and result with DATA_ENCRYPTION_KEY through `JobCodec`,
so a job sealed under a key this process lacks reads the same in both: listed, with
`domain.jobs.UNREADABLE` as its error, and `request_of` raises `JobUnreadable`.
"""

from __future__ import annotations

import json
import logging
import queue
from collections.abc import Mapping
from typing import Any, Protocol

from domain.jobs import (
    INTERRUPTED,
    QUEUED,
    RESTARTED,
    RUNNING,
    UNREADABLE,
    Job,
    JobUnreadable,
    request_from_record,
    request_record,
)
from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from storage.store import Store, dumps, new_id, now
from utils.crypto import SealedWithAnotherKey, Sealer

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how long an idle worker waits for a job before it looks whether it should stop


class JobStore(Protocol):
    """What `JobRunner` and the pages need of a job store (SQLite or Redis).

    Reading and writing may raise `domain.jobs.JobStoreUnavailable` when the store does not answer.
    """

    @property
    def upkeep_seconds(self) -> float | None:
        """How often a process that runs jobs must call `upkeep`; None: never."""

    def add(self, request: DiagnosisRequest) -> str:
        """Record `request` as a queued job and put it in line to run; returns the job's id."""

    def get(self, job_id: str) -> Job | None:
        """One job, or None."""

    def list(self, *, user: str | None = None, limit: int = 200) -> list[Job]:
        """The newest jobs first (one user's, when given)."""

    def request_of(self, job_id: str) -> DiagnosisRequest:
        """The request a job was submitted with; KeyError when there is no such job, `JobUnreadable` when sealed
        under another key."""

    def counts(self) -> dict[str, int]:
        """How many jobs are queued and how many running right now: {"queued": n, "running": m} (the metrics)."""

    def recover(self) -> int:
        """At start: mark interrupted the jobs a process that is gone left queued or running; returns how many."""

    def next_job(self) -> str | None:
        """The id of the next job in line, waiting a short while (None when none came)."""

    def release(self, job_id: str) -> None:
        """Put a job taken with `next_job`, not run, back at the head of the line (this process is stopping)."""

    def claim(self, job_id: str) -> bool:
        """queued → running, for this process; False when the job is no longer queued."""

    def finish(self, job_id: str, status: str, *, result: Diagnosis | None = None, error: str | None = None,
               elapsed_ms: float | None = None) -> bool:
        """running → `status`, only for the process that claimed it; False when it is no longer running
        (a restart marked it interrupted meanwhile: it stays so)."""

    def upkeep(self) -> None:
        """Periodic care while this process runs jobs (every `upkeep_seconds`)."""

    def close(self) -> None:
        """This process stops running jobs; what it still runs is left as the store's rules say."""


class JobCodec:
    """A job's patient data as a store keeps it: JSON (bytes), sealed with DATA_ENCRYPTION_KEY when one is set."""

    def __init__(self, sealer: Sealer | None = None) -> None:
        self.sealer = sealer or Sealer()

    def seal_request(self, request: DiagnosisRequest) -> bytes:
        """The request's record (everything but the photo), sealed."""
        return self.sealer.seal_bytes(dumps(request_record(request)).encode("utf-8"))

    def seal_photo(self, request: DiagnosisRequest) -> bytes | None:
        """The shrunk photo's bytes, sealed; None without a photo."""
        return None if request.image is None else self.sealer.seal_bytes(request.image.jpeg)

    def seal_result(self, result: Diagnosis) -> bytes:
        """The result (with its history id), sealed."""
        data = {**result.to_dict(), "assessment_id": result.assessment_id}
        return self.sealer.seal_bytes(dumps(data).encode("utf-8"))

    def _open(self, stored: str | bytes) -> bytes:
        # Plain values (stored before a key was set) pass through; SQLite hands TEXT columns back as str.
        return self.sealer.open_bytes(stored.encode("utf-8") if isinstance(stored, str) else stored)

    def open_request(self, stored: str | bytes, photo: str | bytes | None, user: str | None) -> DiagnosisRequest:
        """The request `seal_request` and `seal_photo` stored; raises `JobUnreadable` under another key."""
        try:
            record = json.loads(self._open(stored))
            jpeg = None if photo is None else self._open(photo)
        except SealedWithAnotherKey:
            raise JobUnreadable() from None
        return request_from_record(record, jpeg, user)

    def job(self, row: Mapping[str, Any]) -> Job:
        """The job a store's row describes (plain values, with `request` and `result` as stored).

        A job sealed under a key this process lacks is listed all the same, unreadable, with UNREADABLE as error.
        """
        error, unreadable = row["error"], False
        try:
            record = json.loads(self._open(row["request"]))
            result = Diagnosis.from_dict(json.loads(self._open(row["result"]))) if row["result"] else None
        except SealedWithAnotherKey:
            record, result, error, unreadable = {"text": ""}, None, UNREADABLE, True
        return Job(id=row["id"], created_at=row["created_at"], updated_at=row["updated_at"], status=row["status"],
                   kind=row["kind"], provider=result.provider if result else row["provider"], text=record["text"],
                   user=row["user"], error=error, elapsed_ms=row["elapsed_ms"], result=result, unreadable=unreadable)


class SqliteJobStore:
    """The `jobs` table of `store`, run by this process only (its line of waiting jobs lives in memory)."""

    upkeep_seconds = None  # nothing to refresh: no other process shares this line

    def __init__(self, store: Store, *, sealer: Sealer | None = None, poll_seconds: float = POLL_SECONDS) -> None:
        """`sealer` encrypts each job's request, photo and result when it holds a key (as the history's rows)."""
        self.store = store
        self.codec = JobCodec(sealer)
        self.poll_seconds = poll_seconds
        self._line: queue.Queue[str] = queue.Queue()

    def add(self, request: DiagnosisRequest) -> str:
        """Record `request` as a queued job and put it in this process's line; returns the job's id."""
        job_id, stamp = new_id(), now()
        photo = self.codec.seal_photo(request)
        with self.store.connect() as conn:
            conn.execute(
                "INSERT INTO jobs (id, created_at, updated_at, user, status, kind, provider, request, image) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, stamp, stamp, request.user, QUEUED, request.kind, request.provider,
                 self.codec.seal_request(request).decode("utf-8"), photo))  # a TEXT column, as before
        self._line.put(job_id)
        return job_id

    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        with self.store.connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self.codec.job(row) if row else None

    def list(self, *, user: str | None = None, limit: int = 200) -> list[Job]:
        """The newest jobs first (one user's, when given)."""
        sql, args = "SELECT * FROM jobs", []
        if user is not None:
            sql += " WHERE user = ?"
            args.append(user)
        with self.store.connect() as conn:
            rows = conn.execute(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit)).fetchall()
        return [self.codec.job(r) for r in rows]

    def request_of(self, job_id: str) -> DiagnosisRequest:
        """The request a job was submitted with; KeyError when there is no such job, `JobUnreadable` under
        another key."""
        with self.store.connect() as conn:
            row = conn.execute("SELECT request, image, user FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return self.codec.open_request(row["request"], row["image"], row["user"])

    def counts(self) -> dict[str, int]:
        """How many jobs of the table are queued and how many running (a scan of the `status` column, which comes
        before the large ones: jobs are purged with the history's retention)."""
        with self.store.connect() as conn:
            rows = conn.execute("SELECT status, COUNT(*) AS n FROM jobs WHERE status IN (?, ?) GROUP BY status",
                                (QUEUED, RUNNING)).fetchall()
        found = {row["status"]: row["n"] for row in rows}
        return {QUEUED: found.get(QUEUED, 0), RUNNING: found.get(RUNNING, 0)}

    def recover(self) -> int:
        """Mark interrupted every job left queued or running: it belongs to a process that is gone."""
        with self.store.connect() as conn:
            count = conn.execute("UPDATE jobs SET status = ?, updated_at = ?, error = ? WHERE status IN (?, ?)",
                                 (INTERRUPTED, now(), RESTARTED, QUEUED, RUNNING)).rowcount
        if count:
            log.info("%d unfinished jobs marked interrupted", count)
        return count

    def next_job(self) -> str | None:
        """The next job this process queued, waiting up to `poll_seconds`."""
        try:
            return self._line.get(timeout=self.poll_seconds)
        except queue.Empty:
            return None

    def release(self, job_id: str) -> None:
        """Put the job back in line; no one else runs it: it stays queued until the next start interrupts it."""
        self._line.put(job_id)

    def claim(self, job_id: str) -> bool:
        """queued → running; False when no longer queued (a restart interrupted it)."""
        return self._move(job_id, QUEUED, status=RUNNING)

    def finish(self, job_id: str, status: str, *, result: Diagnosis | None = None, error: str | None = None,
               elapsed_ms: float | None = None) -> bool:
        """running → `status` with its result or error; False when no longer running."""
        fields: dict[str, Any] = {"status": status, "error": error, "elapsed_ms": elapsed_ms}
        if result is not None:
            fields.update(result=self.codec.seal_result(result).decode("utf-8"), assessment_id=result.assessment_id)
        return self._move(job_id, RUNNING, **fields)

    def _move(self, job_id: str, was: str, **fields) -> bool:
        # Only from the state the caller left it in: a restart may have marked the job interrupted meanwhile.
        fields["updated_at"] = now()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self.store.connect() as conn:
            return conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ? AND status = ?",
                                (*fields.values(), job_id, was)).rowcount == 1

    def upkeep(self) -> None:
        """Nothing to do: only this process uses this line (`upkeep_seconds` is None)."""

    def close(self) -> None:
        """Nothing to undo: running jobs finish in their threads; the next start interrupts what they leave."""

