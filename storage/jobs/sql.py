"""The `JobStore` on the `jobs` table of the app's store, SQLite or PostgreSQL (see `storage.jobs`)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from domain.jobs import (
    INTERRUPTED,
    QUEUED,
    RESTARTED_MESSAGE,
    RUNNING,
    Job,
    JobStoreUnavailable,
)
from domain.messages import Message
from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from storage.database import StoreUnavailable
from storage.jobs import (
    NEVER_STARTED_MESSAGE,
    POLL_SECONDS,
    PROCESS_GONE_MESSAGE,
    JobCodec,
    ReapGrace,
    error_columns,
)
from storage.schema import jobs
from storage.store import Store, new_id, now
from utils.crypto import Sealer

log = logging.getLogger(__name__)


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
    A job whose finish the database did not take is no longer renewed (its work is over: if this process dies
    before the runner records it, it is interrupted as its process's), and never reaped by this process.
    """

    def __init__(self, store: Store, *, sealer: Sealer | None = None, poll_seconds: float = POLL_SECONDS,
                 lease_seconds: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        """`sealer` encrypts each job's request, photo and result when it holds a key (as the history's rows);
        `clock` (monotonic seconds) times the reaper's grace after an outage (see `ReapGrace`)."""
        self.store = store
        self.codec = JobCodec(sealer)
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.upkeep_seconds = None if lease_seconds is None else lease_seconds / 3  # well before a lease runs out
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._added = threading.Event()  # a job was added here: this process's idle workers look at once
        self._recover_pending = False    # the start's recovery could not reach the database: done before a take
        self._grace = ReapGrace(lease_seconds or 0.0, clock)
        self._over: set[str] = set()     # jobs whose work is over here, their finish not yet taken by the database
        self._over_lock = threading.Lock()

    @contextmanager
    def _connect(self, what: str, *, serialize: str | None = None) -> Iterator[sa.Connection]:
        try:
            with self.store.connect(serialize=serialize) as conn:
                yield conn
        except StoreUnavailable as exc:
            self._grace.lost()
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
        # Fair shares: the oldest job of the user with the fewest jobs taken or running, so one clinic's burst
        # does not delay everyone's; alone in line, a user's jobs take every worker (jobs without a user: in order).
        other = jobs.alias("other")
        busy = (sa.select(sa.func.count()).select_from(other)
                .where(other.c.user == jobs.c.user,
                       sa.or_(other.c.status == RUNNING, sa.and_(other.c.status == QUEUED, other.c.owner.is_not(None))))
                .scalar_subquery())
        oldest = (sa.select(jobs.c.id).where(jobs.c.status == QUEUED, jobs.c.owner.is_(None))
                  .order_by(busy, jobs.c.created_at, jobs.c.id).limit(1))
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
        with self._over_lock:
            self._over.add(job_id)
        moved = self._move(job_id, sa.and_(jobs.c.status == RUNNING, jobs.c.owner == self.owner), **fields)
        with self._over_lock:  # kept when the database did not answer: the runner finishes it again
            self._over.discard(job_id)
        return moved

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
        """Extend the lease of every job this process holds (taken or running), but those whose work is over."""
        with self._over_lock:
            over = sorted(self._over)
        query = (jobs.update().where(jobs.c.owner == self.owner, jobs.c.status.in_((QUEUED, RUNNING)),
                                     jobs.c.id.not_in(over))
                 .values(lease_until=self._lease()))
        with self._connect("heartbeat") as conn:
            conn.execute(query)

    def reap(self) -> int:
        """Mark interrupted the jobs whose process is gone: running or taken ones whose lease ran out (a running
        job without any lease was left by a release before leases); returns how many.

        Never this process's own jobs (it is alive, and settles them), and none for a lease after this process lost
        the database (`ReapGrace`)."""
        if not self._grace.allows():
            return 0
        clock = database_clock(self.store.dialect)
        others = jobs.c.owner.is_distinct_from(self.owner)
        running = (jobs.update()
                   .where(jobs.c.status == RUNNING, others,
                          sa.or_(jobs.c.lease_until.is_(None), jobs.c.lease_until < clock))
                   .values(status=INTERRUPTED, updated_at=now(), **error_columns(PROCESS_GONE_MESSAGE),
                           lease_until=None))
        taken = (jobs.update()
                 .where(jobs.c.status == QUEUED, jobs.c.owner.is_not(None), others, jobs.c.lease_until < clock)
                 .values(status=INTERRUPTED, updated_at=now(), **error_columns(NEVER_STARTED_MESSAGE),
                         lease_until=None))
        with self._connect("look for stopped processes") as conn:
            count = conn.execute(running).rowcount + conn.execute(taken).rowcount
        if count:
            log.info("%d jobs of stopped app processes marked interrupted", count)
        return count
