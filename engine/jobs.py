"""Background jobs: submit an assessment, keep working, pick the result up later.

`JobRunner` is the one runner over either job store (storage/jobs/: the contract and the SQL store,
SQLite or PostgreSQL; storage/jobs/redis.py: Redis). Every job is recorded in the store before it runs,
so a reload, a dropped connection or a new browser tab finds it again.

How jobs run: the store keeps the line of waiting jobs and hands out the next one
(`next_job`); the runner's `workers` threads loop over it, claim a job (queued → running),
assess it with the `diagnose` callable it was given, and finish it (running → done or
failed). The line is shared by every process on the store (the `jobs` table, or one Redis
queue), so a job submitted in process A may run in B. A store that needs periodic care while
jobs run (Redis, or a PostgreSQL shared by several servers: renew this process's leases, find
dead processes' jobs) says how often (`upkeep_seconds`), and a keeper thread calls its `upkeep`.

When the app restarts, jobs that were queued or running are marked interrupted (with
one-click re-run in the page), never silently lost; where several servers share the jobs,
only those of a server that stopped.

A job whose work ends while its store does not answer (PostgreSQL or Redis down, or hung) keeps
its outcome in this process's memory (`_owed`), and the workers and the keeper record it as soon
as the store answers again: the job ends done with its answer (already in the history), not
running for good nor interrupted. A job taken from the line whose claim did not get through is
handed back the same way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from domain.errors import DiagnosisError
from domain.jobs import DONE, FAILED, QUEUED, Job, JobStoreUnavailable, TooManyQueued
from domain.messages import Message
from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from storage.jobs import JobStore

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # how long a worker waits after the store did not answer


class JobRunner:
    """Submits jobs to `store` and runs them with `workers` threads (0: submit and read only)."""

    def __init__(self, store: JobStore, diagnose: Callable[[DiagnosisRequest], Diagnosis], *, workers: int,
                 max_queued_per_user: int = 0) -> None:
        """`diagnose` assesses one request (the engine's `diagnose`); it raises `DiagnosisError` on purpose.

        `max_queued_per_user` (JOB_MAX_QUEUED_PER_USER; 0: none) bounds one user's jobs waiting in line.
        """
        self.store = store
        self.diagnose = diagnose
        self.max_queued_per_user = max_queued_per_user
        self._stop = threading.Event()
        # What this process still has to tell the store, by job: a finish (the outcome is in hand) or a hand-back.
        self._owed: dict[str, Callable[[], object]] = {}
        self._owed_lock = threading.Lock()
        self._settling = threading.Lock()  # one thread at a time pays what is owed
        store.recover()  # before any worker takes a job: what is left now belongs to a process that is gone
        self._threads = [threading.Thread(target=self._work, name=f"job-{n}", daemon=True) for n in range(workers)]
        if workers and store.upkeep_seconds:
            self._threads.append(threading.Thread(target=self._keep, name="job-keeper", daemon=True))
        for thread in self._threads:
            thread.start()

    # -- the page's API -----------------------------------------------------------------------

    def submit(self, request: DiagnosisRequest) -> str:
        """Queue `request`; returns the job's id at once (`JobStoreUnavailable` when the store does not answer).

        `TooManyQueued` when its user already has `max_queued_per_user` jobs waiting.
        """
        bound = self.max_queued_per_user
        # A second reading is the app's own work on a case already answered, not the user's burst: never refused.
        if bound and request.user and request.second_reading_of is None:
            # The newest first: a user's waiting jobs are among their newest.
            mine = self.store.list(user=request.user, limit=bound + 200)
            if sum(job.status == QUEUED for job in mine) >= bound:
                raise TooManyQueued(bound)
        # A job from the page is recorded as `job`; one from elsewhere (the API's async endpoint) keeps its origin.
        return self.store.add(replace(request, source="job" if request.source == "page" else request.source))

    def rerun(self, job_id: str) -> str:
        """Submit a finished job's request again (without the cache); returns the new job's id.

        Raises `JobUnreadable` (a `DiagnosisError` saying what to do) for a job sealed under another key.
        """
        return self.submit(replace(self.request_of(job_id), use_cache=False))

    def request_of(self, job_id: str) -> DiagnosisRequest:
        """The request a job was submitted with, rebuilt from the store; KeyError when there is no such job."""
        return self.store.request_of(job_id)

    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        return self.store.get(job_id)

    def list(self, *, user: str | None = None, limit: int = 200) -> list[Job]:
        """The newest jobs first (one user's, when given)."""
        return self.store.list(user=user, limit=limit)

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking jobs; with `wait`, let running ones finish first; then the store closes (see its `close`).

        A job cut short shows as interrupted, with *Run again*: at once with leases (Redis, PostgreSQL), at the next
        start on SQLite.
        """
        self._stop.set()
        if wait:
            for thread in self._threads:
                thread.join()
        with contextlib.suppress(JobStoreUnavailable):  # a last try; what the store still misses, its rules settle
            self._settle()
        self.store.close()

    # -- workers ------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                self._settle()
                job_id = self.store.next_job()
                if job_id is None:
                    continue
                if self._stop.is_set():  # shutting down: the job goes back in line, unrun
                    self.store.release(job_id)
                    return
                self._run(job_id)
            except JobStoreUnavailable:  # logged by the store; what this process owes it is settled once it answers
                self._stop.wait(RETRY_SECONDS)
            except Exception:  # a worker thread must never die: the next job still needs it
                log.exception("jobs: worker error")

    def _run(self, job_id: str) -> None:
        started = time.monotonic()
        try:
            if not self.store.claim(job_id):
                return  # no longer queued (interrupted by a restart, or expired)
        except JobStoreUnavailable:  # taken from the line but not started: back in line once the store answers
            self._owe(job_id, lambda: self.store.release(job_id))
            raise
        status, result = FAILED, None
        error: Message | str | None = None
        try:
            result = self.diagnose(self.store.request_of(job_id))
            status = DONE
        except DiagnosisError as exc:  # the provider's, the input's, or an unreadable job's own message, kept as an
            error = exc.message or str(exc)  # id and values so the Jobs page says it in its reader's language
        except Exception as exc:  # the job says what happened; the worker lives on
            log.exception("job %s crashed", job_id)
            error = Message("job.unexpected", {"error": type(exc).__name__})
        elapsed_ms = (time.monotonic() - started) * 1000

        def finish() -> object:
            return self.store.finish(job_id, status, result=result, error=error, elapsed_ms=elapsed_ms)

        try:
            finish()
        except JobStoreUnavailable:  # the answer is in hand (and in the history): recorded once the store answers
            self._owe(job_id, finish)
            log.warning("jobs: a job ended while its store did not answer; recorded when it answers")

    def _owe(self, job_id: str, call: Callable[[], object]) -> None:
        with self._owed_lock:
            self._owed[job_id] = call

    def _settle(self) -> None:
        """Tell the store what it missed while it did not answer (raises `JobStoreUnavailable` if it still does not);
        before the keeper's upkeep, so that this process's own reaper never takes such a job for lost."""
        if not self._owed or not self._settling.acquire(blocking=False):
            return
        try:
            with self._owed_lock:
                owed = list(self._owed.items())
            for job_id, call in owed:
                try:
                    call()  # False (the job is no longer running: interrupted meanwhile) is settled all the same
                except JobStoreUnavailable:
                    raise
                except Exception:  # never retried for ever: the job's lease (or the next start) settles it
                    log.exception("jobs: could not record a job's end")
                with self._owed_lock:
                    self._owed.pop(job_id, None)
        finally:
            self._settling.release()

    def _keep(self) -> None:
        while not self._stop.wait(self.store.upkeep_seconds):
            try:
                self._settle()
                self.store.upkeep()
            except JobStoreUnavailable:
                pass  # logged by the store; the next round tries again
            except Exception:
                log.exception("jobs: keeper error")
