"""Where background jobs are kept: the `JobStore` contract and its sealed record (`JobCodec`); one module per store.

A job store is passive: it keeps jobs, hands out the next one to run, and changes a job's
state only along queued → running → done/failed/interrupted; the threads that run jobs
belong to `engine.jobs.JobRunner`, which works over any store. Two stores exist:

- `storage.jobs.sql.SqlJobStore`: the `jobs` table of the app's store, SQLite or PostgreSQL. The line of
  waiting jobs is the table itself (queued rows no process has taken), so every process on the
  database runs and shows its jobs. Each state change is one conditional UPDATE (… WHERE id = …
  AND status = …), so it happens once across processes.
  * On the SQLite file of one machine (no leases), the app's start marks interrupted every job a
    previous run left queued or running.
  * On a PostgreSQL shared by several servers (leases), a process that takes a job writes its own
    name (`owner`) and a lease (`lease_until`, on the database's clock) that its keeper thread renews;
    a job is marked interrupted only once its lease has run out, so one server's start never cuts
    short the jobs another live server is running, while a dead server's jobs show as interrupted
    within a lease.
- `storage.jobs.redis.RedisJobStore` (REDIS_URL): hashes in Redis and one shared queue,
  so any app process may run a job and any may show it (leases in Redis, the same rules).

Both seal a job's request, photo and result with DATA_ENCRYPTION_KEY through `JobCodec`,
so a job sealed under a key this process lacks reads the same in both: listed, with
`domain.jobs.UNREADABLE` as its error, and `request_of` raises `JobUnreadable`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from domain.jobs import UNREADABLE, UNREADABLE_MESSAGE, Job, JobUnreadable, request_from_record, request_record
from domain.messages import Message
from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from storage.store import dumps
from utils.crypto import SealedWithAnotherKey, Sealer

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how long an idle worker waits for a job before it looks whether it should stop
LEASE_SECONDS = 15.0  # a shared database: a job's process is taken for dead this long after its last renewal

# What a job of a process that stopped without a word shows (both stores that share jobs between processes).
PROCESS_GONE_MESSAGE = Message("job.process_gone")
PROCESS_GONE = str(PROCESS_GONE_MESSAGE)
NEVER_STARTED_MESSAGE = Message("job.never_started")
NEVER_STARTED = str(NEVER_STARTED_MESSAGE)


def error_columns(error: Message | str | None) -> dict[str, str | None]:
    """A job's error as both stores keep it: `error`, the English text (the API, the command line), and
    `error_message`, the message id and values as JSON (the pages, in the reader's language; None for a plain
    string)."""
    message = error if isinstance(error, Message) else None
    return {"error": None if error is None else str(error),
            "error_message": dumps(message.record()) if message else None}


def stored_message(stored: str | bytes | None) -> Message | None:
    """The message `error_columns` stored; None for none, or for one this version cannot read."""
    if not stored:
        return None
    try:
        return Message.from_record(json.loads(stored))
    except (ValueError, KeyError, TypeError, AttributeError):  # hand-edited or from a newer release: the text stays
        return None


class ReapGrace:
    """Whether this process may take other processes' jobs for dead, after it lost its job store for a while.

    While the store did not answer, nobody could renew a lease: one that ran out meanwhile says nothing of its
    process, which may be alive and holding the job's answer (see `engine.jobs.JobRunner`). So after a failure
    the reaper waits one lease from the store's first answer: every live process renews or finishes its jobs
    within that time, and only the jobs of processes that are really gone are then marked interrupted.
    """

    def __init__(self, lease_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        """`clock` (seconds, monotonic) is injectable for tests."""
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._lost = False
        self._until = 0.0

    def lost(self) -> None:
        """The store did not answer this process."""
        self._lost = True

    def allows(self) -> bool:
        """True when reaping may go on; call it just before the reaper's own look (which may fail again)."""
        if self._lost:
            self._lost = False
            self._until = self.clock() + self.lease_seconds
        return self.clock() >= self._until


class JobStore(Protocol):
    """What `JobRunner` and the pages need of a job store (SQL or Redis).

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

    def finish(self, job_id: str, status: str, *, result: Diagnosis | None = None,
               error: Message | str | None = None, elapsed_ms: float | None = None) -> bool:
        """running → `status`, only for the process that claimed it; False when it is no longer running
        (a restart marked it interrupted meanwhile: it stays so). `error` as `error_columns` takes it."""

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
        error, message, unreadable = row["error"], stored_message(row.get("error_message")), False
        try:
            record = json.loads(self._open(row["request"]))
            result = Diagnosis.from_dict(json.loads(self._open(row["result"]))) if row["result"] else None
        except SealedWithAnotherKey:
            record, result, error, message, unreadable = {"text": ""}, None, UNREADABLE, UNREADABLE_MESSAGE, True
        return Job(id=row["id"], created_at=row["created_at"], updated_at=row["updated_at"], status=row["status"],
                   kind=row["kind"], provider=result.provider if result else row["provider"], text=record["text"],
                   user=row["user"], error=error, elapsed_ms=row["elapsed_ms"], result=result, unreadable=unreadable,
                   error_message=message)
