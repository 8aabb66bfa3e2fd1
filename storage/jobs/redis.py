"""Background jobs in Redis (REDIS_URL): any app process may run a job, and any may show it.

The Redis `JobStore` (see `storage.jobs` for the contract; `engine.jobs.JobRunner` runs it):

- a job is a hash (`skinai:job:v1:<id>`: status, times, user, kind, provider, the request
  as JSON, the shrunk photo's bytes, the result as JSON, error, elapsed time; request,
  photo and result sealed by `JobCodec` with DATA_ENCRYPTION_KEY, as in SQLite), listed by
  sorted sets scored by creation time (all jobs, and one per user, keyed by a digest of
  the user name);
- `add` pushes the id onto one Redis list; `next_job` is a BLPOP on it with a short timeout,
  so the workers of every process pull from the same line: a job submitted to process A may
  be run by B and read from either;
- a claimed job holds a lease (a key with an expiry); `upkeep` (every third of a lease, by
  the runner's keeper thread) refreshes this process's leases and marks interrupted the
  running jobs whose lease expired (their process died), and the queued jobs a dead worker
  took from the line before it could claim them. A live process keeps refreshing its leases,
  so its jobs are never taken for dead. `close` marks the jobs this process still runs
  interrupted at once: nobody refreshes their leases any more.

State changes are Lua scripts, so they are atomic across processes: a job is claimed
only while queued, finished only by the process that claimed it and only while still
running (a job marked interrupted meanwhile stays interrupted, as in SQLite).
One Redis (not a cluster) is assumed: the scripts touch several keys.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, cast

import redis
from redis.typing import EncodableT, FieldT

from domain.jobs import INTERRUPTED, QUEUED, RESTARTED_MESSAGE, RUNNING, Job, JobStoreUnavailable
from domain.messages import Message
from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from storage.jobs import (
    NEVER_STARTED_MESSAGE,
    POLL_SECONDS,
    PROCESS_GONE_MESSAGE,
    JobCodec,
    ReapGrace,
    error_columns,
)
from storage.jobs.redis_scripts import (
    ALL,
    CLAIM,
    FINISH,
    KEPT,
    QUEUE,
    QUEUED_SET,
    REAP_QUEUED,
    REAP_RUNNING,
    RENEW,
    RUNNING_SET,
    job_key,
    lease_key,
    user_key,
)
from storage.redis_client import FAILURES, connect
from storage.store import new_id, now
from utils.crypto import Sealer

log = logging.getLogger(__name__)

LEASE_SECONDS = 15.0      # a running job's process is taken for dead this long after its last heartbeat
PAGE_TIMEOUT = 2.0        # seconds for the page's calls (submit, get, list)

# Fields a listing reads: everything but the photo.
_LIST_FIELDS = ("id", "created_at", "updated_at", "status", "kind", "provider", "user", "request", "result", "error",
                "error_message", "elapsed_ms")

def _str(value: bytes | str) -> str:
    # This store's clients return bytes (see `connect`); redis-py's types also allow a decoding client's str.
    return value if isinstance(value, str) else value.decode("utf-8")


def _text(value: bytes | str | None) -> str | None:
    return None if value is None else _str(value)


def _encoded(value: object) -> str | bytes:
    return repr(value) if isinstance(value, float) else value if isinstance(value, bytes) else str(value)


def _interrupted(message: Message) -> tuple[str, str]:
    # The error and error_message fields of a job a reaper marks interrupted (see `error_columns`).
    fields = error_columns(message)
    return str(fields["error"]), str(fields["error_message"])


class RedisJobStore:
    """Jobs in one Redis, shared by every app process; each Redis failure raises `JobStoreUnavailable`."""

    def __init__(self, client: redis.Redis, *, blocking: redis.Redis | None = None, retention_seconds: float,
                 sealer: Sealer | None = None, lease_seconds: float = LEASE_SECONDS,
                 poll_seconds: float = POLL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        """`client` answers the page's calls; `blocking` (default `client`) waits in BLPOP up to `poll_seconds`,
        so its socket timeout must be longer than that. Jobs expire `retention_seconds` after submission.
        `clock` (monotonic seconds) times the reaper's grace after Redis did not answer (see `ReapGrace`)."""
        self._redis = client
        self._blocking = blocking or client
        self.retention_seconds = retention_seconds
        self.codec = JobCodec(sealer)
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.upkeep_seconds = lease_seconds / 3  # well before a lease expires
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._claim = client.register_script(CLAIM)
        self._finish = client.register_script(FINISH)
        self._reap_running = client.register_script(REAP_RUNNING)
        self._reap_queued = client.register_script(REAP_QUEUED)
        self._renew = client.register_script(RENEW)
        self._grace = ReapGrace(lease_seconds, clock)
        self._held: set[str] = set()          # jobs this process claimed and has not finished (never reaped here)
        self._over: set[str] = set()          # of those, the ones whose work is over, the finish not yet taken
        self._held_lock = threading.Lock()
        self._kept: dict[str, dict[str, bytes]] = {}  # the claimed jobs' KEPT fields, to write back if Redis lost them
        self._suspects: set[str] = set()      # queued jobs missing from the queue at the last look

    def _unavailable(self, what: str, exc: BaseException) -> JobStoreUnavailable:
        self._grace.lost()
        log.warning("jobs: %s failed: %s", what, type(exc).__name__)  # the class only: never a key or a value
        return JobStoreUnavailable()

    @classmethod
    def from_url(cls, url: str, *, retention_seconds: float, sealer: Sealer | None = None,
                 lease_seconds: float = LEASE_SECONDS, poll_seconds: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> RedisJobStore:
        """The store for REDIS_URL `url`, with the process's shared connection pools."""
        return cls(connect(url, PAGE_TIMEOUT), blocking=connect(url, poll_seconds + PAGE_TIMEOUT),
                   retention_seconds=retention_seconds, sealer=sealer, lease_seconds=lease_seconds,
                   poll_seconds=poll_seconds, clock=clock)

    # -- the page's side ----------------------------------------------------------------------

    def add(self, request: DiagnosisRequest) -> str:
        """Record `request` as a queued job and push it on the shared queue; returns the job's id."""
        job_id, stamp = new_id(), now()
        fields: dict[FieldT, EncodableT] = {"id": job_id, "created_at": repr(stamp), "updated_at": repr(stamp),
                                            "status": QUEUED, "kind": request.kind,
                                            "request": self.codec.seal_request(request)}
        if request.provider:
            fields["provider"] = request.provider
        if request.user is not None:
            fields["user"] = request.user
        if (photo := self.codec.seal_photo(request)) is not None:
            fields["image"] = photo
        expire = max(int(self.retention_seconds), 1)
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(job_key(job_id), mapping=fields)
            pipe.expire(job_key(job_id), expire)
            listings = [ALL] + ([user_key(request.user)] if request.user is not None else [])
            for listing in listings:
                pipe.zadd(listing, {job_id: stamp})
                pipe.zremrangebyscore(listing, "-inf", f"({stamp - self.retention_seconds}")
                pipe.expire(listing, expire)
            pipe.sadd(QUEUED_SET, job_id)
            pipe.rpush(QUEUE, job_id)
            pipe.execute()
        except FAILURES as exc:
            raise self._unavailable("submit", exc) from None
        return job_id

    def request_of(self, job_id: str) -> DiagnosisRequest:
        """The request a job was submitted with; KeyError when there is no such job, `JobUnreadable` under
        another key."""
        try:
            request, image, user = self._redis.hmget(job_key(job_id), "request", "image", "user")
        except FAILURES as exc:
            raise self._unavailable("read", exc) from None
        if request is None:
            raise KeyError(job_id)
        return self.codec.open_request(request, image, _text(user))

    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        try:
            values = self._redis.hmget(job_key(job_id), _LIST_FIELDS)
        except FAILURES as exc:
            raise self._unavailable("read", exc) from None
        return self._job(values)

    def list(self, *, user: str | None = None, limit: int = 200) -> list[Job]:
        """The newest jobs first (one user's, when given)."""
        listing = ALL if user is None else user_key(user)
        try:
            # Members only (no scores), as bytes: redis-py's return type covers every option of the call.
            ids = cast("list[bytes]", self._redis.zrevrange(listing, 0, limit - 1))
            pipe = self._redis.pipeline(transaction=False)
            for job_id in ids:
                pipe.hmget(job_key(job_id.decode()), _LIST_FIELDS)
            rows = pipe.execute() if ids else []
        except FAILURES as exc:
            raise self._unavailable("list", exc) from None
        found, expired = [], []
        for job_id, values in zip(ids, rows, strict=True):
            job = self._job(values)
            if job is None:
                expired.append(job_id)
            else:
                found.append(job)
        if expired:  # their hashes expired with the retention: drop them from the listing too
            with contextlib.suppress(*FAILURES):
                self._redis.zrem(listing, *expired)
        return found

    def _job(self, values: Sequence[bytes | str | None]) -> Job | None:
        row: dict[str, Any] = dict(zip(_LIST_FIELDS, values, strict=True))
        if row["status"] is None or row["request"] is None:
            return None  # expired with the retention
        for name in ("id", "status", "kind", "provider", "user", "error", "error_message"):
            row[name] = _text(row[name])
        for name in ("created_at", "updated_at", "elapsed_ms"):
            row[name] = None if row[name] is None else float(row[name])
        return self.codec.job(row)

    def counts(self) -> dict[str, int]:
        """How many jobs are queued and how many running, on every process: the sizes of the two state sets."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.scard(QUEUED_SET)
            pipe.scard(RUNNING_SET)
            queued, running = pipe.execute()
        except FAILURES as exc:
            raise self._unavailable("count", exc) from None
        return {QUEUED: int(queued), RUNNING: int(running)}

    # -- the workers' side --------------------------------------------------------------------

    def recover(self) -> int:
        """Look for jobs of dead processes (see `reap`); a Redis that does not answer is only logged."""
        try:
            return self.reap()
        except FAILURES as exc:
            self._grace.lost()
            log.warning("jobs: could not check for interrupted jobs at start: %s", type(exc).__name__)
            return 0

    def next_job(self) -> str | None:
        """The next id on the shared queue, waiting up to `poll_seconds` (BLPOP)."""
        try:
            popped = self._blocking.blpop([QUEUE], timeout=self.poll_seconds)
        except FAILURES as exc:
            raise self._unavailable("queue", exc) from None
        return None if popped is None else _str(popped[1])

    def release(self, job_id: str) -> None:
        """Hand the job back to the other processes, first in line."""
        try:
            self._redis.lpush(QUEUE, job_id)
        except FAILURES as exc:  # it stays queued and missing from the queue: a keeper marks it interrupted
            raise self._unavailable("hand back", exc) from None

    def claim(self, job_id: str) -> bool:
        """queued → running with this process's lease; False when no longer queued (interrupted, or expired)."""
        with self._held_lock:
            self._held.add(job_id)  # before the claim: the keeper must never see a claimed job without its lease
        try:
            kept = self._claim(keys=[job_key(job_id), lease_key(job_id), QUEUED_SET, RUNNING_SET],
                               args=[job_id, self.owner, repr(now()), int(self.lease_seconds * 1000)])
            if claimed := bool(kept):
                with self._held_lock:
                    self._kept[job_id] = {name: value for name, value in zip(KEPT, kept, strict=True) if value}
        except FAILURES as exc:
            claimed = False
            raise self._unavailable("claim", exc) from None
        finally:
            if not claimed:  # no lease to refresh
                with self._held_lock:
                    self._held.discard(job_id)
        return claimed

    def finish(self, job_id: str, status: str, *, result: Diagnosis | None = None,
               error: Message | str | None = None, elapsed_ms: float | None = None) -> bool:
        """running → `status`, only by this process; False when no longer running (it stays as it is).

        When Redis does not answer, the job stays this process's (never reaped here) but its lease is no longer
        refreshed: its work is over, and the runner finishes it again once Redis answers."""
        fields: dict[str, Any] = {"status": status, "updated_at": now()}
        fields.update((name, value) for name, value in error_columns(error).items() if value is not None)
        if elapsed_ms is not None:
            fields["elapsed_ms"] = elapsed_ms
        if result is not None:
            fields["result"] = self.codec.seal_result(result)
            if result.assessment_id:
                fields["assessment_id"] = result.assessment_id
        try:
            moved = self._move(job_id, fields)
            if moved < 0:  # a Redis restarted without its data: the job comes back, finished, with its answer
                moved = self._restore(job_id, fields)
        except FAILURES as exc:
            with self._held_lock:
                self._over.add(job_id)
            raise self._unavailable("finish", exc) from None
        with self._held_lock:
            self._held.discard(job_id)
            self._over.discard(job_id)
            self._kept.pop(job_id, None)
        return moved == 1

    def _restore(self, job_id: str, fields: dict[str, Any]) -> int:
        with self._held_lock:
            kept = self._kept.get(job_id)
        if not kept:
            return 0
        record: dict[FieldT, EncodableT] = {"id": job_id, "owner": self.owner}
        record.update(kept)
        record.update((name, _encoded(value)) for name, value in fields.items())
        stamp, user = float(kept["created_at"]), kept.get("user")
        expire = max(int(self.retention_seconds - (now() - stamp)), 1)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(job_key(job_id), mapping=record)
        pipe.expire(job_key(job_id), expire)
        for listing in [ALL] + ([user_key(_str(user))] if user is not None else []):
            pipe.zadd(listing, {job_id: stamp})
            pipe.expire(listing, max(int(self.retention_seconds), 1))
        pipe.execute()
        log.warning("jobs: Redis had lost a job that ended here; written back with its outcome")
        return 1

    def _move(self, job_id: str, fields: dict[str, Any]) -> int:
        pairs = [part for name, value in fields.items() for part in (name, _encoded(value))]
        return int(self._finish(keys=[job_key(job_id), lease_key(job_id), RUNNING_SET],
                                 args=[job_id, self.owner, *pairs]))

    def upkeep(self) -> None:
        """Refresh this process's leases, then mark interrupted the jobs of dead processes."""
        try:
            self.heartbeat()
            self.reap()
        except FAILURES as exc:
            raise self._unavailable("heartbeat", exc) from None

    def close(self) -> None:
        """Mark the jobs this process still runs interrupted now: their leases will not be refreshed any more.

        As in SQLite, a restart cuts a job short visibly: it shows as interrupted, with *Run again*.
        """
        with self._held_lock:
            held = list(self._held)
        for job_id in held:
            try:
                self._move(job_id, {"status": INTERRUPTED, "updated_at": now(), **error_columns(RESTARTED_MESSAGE)})
            except FAILURES as exc:  # the lease expires and another process's keeper marks it
                log.warning("jobs: could not mark a job interrupted at shutdown: %s", type(exc).__name__)

    # -- leases -------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Extend the lease of every job this process is running (set again where Redis lost it), but not of those
        whose work is over."""
        with self._held_lock:
            running = sorted(self._held - self._over)
        if not running:
            return
        pipe = self._redis.pipeline(transaction=False)
        for job_id in running:
            self._renew(keys=[job_key(job_id), lease_key(job_id)], args=[self.owner, int(self.lease_seconds * 1000)],
                        client=pipe)
        pipe.execute()

    def reap(self) -> int:
        """Mark interrupted the jobs whose process is gone; returns how many.

        A running job whose lease expired lost its process. A queued job missing from the queue on
        two looks in a row was taken by a worker whose process died before it could claim it (one
        look could fall in the instant between a worker's BLPOP and its claim).

        Never this process's own running jobs (it is alive, and settles them), and none for a lease after this
        process lost Redis (`ReapGrace`).
        """
        if not self._grace.allows():
            return 0
        stamp = repr(now())
        count = 0
        with self._held_lock:
            mine = set(self._held)
        for raw in self._redis.smembers(RUNNING_SET):
            if (job_id := _str(raw)) in mine:
                continue
            count += self._reap_running(keys=[job_key(job_id), lease_key(job_id), RUNNING_SET],
                                        args=[job_id, stamp, *_interrupted(PROCESS_GONE_MESSAGE)])
        queued = {_str(raw) for raw in self._redis.smembers(QUEUED_SET)}
        missing = set()
        if queued:
            pipe = self._redis.pipeline(transaction=False)
            ordered = sorted(queued)
            for job_id in ordered:
                pipe.lpos(QUEUE, job_id)
            missing = {job_id for job_id, pos in zip(ordered, pipe.execute(), strict=True) if pos is None}
        for job_id in missing & self._suspects:
            count += self._reap_queued(keys=[job_key(job_id), QUEUE, QUEUED_SET],
                                       args=[job_id, stamp, *_interrupted(NEVER_STARTED_MESSAGE)])
        self._suspects = missing
        if count:
            log.info("%d jobs of stopped app processes marked interrupted", count)
        return count
