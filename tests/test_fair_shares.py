"""Fair shares (issue 19, item 6): the API's assessment slots (`ConcurrencyGate`) and the job queue.

The gate is driven by anyio tasks, deterministically: each step waits until every task is blocked,
so the order slots are handed out in is the gate's, never the scheduler's. The API-level test is in
tests/test_api.py. The job queue: a bound on one user's waiting jobs, and the next job for a free
worker taken from the user with the fewest running (SQLite and PostgreSQL).
"""

from __future__ import annotations

import time

import anyio
import pytest

from domain.jobs import QUEUED, TooManyQueued
from domain.request import DiagnosisRequest
from engine.jobs import JobRunner
from storage.jobs.sql import SqlJobStore
from web.api.errors import ApiError
from web.api.limits import ConcurrencyGate


class _Callers:
    """Tasks that each hold one slot of `gate` until told to leave; `order` is who got a slot, in order."""

    def __init__(self, gate: ConcurrencyGate, group: anyio.abc.TaskGroup) -> None:
        self.gate, self.group = gate, group
        self.order: list[str] = []
        self.leave: dict[str, anyio.Event] = {}
        self.refused: list[str] = []

    async def arrive(self, key: str, tag: str) -> None:
        """`tag` asks for a slot as `key`; returns once it holds one or waits in line."""
        self.leave[tag] = anyio.Event()

        async def run() -> None:
            try:
                async with self.gate.slot(key):
                    self.order.append(tag)
                    await self.leave[tag].wait()
            except ApiError:
                self.refused.append(tag)

        self.group.start_soon(run)
        await anyio.wait_all_tasks_blocked()

    async def done(self, tag: str) -> None:
        """`tag` finishes and gives its slot back."""
        self.leave[tag].set()
        await anyio.wait_all_tasks_blocked()


def _run(scenario) -> None:
    async def main() -> None:
        async with anyio.create_task_group() as group:
            await scenario(group)
            group.cancel_scope.cancel()
    anyio.run(main)


def test_a_lone_caller_may_use_every_slot_at_once():
    def check(gate: ConcurrencyGate, callers: _Callers) -> None:
        assert callers.order == ["a1", "a2", "a3", "a4"] and gate.in_use() == 4 and gate.waiting() == 0

    async def scenario(group):
        gate = ConcurrencyGate(lambda: 4, queue_seconds=60)
        callers = _Callers(gate, group)
        for n in range(1, 5):
            await callers.arrive("a", f"a{n}")
        check(gate, callers)

    _run(scenario)


def test_a_freed_slot_goes_to_a_waiting_caller_before_the_one_that_filled_every_slot():
    async def scenario(group):
        gate = ConcurrencyGate(lambda: 2, queue_seconds=60)
        callers = _Callers(gate, group)
        for tag in ("h1", "h2", "h3", "h4", "h5"):  # one token fills both slots and queues three more
            await callers.arrive("heavy", tag)
        await callers.arrive("light", "l1")  # then two others come, one after the other
        await callers.arrive("light", "l2")
        await callers.arrive("third", "t1")
        assert callers.order == ["h1", "h2"] and gate.waiting() == 6 and gate.callers() == 3
        for tag in ("h1", "h2", "l1", "h3", "t1", "l2", "h4"):
            await callers.done(tag)
        # Each free slot to the waiting caller holding the fewest, ties in turn: no one waits behind heavy's queue.
        assert callers.order == ["h1", "h2", "l1", "h3", "t1", "l2", "h4", "h5"]
        assert gate.in_use() == 1 and gate.waiting() == 0

    _run(scenario)


