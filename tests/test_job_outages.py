"""Jobs in Redis across a Redis that hangs: a job whose assessment was made ends done with its result, never
interrupted as if its process had died (which would also make *Run again* pay for it twice).

A real `redis-server` (testkit/redis_server.py), hung with SIGSTOP (`freeze`) and always let go (`thaw`); the
runner is handed a plain `diagnose` callable, as in tests/test_contracts.py. PostgreSQL's side of the same faults is
in tests/test_database_down.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from domain.jobs import DONE, RUNNING, JobStoreUnavailable
from domain.parser import parse_answer
from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from engine.jobs import JobRunner
from storage.jobs.redis import RedisJobStore
from testkit.answers import VALID
from testkit.redis_server import RedisServer
from tests.job_watch import watch_finish
from tests.waiting import wait_until

LEASE = 1.0  # shorter than the client's 2 s timeout: a hang that times a call out outlives every lease


def diagnosis() -> Diagnosis:
    return Diagnosis(answer=parse_answer(VALID), provider="runpod", model="clinic-derm-v1", raw=VALID,
                     elapsed_ms=12.0)




@contextmanager
def hung(server: RedisServer) -> Iterator[None]:
    """Redis hung for the block (it answers nothing), answering again whatever happens."""
    server.freeze()
    try:
        yield
    finally:
        server.thaw()


class Gate:
    """A `diagnose` that answers only when the test says so."""

    def __init__(self) -> None:
        self.asked, self.answer = threading.Event(), threading.Event()

    def __call__(self, request: DiagnosisRequest) -> Diagnosis:
        self.asked.set()
        self.answer.wait(30)
        return diagnosis()


def store(server: RedisServer, **kwargs) -> RedisJobStore:
    return RedisJobStore.from_url(server.url, retention_seconds=3600, lease_seconds=LEASE, poll_seconds=0.1,
                                  **kwargs)


def test_a_job_that_ends_while_redis_hangs_is_done_with_its_result(redis_server):
    gate, jobs = Gate(), store(redis_server)
    tried = watch_finish(jobs)
    runner = JobRunner(jobs, gate, workers=1)
    try:
        job_id = runner.submit(DiagnosisRequest(text="nodule", language="en"))
        assert gate.asked.wait(30)
        with hung(redis_server):
            gate.answer.set()
            assert tried.wait(30)  # the finish timed out; the job's lease ran out meanwhile
        job = wait_until(lambda: (found := runner.get(job_id)) and found.status != RUNNING and found)
        assert job.status == DONE and job.result is not None and job.result.raw == VALID and job.error is None
    finally:
        runner.shutdown(wait=True)


def test_a_job_still_running_when_redis_hung_past_its_lease_is_not_taken_for_dead(redis_server, clock):
    gate = Gate()
    runner = JobRunner(store(redis_server), gate, workers=1)
    keeper = store(redis_server, clock=clock)  # another process's keeper
    try:
        job_id = runner.submit(DiagnosisRequest(text="nodule", language="en"))
        assert gate.asked.wait(30)
        with hung(redis_server), pytest.raises(JobStoreUnavailable):
            keeper.upkeep()  # times out after the lease is gone
        assert keeper.reap() == 0  # not yet: nobody could refresh a lease while Redis hung
        runner.store.heartbeat()  # as the runner's keeper does every third of a lease: the lost lease is set again
        clock.now += LEASE  # a lease after Redis answered again
        assert keeper.reap() == 0 and runner.get(job_id).status == RUNNING
        gate.answer.set()
        job = wait_until(lambda: (found := runner.get(job_id)) and found.finished and found)
        assert job.status == DONE and job.result is not None and job.result.raw == VALID
    finally:
        gate.answer.set()
        runner.shutdown(wait=True)


def test_a_job_that_ends_after_redis_restarted_without_its_data_comes_back_done(redis_server):
    # The test's Redis persists nothing: a restart loses every key, this job's record among them.
    gate = Gate()
    runner = JobRunner(store(redis_server), gate, workers=1)
    try:
        job_id = runner.submit(DiagnosisRequest(text="nodule", language="en", user="kim"))
        assert gate.asked.wait(30)
        redis_server.stop()
        redis_server.start()
        assert runner.get(job_id) is None and runner.list() == []  # lost with the restart
        gate.answer.set()
        job = wait_until(lambda: runner.get(job_id))
        assert job.status == DONE and job.result is not None and job.result.raw == VALID
        assert job.text == "nodule" and job.user == "kim" and [j.id for j in runner.list(user="kim")] == [job_id]
    finally:
        gate.answer.set()
        runner.shutdown(wait=True)
