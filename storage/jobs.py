"""Where background jobs are kept: the `JobStore` contract, its sealed record, and the SQL store.

A job store is passive: it keeps jobs, hands out the next one to run, and changes a job's
state only along queued → running → done/failed/interrupted; the threads that run jobs
belong to `providers.jobs.JobRunner`, which works over any store. Two stores exist:

- `SqlJobStore` (here): the `jobs` table of the app's store, SQLite or PostgreSQL. The line of
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
- `storage.redis_jobs.RedisJobStore` (REDIS_URL): hashes in Redis and one shared queue,
  so any app process may run a job and any may show it (leases in Redis, the same rules).

Both seal a job's request, photo and result with DATA_ENCRYPTION_KEY through `JobCodec`,
so a job sealed under a key this process lacks reads the same in both: listed, with
`domain.jobs.UNREADABLE` as its error, and `request_of` raises `JobUnreadable`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import sqlalchemy as sa

from domain.jobs import (
    INTERRUPTED,
    QUEUED,
    RESTARTED_MESSAGE,
    RUNNING,
    UNREADABLE,
    UNREADABLE_MESSAGE,
    Job,
    JobStoreUnavailable,
    JobUnreadable,
    request_from_record,
    request_record,
)
from domain.messages import Message
from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from storage.database import StoreUnavailable
from storage.schema import jobs
from storage.store import Store, dumps, new_id, now
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


# A listing reads every column but the photo and the lease.
_LISTED = (jobs.c.id, jobs.c.created_at, jobs.c.updated_at, jobs.c.status, jobs.c.kind, jobs.c.provider, jobs.c.user,
           jobs.c.request, jobs.c.result, jobs.c.error, jobs.c.error_message, jobs.c.elapsed_ms)
_TAKE_LOCK = "jobs-line"  # one process at a time takes the next job in line


def database_clock(dialect: str) -> sa.ColumnElement[Any]:
    """Epoch seconds by the database's own clock: leases are compared on one clock, whatever the servers' say."""
    if dialect == "postgresql":
        return sa.cast(sa.func.extract("epoch", sa.func.clock_timestamp()), sa.Double)
    return (sa.func.julianday("now") - 2440587.5) * 86400.0  # SQLite: Julian days, to the millisecond


class SqlJobStore:
    """The `jobs` table of `store` (SQLite or PostgreSQL); each failure to reach it raises `JobStoreUnavailable`.

    `lease_seconds` None: the database is this machine's alone (the SQLite file), and a start interrupts every job
    left queued or running. A number: several servers share the database, and a job is interrupted only when the
    process that holds it stopped renewing its lease (the runner's keeper renews it every third of a lease).
    """

    def __init__(self, store: Store, *, sealer: Sealer | None = None, poll_seconds: float = POLL_SECONDS,
                 lease_seconds: float | None = None) -> None:
        """`sealer` encrypts each job's request, photo and result when it holds a key (as the history's rows)."""
        self.store = store
        self.codec = JobCodec(sealer)
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.upkeep_seconds = None if lease_seconds is None else lease_seconds / 3  # well before a lease runs out
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._added = threading.Event()  # a job was added here: this process's idle workers look at once
        self._recover_pending = False    # the start's recovery could not reach the database: done before a take

    @contextmanager
    def _connect(self, what: str, *, serialize: str | None = None) -> Iterator[sa.Connection]:
        try:
            with self.store.connect(serialize=serialize) as conn:
                yield conn
        except StoreUnavailable as exc:
            log.warning("jobs: %s failed: %s", what, type(exc).__name__)  # the class only: the message names the URL
            raise JobStoreUnavailable("database") from None

    def _lease(self) -> sa.ColumnElement[Any] | None:
        if self.lease_seconds is None:
            return None
        return database_clock(self.store.dialect) + self.lease_seconds

    # -- the page's side ----------------------------------------------------------------------

    def add(self, request: DiagnosisRequest) -> str:
        """Record `request` as a queued job, in line for any process's workers; returns the job's id."""
        job_id, stamp = new_id(), now()
        row = {"id": job_id, "created_at": stamp, "updated_at": stamp, "user": request.user, "status": QUEUED,
               "kind": request.kind, "provider": request.provider,
               "request": self.codec.seal_request(request).decode("utf-8"),  # a TEXT column, as before
               "image": self.codec.seal_photo(request)}
        with self._connect("submit") as conn:
            conn.execute(jobs.insert().values(row))
        self._added.set()
        return job_id

    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        with self._connect("read") as conn:
            row = conn.execute(sa.select(*_LISTED).where(jobs.c.id == job_id)).mappings().first()
        return self.codec.job(dict(row)) if row else None

    def list(self, *, user: str | None = None, limit: int = 200) -> list[Job]:
        """The newest jobs first (one user's, when given)."""
        query = sa.select(*_LISTED).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        if user is not None:
            query = query.where(jobs.c.user == user)
        with self._connect("list") as conn:
            rows = conn.execute(query).mappings().all()
        return [self.codec.job(dict(r)) for r in rows]

    def request_of(self, job_id: str) -> DiagnosisRequest:
        """The request a job was submitted with; KeyError when there is no such job, `JobUnreadable` under
        another key."""
        query = sa.select(jobs.c.request, jobs.c.image, jobs.c.user).where(jobs.c.id == job_id)
        with self._connect("read") as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise KeyError(job_id)
        return self.codec.open_request(row["request"], row["image"], row["user"])

    def counts(self) -> dict[str, int]:
        """How many jobs of the table are queued and how many running, on every process (the `status` index;
        jobs are purged with the history's retention)."""
        query = (sa.select(jobs.c.status, sa.func.count().label("n")).where(jobs.c.status.in_((QUEUED, RUNNING)))
                 .group_by(jobs.c.status))
        with self._connect("count") as conn:
            found = {row["status"]: row["n"] for row in conn.execute(query).mappings()}
        return {QUEUED: found.get(QUEUED, 0), RUNNING: found.get(RUNNING, 0)}

    # -- the workers' side --------------------------------------------------------------------

    def recover(self) -> int:
        """At start, mark interrupted the jobs of processes that are gone; returns how many.

        Without leases, that is every job left queued or running. With leases, only those whose lease ran out
        (see `reap`): the jobs of live servers, and the queued ones still in line, are left alone. A database
        that does not answer is only logged: the recovery is then done before this process takes its first job.
        """
        try:
            count = self.reap() if self.lease_seconds is not None else self._interrupt_all()
        except JobStoreUnavailable:
            self._recover_pending = self.lease_seconds is None  # with leases, the keeper's next round does it
            return 0
        self._recover_pending = False
        return count

    def _interrupt_all(self) -> int:
        query = (jobs.update().where(jobs.c.status.in_((QUEUED, RUNNING)))
                 .values(status=INTERRUPTED, updated_at=now(), **error_columns(RESTARTED_MESSAGE), owner=None,
                         lease_until=None))
        with self._connect("recover") as conn:
            count = conn.execute(query).rowcount
        if count:
            log.info("%d unfinished jobs marked interrupted", count)
        return count

    def next_job(self) -> str | None:
        """Take the oldest job in line (it is this process's to claim); else wait up to `poll_seconds` for one to be
        added here, and return None so that the caller can look whether it should stop (then it asks again)."""
        if self._recover_pending:
            self.recover()
            if self._recover_pending:
                raise JobStoreUnavailable("database")
        taken = self._take()
        if taken is None and self._added.wait(self.poll_seconds):
            self._added.clear()
        return taken

    def _take(self) -> str | None:
        oldest = (sa.select(jobs.c.id).where(jobs.c.status == QUEUED, jobs.c.owner.is_(None))
                  .order_by(jobs.c.created_at, jobs.c.id).limit(1))
        with self._connect("queue") as conn:  # an idle worker's look, taking no lock
            if conn.execute(oldest).scalar() is None:
                return None
        # One taker at a time (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so the read and the take are
        # one step and two processes never take the same job.
        with self._connect("queue", serialize=_TAKE_LOCK) as conn:
            job_id = conn.execute(oldest).scalar()
            if job_id is not None:
                conn.execute(jobs.update().where(jobs.c.id == job_id).values(owner=self.owner,
                                                                              lease_until=self._lease()))
        return job_id

    def release(self, job_id: str) -> None:
        """Put a job taken with `next_job` back in line for any process, first (it is the oldest)."""
        query = (jobs.update().where(jobs.c.id == job_id, jobs.c.status == QUEUED, jobs.c.owner == self.owner)
                 .values(owner=None, lease_until=None))
        with self._connect("hand back") as conn:
            conn.execute(query)

    def claim(self, job_id: str) -> bool:
        """queued → running, held by this process; False when no longer queued (interrupted meanwhile)."""
        return self._move(job_id, jobs.c.status == QUEUED, status=RUNNING, owner=self.owner,
                          lease_until=self._lease())

    def finish(self, job_id: str, status: str, *, result: Diagnosis | None = None,
               error: Message | str | None = None, elapsed_ms: float | None = None) -> bool:
        """running → `status` with its result or error, only by the process that claimed it; False when no longer
        running (it stays as it is)."""
        fields: dict[str, Any] = {"status": status, **error_columns(error), "elapsed_ms": elapsed_ms,
                                  "lease_until": None}
        if result is not None:
            fields.update(result=self.codec.seal_result(result).decode("utf-8"), assessment_id=result.assessment_id)
        return self._move(job_id, sa.and_(jobs.c.status == RUNNING, jobs.c.owner == self.owner), **fields)

    def _move(self, job_id: str, was: sa.ColumnElement[bool], **fields: Any) -> bool:
        # Only from the state the caller left it in: another process may have marked it interrupted meanwhile.
        query = jobs.update().where(jobs.c.id == job_id, was).values(updated_at=now(), **fields)
        with self._connect("change a job") as conn:
            return conn.execute(query).rowcount == 1

    def upkeep(self) -> None:
        """With leases: renew this process's leases, then mark interrupted the jobs of dead processes."""
        if self.lease_seconds is None:
            return
        self.heartbeat()
        self.reap()

    def close(self) -> None:
        """With leases, mark the jobs this process still runs interrupted now (nobody renews their leases any more)
        and put back in line the ones it took but did not start. Without, the next start interrupts them."""
        if self.lease_seconds is None:
            return
        mine = jobs.c.owner == self.owner
        try:
            with self._connect("close") as conn:
                conn.execute(jobs.update().where(mine, jobs.c.status == RUNNING)
                             .values(status=INTERRUPTED, updated_at=now(), **error_columns(RESTARTED_MESSAGE),
                                     lease_until=None))
                conn.execute(jobs.update().where(mine, jobs.c.status == QUEUED).values(owner=None, lease_until=None))
        except JobStoreUnavailable:
            pass  # logged; their leases run out and another process's keeper marks them

    # -- leases -------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Extend the lease of every job this process holds (taken or running)."""
        query = (jobs.update().where(jobs.c.owner == self.owner, jobs.c.status.in_((QUEUED, RUNNING)))
                 .values(lease_until=self._lease()))
        with self._connect("heartbeat") as conn:
            conn.execute(query)

    def reap(self) -> int:
        """Mark interrupted the jobs whose process is gone: running or taken ones whose lease ran out (a running
        job without any lease was left by a release before leases); returns how many."""
        clock = database_clock(self.store.dialect)
        running = (jobs.update()
                   .where(jobs.c.status == RUNNING, sa.or_(jobs.c.lease_until.is_(None), jobs.c.lease_until < clock))
                   .values(status=INTERRUPTED, updated_at=now(), **error_columns(PROCESS_GONE_MESSAGE),
                           lease_until=None))
        taken = (jobs.update()
                 .where(jobs.c.status == QUEUED, jobs.c.owner.is_not(None), jobs.c.lease_until < clock)
                 .values(status=INTERRUPTED, updated_at=now(), **error_columns(NEVER_STARTED_MESSAGE),
                         lease_until=None))
        with self._connect("look for stopped processes") as conn:
            count = conn.execute(running).rowcount + conn.execute(taken).rowcount
        if count:
            log.info("%d jobs of stopped app processes marked interrupted", count)
        return count
