"""Fair shares of the API's assessment slots (issue 19, item 6): `ConcurrencyGate` driven by anyio tasks.

Deterministic: each step waits until every task is blocked, so the order slots are handed out in
is the gate's, never the scheduler's. The API-level test is in tests/test_api.py.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

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