def test_while_others_wait_the_slots_even_out_between_callers():
    async def scenario(group):
        gate = ConcurrencyGate(lambda: 4, queue_seconds=60)
        callers = _Callers(gate, group)
        for n in range(1, 9):
            await callers.arrive("a", f"a{n}")  # a holds 4, four more of a's wait
        for n in range(1, 5):
            await callers.arrive("b", f"b{n}")
        for n in range(1, 5):
            await callers.done(f"a{n}")
        # a's four slots, freed one by one, went to b until both held two, then to whoever held fewer.
        assert callers.order[4:] == ["b1", "b2", "a5", "a6"]
        await callers.done("b1")
        assert callers.order[-1] == "b3"  # b's own slot back to b: it holds fewer than a now

    _run(scenario)


def test_the_gate_says_its_slots_and_line_in_prometheus_format():
    async def scenario(group):
        gate = ConcurrencyGate(lambda: 2, queue_seconds=60)
        callers = _Callers(gate, group)
        for tag in ("a1", "a2", "a3"):
            await callers.arrive("a", tag)
        await callers.arrive("b", "b1")
        text = gate.exposition().decode()
        for line in ("skinai_api_slots 2", "skinai_api_slots_in_use 2", "skinai_api_waiting 2", "skinai_api_users 2",
                     "# TYPE skinai_api_waiting gauge"):
            assert line in text.splitlines()

    _run(scenario)


def test_no_slot_within_the_wait_is_503_and_leaves_the_line():
    async def scenario(group):
        gate = ConcurrencyGate(lambda: 1, queue_seconds=0.05)
        callers = _Callers(gate, group)
        await callers.arrive("a", "a1")
        await callers.arrive("b", "b1")
        await anyio.sleep(0.2)
        assert callers.refused == ["b1"] and gate.waiting() == 0 and gate.callers() == 1
        await callers.done("a1")
        await callers.arrive("b", "b2")  # the slot is free again: at once
        assert callers.order == ["a1", "b2"]

    _run(scenario)


def test_a_caller_that_leaves_while_waiting_gives_up_its_place_and_no_slot_leaks():
    async def scenario(group):
        gate = ConcurrencyGate(lambda: 1, queue_seconds=60)
        callers = _Callers(gate, group)
        await callers.arrive("a", "a1")
        with anyio.CancelScope() as scope:
            scope.cancel()  # a client that hung up: its request is cancelled before it got a slot
            with pytest.raises(anyio.get_cancelled_exc_class()):
                async with gate.slot("b"):
                    pass
        assert gate.waiting() == 0
        await callers.done("a1")
        assert gate.in_use() == 0

    _run(scenario)


# -- the job queue: a per-user bound, and the workers shared between users ------------------------------------------

def _case(user: str, n: int) -> DiagnosisRequest:
    return DiagnosisRequest(text=f"case {n} of {user}: 2 cm pearly papule", user=user, source="api")


def test_one_user_may_queue_only_so_many_jobs_and_others_still_may(store):
    runner = JobRunner(SqlJobStore(store, poll_seconds=0.05), lambda _request: None, workers=0,  # type: ignore[arg-type]
                       max_queued_per_user=3)
    try:
        for n in range(3):
            runner.submit(_case("burst", n))
        with pytest.raises(TooManyQueued) as refused:
            runner.submit(_case("burst", 3))
        assert "3" in str(refused.value)
        runner.submit(_case("other", 0))  # another clinician's job is taken as ever
        assert sum(job.status == QUEUED for job in runner.list(user="burst")) == 3
    finally:
        runner.shutdown()


def test_a_free_worker_takes_the_job_of_the_user_with_fewest_jobs_running(store):
    jobs = SqlJobStore(store, poll_seconds=0.05)
    burst = []
    for n in range(3):
        burst.append(jobs.add(_case("burst", n)))
        time.sleep(0.01)  # distinct creation times: the line's order is theirs
    other = jobs.add(_case("other", 0))
    first = jobs.next_job()
    assert first == burst[0] and jobs.claim(first)
    # burst has one running; other none: other's job goes next although burst's second is older.
    assert jobs.next_job() == other
    assert jobs.next_job() == burst[1]  # alone in line, burst's jobs take every worker
    jobs.close()
