"""Background jobs in Redis: any app process may run a job, and any may show it.

The same public API as `providers.jobs.Jobs` (submit, rerun, request_of, get, list,
shutdown), so the pages work unchanged. With REDIS_URL set:

- a job is a hash (`skinai:job:v1:<id>`: status, times, user, kind, provider, the request
  as JSON, the shrunk photo's bytes, the result as JSON, error, elapsed time; request,
  photo and result encrypted with DATA_ENCRYPTION_KEY, as the history is), listed by
  sorted sets scored by creation time (all jobs, and one per user, keyed by a digest of
  the user name);
- submitting pushes the id onto one Redis list; every process runs JOB_WORKERS daemon
  threads that pull from it (BLPOP with a short timeout, in a loop), so a job submitted to
  process A may be run by B and read from either;
- a running job holds a lease (a key with an expiry) that its process refreshes; a
  keeper thread in every process, at start and then every third of a lease, marks
  running jobs whose lease expired (their process died) interrupted. A live process
  keeps refreshing its leases, so its jobs are never taken for dead.

State changes are Lua scripts, so they are atomic across processes: a job is claimed
only while queued, finished only by the process that claimed it and only while still
running (a job marked interrupted meanwhile stays interrupted, as in `Jobs`).
One Redis (not a cluster) is assumed: the scripts touch several keys.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

import redis

from domain.errors import DiagnosisError
from providers.jobs import DONE, FAILED, INTERRUPTED, QUEUED, Job, request_from_record, request_record
from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from storage.redis_client import FAILURES, connect, key
from storage.store import dumps, new_id, now

if TYPE_CHECKING:
    from providers.engine import Engine

log = logging.getLogger(__name__)

LEASE_SECONDS = 15.0      # a running job's process is taken for dead this long after its last heartbeat
POLL_SECONDS = 1.0        # BLPOP timeout: how soon an idle worker notices shutdown
PAGE_TIMEOUT = 2.0        # seconds for the page's calls (submit, get, list)

QUEUE = key("jobs", "v1", "queue")
ALL = key("jobs", "v1", "all")
QUEUED_SET = key("jobs", "v1", "queued")
RUNNING_SET = key("jobs", "v1", "running")

RESTARTED = "The app restarted while this job was waiting or running."
PROCESS_GONE = "The app process running this job stopped; run it again."
NEVER_STARTED = "The app process that took this job stopped before it started; run it again."

# Fields a listing reads: everything but the photo.
_LIST_FIELDS = ("id", "created_at", "updated_at", "status", "kind", "provider", "user", "request", "result", "error",
                "elapsed_ms")

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

# KEYS: job, lease, running set. ARGV: id, now, message. A running job whose lease is gone becomes interrupted.
_REAP_RUNNING = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then
  redis.call('SREM', KEYS[3], ARGV[1])
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'interrupted', 'updated_at', ARGV[2], 'error', ARGV[3])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""

# KEYS: job, queue, queued set. ARGV: id, now, message. A queued job no longer in the queue was lost by a worker.
_REAP_QUEUED = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then
  redis.call('SREM', KEYS[3], ARGV[1])
  return 0
end
if redis.call('LPOS', KEYS[2], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'interrupted', 'updated_at', ARGV[2], 'error', ARGV[3])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""


class JobStoreUnavailable(DiagnosisError):
    """Redis, which holds the jobs when REDIS_URL is set, did not answer."""

    def __init__(self) -> None:
        super().__init__("Background jobs are unavailable: the shared job store (Redis, REDIS_URL) does not answer. "
                         "Assess the case directly, or try again in a moment.")


def _job_key(job_id: str) -> str:
    return key("job", "v1", job_id)


def _lease_key(job_id: str) -> str:
    return key("job", "v1", job_id, "lease")


def _user_key(user: str) -> str:
    # A digest, so that no key shows who uses the app.
    return key("jobs", "v1", "user", hashlib.sha256(user.encode("utf-8")).hexdigest()[:32])


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8")


class RedisJobs:
    """Jobs in Redis, run by `workers` threads of this process (0: submit and read only)."""

    def __init__(self, engine: "Engine", *, workers: int, client: redis.Redis | None = None,
                 lease_seconds: float = LEASE_SECONDS, poll_seconds: float = POLL_SECONDS,
                 retention_seconds: float | None = None) -> None:
        self.engine = engine
        self.store = engine.store
        url = engine.settings.redis_url
        self._redis = client or connect(url, PAGE_TIMEOUT)
        # BLPOP waits up to poll_seconds: its socket must wait longer than that.
        self._blocking = client or connect(url, poll_seconds + PAGE_TIMEOUT)
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.retention_seconds = (engine.settings.history_retention_days * 86_400
                                  if retention_seconds is None else retention_seconds)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._claim = self._redis.register_script(_CLAIM)
        self._finish = self._redis.register_script(_FINISH)
        self._reap_running = self._redis.register_script(_REAP_RUNNING)
        self._reap_queued = self._redis.register_script(_REAP_QUEUED)
        # DATA_ENCRYPTION_KEY (the engine's sealer): the request, photo and result are stored encrypted.
        self._sealer = getattr(engine, "sealer", None)
        self._mine: set[str] = set()          # jobs this process is running (their leases are refreshed)
        self._mine_lock = threading.Lock()
        self._suspects: set[str] = set()      # queued jobs missing from the queue at the last look
        self._stop = threading.Event()
        try:
            self.reap()
        except FAILURES as exc:
            log.warning("jobs: could not check for interrupted jobs at start: %s", type(exc).__name__)
        self._threads = [threading.Thread(target=self._work, name=f"redis-job-{n}", daemon=True)
                         for n in range(workers)]
        if workers:
            self._threads.append(threading.Thread(target=self._keep, name="redis-job-keeper", daemon=True))
        for thread in self._threads:
            thread.start()

    # -- the page's API -----------------------------------------------------------------------

    def submit(self, request: DiagnosisRequest) -> str:
        """Queue `request` for any process's workers; returns the job's id at once."""
        request = replace(request, source="job")
        job_id = new_id()
        record = request_record(request)
        stamp = now()
        fields: dict[str, str | bytes] = {"id": job_id, "created_at": repr(stamp), "updated_at": repr(stamp),
                                          "status": QUEUED, "kind": request.kind,
                                          "request": self._seal(dumps(record).encode("utf-8"))}
        if request.provider:
            fields["provider"] = request.provider
        if request.user is not None:
            fields["user"] = request.user
        if request.image is not None:
            fields["image"] = self._seal(request.image.jpeg)
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
            log.warning("jobs: submit failed: %s", type(exc).__name__)
            raise JobStoreUnavailable() from None
        return job_id

    def rerun(self, job_id: str) -> str:
        """Submit a finished job's request again (without the cache); returns the new job's id."""
        return self.submit(replace(self.request_of(job_id), use_cache=False))

    def request_of(self, job_id: str) -> DiagnosisRequest:
        """The request a job was submitted with, rebuilt from Redis; KeyError when there is no such job."""
        try:
            request, image, user = self._redis.hmget(_job_key(job_id), "request", "image", "user")
        except FAILURES as exc:
            log.warning("jobs: read failed: %s", type(exc).__name__)
            raise JobStoreUnavailable() from None
        if request is None:
            raise KeyError(job_id)
        try:
            record = json.loads(self._open(request))
            image = None if image is None else self._open(image)
        except ValueError:
            raise DiagnosisError("This job was stored encrypted with another DATA_ENCRYPTION_KEY: give every app "
                                 "process the same key.") from None
        return request_from_record(record, image, _text(user))

    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        try:
            values = self._redis.hmget(_job_key(job_id), _LIST_FIELDS)
        except FAILURES as exc:
            log.warning("jobs: read failed: %s", type(exc).__name__)
            raise JobStoreUnavailable() from None
        return self._job(values)

    def list(self, *, user: str | None = None, limit: int = 200) -> list[Job]:
        """The newest jobs first (one user's, when given)."""
        listing = ALL if user is None else _user_key(user)
        try:
            ids = self._redis.zrevrange(listing, 0, limit - 1)
            pipe = self._redis.pipeline(transaction=False)
            for job_id in ids:
                pipe.hmget(_job_key(job_id.decode()), _LIST_FIELDS)
            rows = pipe.execute() if ids else []
        except FAILURES as exc:
            log.warning("jobs: list failed: %s", type(exc).__name__)
            raise JobStoreUnavailable() from None
        found, expired = [], []
        for job_id, values in zip(ids, rows):
            job = self._job(values)
            if job is None:
                expired.append(job_id)
            else:
                found.append(job)
        if expired:  # their hashes expired with the retention: drop them from the listing too
            try:
                self._redis.zrem(listing, *expired)
            except FAILURES:
                pass
        return found

    def _seal(self, data: bytes) -> bytes:
        return self._sealer.seal_bytes(data) if self._sealer is not None else data

    def _open(self, stored: bytes) -> bytes:
        # Plain values pass through (jobs stored before a key was set); another key raises a ValueError.
        return self._sealer.open_bytes(stored) if self._sealer is not None else stored

    def _job(self, values: list[bytes | None]) -> Job | None:
        row = dict(zip(_LIST_FIELDS, values))
        if row["status"] is None or row["request"] is None:
            return None
        try:
            record = json.loads(self._open(row["request"]))
            result = Diagnosis.from_dict(json.loads(self._open(row["result"]))) if row["result"] else None
        except ValueError as exc:  # sealed under a key this process lacks: not shown rather than shown as noise
            log.warning("jobs: a job could not be read: %s", type(exc).__name__)
            return None
        return Job(id=_text(row["id"]), created_at=float(row["created_at"]), updated_at=float(row["updated_at"]),
                   status=_text(row["status"]), kind=_text(row["kind"]),
                   provider=result.provider if result else _text(row["provider"]), text=record["text"],
                   user=_text(row["user"]), error=_text(row["error"]),
                   elapsed_ms=None if row["elapsed_ms"] is None else float(row["elapsed_ms"]), result=result)

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking jobs; with `wait`, let running ones finish; jobs still running here become interrupted.

        As with `Jobs`, a restart cuts a job short visibly: it shows as interrupted with *Run again*.
        """
        self._stop.set()
        if wait:
            for thread in self._threads:
                thread.join()
        with self._mine_lock:
            mine = list(self._mine)
        for job_id in mine:
            try:
                self._finish(keys=[_job_key(job_id), _lease_key(job_id), RUNNING_SET],
                             args=[job_id, self.owner, "status", INTERRUPTED, "updated_at", repr(now()),
                                   "error", RESTARTED])
            except FAILURES as exc:  # the lease expires and another process's keeper marks it
                log.warning("jobs: could not mark a job interrupted at shutdown: %s", type(exc).__name__)

    # -- workers ------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                popped = self._blocking.blpop([QUEUE], timeout=self.poll_seconds)
            except FAILURES as exc:
                log.warning("jobs: queue unavailable, retrying: %s", type(exc).__name__)
                self._stop.wait(self.poll_seconds)
                continue
            if popped is None:
                continue
            job_id = popped[1].decode()
            if self._stop.is_set():  # shutting down: hand the job back to the other processes, first in line
                try:
                    self._redis.lpush(QUEUE, job_id)
                except FAILURES as exc:
                    log.warning("jobs: could not hand a job back at shutdown: %s", type(exc).__name__)
                return
            try:
                self._run(job_id)
            except FAILURES as exc:  # the lease then expires and a keeper marks the job interrupted
                log.warning("jobs: lost Redis while running a job: %s", type(exc).__name__)
            except Exception:  # a worker thread must never die: the next job still needs it
                log.exception("jobs: worker error")

    def _run(self, job_id: str) -> None:
        started = time.monotonic()
        lease_ms = int(self.lease_seconds * 1000)
        with self._mine_lock:
            self._mine.add(job_id)  # before the claim: the keeper must never see a claimed job without its lease
        try:
            if not self._claim(keys=[_job_key(job_id), _lease_key(job_id), QUEUED_SET, RUNNING_SET],
                               args=[job_id, self.owner, repr(now()), lease_ms]):
                return  # no longer queued (interrupted, or expired)
            request = replace(self.request_of(job_id), source="job")
            try:
                result = self.engine.diagnose(request)
            except DiagnosisError as exc:
                self._done(job_id, status=FAILED, error=str(exc), elapsed_ms=(time.monotonic() - started) * 1000)
                return
            except Exception as exc:  # the job says what happened; the worker lives on
                log.exception("job %s crashed", job_id)
                self._done(job_id, status=FAILED, error=f"Unexpected error ({type(exc).__name__}).",
                           elapsed_ms=(time.monotonic() - started) * 1000)
                return
            data = {**result.to_dict(), "assessment_id": result.assessment_id}
            extra = {"assessment_id": result.assessment_id} if result.assessment_id else {}
            self._done(job_id, status=DONE, result=self._seal(dumps(data).encode("utf-8")),
                       elapsed_ms=(time.monotonic() - started) * 1000, **extra)
        finally:
            with self._mine_lock:
                self._mine.discard(job_id)

    def _done(self, job_id: str, **fields) -> bool:
        fields["updated_at"] = now()
        def encoded(value) -> str | bytes:
            return repr(value) if isinstance(value, float) else value if isinstance(value, bytes) else str(value)

        pairs = [part for name, value in fields.items() for part in (name, encoded(value))]
        return bool(self._finish(keys=[_job_key(job_id), _lease_key(job_id), RUNNING_SET],
                                 args=[job_id, self.owner, *pairs]))

    # -- leases -------------------------------------------------------------------------------

    def _keep(self) -> None:
        # Refresh this process's leases well before they expire, and look for jobs of dead processes.
        interval = self.lease_seconds / 3
        while not self._stop.wait(interval):
            try:
                self.heartbeat()
                self.reap()
            except FAILURES as exc:
                log.warning("jobs: heartbeat failed: %s", type(exc).__name__)
            except Exception:
                log.exception("jobs: keeper error")

    def heartbeat(self) -> None:
        """Extend the lease of every job this process is running."""
        with self._mine_lock:
            mine = list(self._mine)
        if not mine:
            return
        pipe = self._redis.pipeline(transaction=False)
        for job_id in mine:
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
            job_id = raw.decode()
            count += self._reap_running(keys=[_job_key(job_id), _lease_key(job_id), RUNNING_SET],
                                        args=[job_id, stamp, PROCESS_GONE])
        queued = {raw.decode() for raw in self._redis.smembers(QUEUED_SET)}
        missing = set()
        if queued:
            pipe = self._redis.pipeline(transaction=False)
            ordered = sorted(queued)
            for job_id in ordered:
                pipe.lpos(QUEUE, job_id)
            missing = {job_id for job_id, pos in zip(ordered, pipe.execute()) if pos is None}
        for job_id in missing & self._suspects:
            count += self._reap_queued(keys=[_job_key(job_id), QUEUE, QUEUED_SET], args=[job_id, stamp, NEVER_STARTED])
        self._suspects = missing
        if count:
            log.info("%d jobs of stopped app processes marked interrupted", count)
        return count
