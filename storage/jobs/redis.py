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
import hashlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
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
    error_columns,
)
from storage.redis_client import FAILURES, connect, key
from storage.store import new_id, now
from utils.crypto import Sealer

log = logging.getLogger(__name__)

LEASE_SECONDS = 15.0      # a running job's process is taken for dead this long after its last heartbeat
PAGE_TIMEOUT = 2.0        # seconds for the page's calls (submit, get, list)

QUEUE = key("jobs", "v1", "queue")
ALL = key("jobs", "v1", "all")
QUEUED_SET = key("jobs", "v1", "queued")
RUNNING_SET = key("jobs", "v1", "running")


# Fields a listing reads: everything but the photo.
_LIST_FIELDS = ("id", "created_at", "updated_at", "status", "kind", "provider", "user", "request", "result", "error",
                "error_message", "elapsed_ms")

# KEYS: job, lease, queued set, running set. ARGV: id, owner, now, lease ms.
_CLAIM = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'owner', ARGV[2], 'updated_at', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return 1
"""

# KEYS: job, lease, running set. ARGV: id, owner, then field, value pairs.
_FINISH = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""

# KEYS: job, lease, running set. ARGV: id, now, message, message as JSON. A running job whose lease is gone becomes
# interrupted.
_REAP_RUNNING = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then
  redis.call('SREM', KEYS[3], ARGV[1])
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'interrupted', 'updated_at', ARGV[2], 'error', ARGV[3], 'error_message', ARGV[4])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""

# KEYS: job, queue, queued set. ARGV: id, now, message, message as JSON. A queued job no longer in the queue was
# lost by a worker.
_REAP_QUEUED = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then
  redis.call('SREM', KEYS[3], ARGV[1])
  return 0
end
if redis.call('LPOS', KEYS[2], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'interrupted', 'updated_at', ARGV[2], 'error', ARGV[3], 'error_message', ARGV[4])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""


def _job_key(job_id: str) -> str:
    return key("job", "v1", job_id)


def _lease_key(job_id: str) -> str:
    return key("job", "v1", job_id, "lease")


def _user_key(user: str) -> str:
    # A digest, so that no key shows who uses the app.
    return key("jobs", "v1", "user", hashlib.sha256(user.encode("utf-8")).hexdigest()[:32])


def _str(value: bytes | str) -> str:
    # This store's clients return bytes (see `connect`); redis-py's types also allow a decoding client's str.
    return value if isinstance(value, str) else value.decode("utf-8")


def _text(value: bytes | str | None) -> str | None:
    return None if value is None else _str(value)


def _interrupted(message: Message) -> tuple[str, str]:
    # The error and error_message fields of a job a reaper marks interrupted (see `error_columns`).
    fields = error_columns(message)
    return str(fields["error"]), str(fields["error_message"])


def _unavailable(what: str, exc: BaseException) -> JobStoreUnavailable:
    # Logged by the error's class only: never a key or a value.
    log.warning("jobs: %s failed: %s", what, type(exc).__name__)
    return JobStoreUnavailable()


class RedisJobStore:
    """Jobs in one Redis, shared by every app process; each Redis failure raises `JobStoreUnavailable`."""

    def __init__(self, client: redis.Redis, *, blocking: redis.Redis | None = None, retention_seconds: float,
                 sealer: Sealer | None = None, lease_seconds: float = LEASE_SECONDS,
                 poll_seconds: float = POLL_SECONDS) -> None:
        """`client` answers the page's calls; `blocking` (default `client`) waits in BLPOP up to `poll_seconds`,
        so its socket timeout must be longer than that. Jobs expire `retention_seconds` after submission."""
        self._redis = client
        self._blocking = blocking or client
        self.retention_seconds = retention_seconds
        self.codec = JobCodec(sealer)
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.upkeep_seconds = lease_seconds / 3  # well before a lease expires
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._reap_running = client.register_script(_REAP_RUNNING)
        self._reap_queued = client.register_script(_REAP_QUEUED)
        self._held: set[str] = set()          # jobs this process claimed (their leases are refreshed)
        self._held_lock = threading.Lock()
        self._suspects: set[str] = set()      # queued jobs missing from the queue at the last look

    @classmethod
    def from_url(cls, url: str, *, retention_seconds: float, sealer: Sealer | None = None,
                 lease_seconds: float = LEASE_SECONDS, poll_seconds: float = POLL_SECONDS) -> RedisJobStore:
        """The store for REDIS_URL `url`, with the process's shared connection pools."""
        return cls(connect(url, PAGE_TIMEOUT), blocking=connect(url, poll_seconds + PAGE_TIMEOUT),
                   retention_seconds=retention_seconds, sealer=sealer, lease_seconds=lease_seconds,
                   poll_seconds=poll_seconds)

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
            pipe.hset(_job_key(job_id), mapping=fields)
            pipe.expire(_job_key(job_id), expire)
            listings = [ALL] + ([_user_key(request.user)] if request.user is not None else [])
            for listing in listings:
                pipe.zadd(listing, {job_id: stamp})
                pipe.zremrangebyscore(listing, "-inf", f"({stamp - self.retention_seconds}")
                pipe.expire(listing, expire)
            pipe.sadd(QUEUED_SET, job_id)
            pipe.rpush(QUEUE, job_id)
            pipe.execute()
        except FAILURES as exc:
            raise _unavailable("submit", exc) from None
        return job_id

    def request_of(self, job_id: str) -> DiagnosisRequest:
        """The request a job was submitted with; KeyError when there is no such job, `JobUnreadable` under
        another key."""
        try:
            request, image, user = self._redis.hmget(_job_key(job_id), "request", "image", "user")
        except FAILURES as exc:
            raise _unavailable("read", exc) from None
        if request is None:
            raise KeyError(job_id)
        return self.codec.open_request(request, image, _text(user))

    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        try:
            values = self._redis.hmget(_job_key(job_id), _LIST_FIELDS)
        except FAILURES as exc:
            raise _unavailable("read", exc) from None
        return self._job(values)

    def list(self, *, user: str | None = None, limit: int = 200) -> list[Job]:
        """The newest jobs first (one user's, when given)."""
        listing = ALL if user is None else _user_key(user)
        try:
            # Members only (no scores), as bytes: redis-py's return type covers every option of the call.
            ids = cast("list[bytes]", self._redis.zrevrange(listing, 0, limit - 1))
            pipe = self._redis.pipeline(transaction=False)
            for job_id in ids:
                pipe.hmget(_job_key(job_id.decode()), _LIST_FIELDS)
            rows = pipe.execute() if ids else []
        except FAILURES as exc:
            raise _unavailable("list", exc) from None
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
            raise _unavailable("count", exc) from None
        return {QUEUED: int(queued), RUNNING: int(running)}

    # -- the workers' side --------------------------------------------------------------------

    def recover(self) -> int:
        """Look for jobs of dead processes (see `reap`); a Redis that does not answer is only logged."""
        try:
            return self.reap()
        except FAILURES as exc:
            log.warning("jobs: could not check for interrupted jobs at start: %s", type(exc).__name__)
            return 0

    def next_job(self) -> str | None:
        """The next id on the shared queue, waiting up to `poll_seconds` (BLPOP)."""
        try:
            popped = self._blocking.blpop([QUEUE], timeout=self.poll_seconds)
        except FAILURES as exc:
            raise _unavailable("queue", exc) from None
        return None if popped is None else _str(popped[1])

    def release(self, job_id: str) -> None:
        """Hand the job back to the other processes, first in line."""
        try:
            self._redis.lpush(QUEUE, job_id)
        except FAILURES as exc:  # it stays queued and missing from the queue: a keeper marks it interrupted
            raise _unavailable("hand back", exc) from None

    def claim(self, job_id: str) -> bool:
        """queued → running with this process's lease; False when no longer queued (interrupted, or expired)."""
        with self._held_lock:
            self._held.add(job_id)  # before the claim: the keeper must never see a claimed job without its lease
        try:
            claimed = bool(self._claim(keys=[_job_key(job_id), _lease_key(job_id), QUEUED_SET, RUNNING_SET],
                                       args=[job_id, self.owner, repr(now()), int(self.lease_seconds * 1000)]))
        except FAILURES as exc:
            claimed = False
            raise _unavailable("claim", exc) from None
        finally:
            if not claimed:  # no lease to refresh
                with self._held_lock:
                    self._held.discard(job_id)
        return claimed

    def finish(self, job_id: str, status: str, *, result: Diagnosis | None = None,
               error: Message | str | None = None, elapsed_ms: float | None = None) -> bool:
        """running → `status`, only by this process; False when no longer running (it stays as it is)."""
        fields: dict[str, Any] = {"status": status, "updated_at": now()}
        fields.update((name, value) for name, value in error_columns(error).items() if value is not None)
        if elapsed_ms is not None:
            fields["elapsed_ms"] = elapsed_ms
        if result is not None:
            fields["result"] = self.codec.seal_result(result)
            if result.assessment_id:
                fields["assessment_id"] = result.assessment_id
        try:
            return self._move(job_id, fields)
        except FAILURES as exc:  # the lease then expires and a keeper marks the job interrupted
            raise _unavailable("finish", exc) from None
        finally:
            with self._held_lock:
                self._held.discard(job_id)

    def _move(self, job_id: str, fields: dict[str, Any]) -> bool:
        def encoded(value: object) -> str | bytes:
            return repr(value) if isinstance(value, float) else value if isinstance(value, bytes) else str(value)

        pairs = [part for name, value in fields.items() for part in (name, encoded(value))]
        return bool(self._finish(keys=[_job_key(job_id), _lease_key(job_id), RUNNING_SET],
                                 args=[job_id, self.owner, *pairs]))

    def upkeep(self) -> None:
        """Refresh this process's leases, then mark interrupted the jobs of dead processes."""
        try:
            self.heartbeat()
            self.reap()
        except FAILURES as exc:
            raise _unavailable("heartbeat", exc) from None

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
        """Extend the lease of every job this process is running."""
        with self._held_lock:
            held = list(self._held)
        if not held:
            return
        pipe = self._redis.pipeline(transaction=False)
        for job_id in held:
            # XX: only while the lease exists; a job not yet claimed (or already finished) gets none.
            pipe.set(_lease_key(job_id), self.owner, px=int(self.lease_seconds * 1000), xx=True)
        pipe.execute()

    def reap(self) -> int:
        """Mark interrupted the jobs whose process is gone; returns how many.

        A running job whose lease expired lost its process. A queued job missing from the queue on
        two looks in a row was taken by a worker whose process died before it could claim it (one
        look could fall in the instant between a worker's BLPOP and its claim).
        """
        stamp = repr(now())
        count = 0
        for raw in self._redis.smembers(RUNNING_SET):
            job_id = _str(raw)
            count += self._reap_running(keys=[_job_key(job_id), _lease_key(job_id), RUNNING_SET],
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
            count += self._reap_queued(keys=[_job_key(job_id), QUEUE, QUEUED_SET],
                                       args=[job_id, stamp, *_interrupted(NEVER_STARTED_MESSAGE)])
        self._suspects = missing
        if count:
            log.info("%d jobs of stopped app processes marked interrupted", count)
        return count
