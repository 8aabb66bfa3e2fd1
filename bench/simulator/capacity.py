"""Capacity: who may be served now. A rate-limit bucket, and RunPod's serverless worker pool.

Both run on the simulator's event loop and keep simulated time through a `SimClock`;
nothing here knows about HTTP or the simulator itself.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bench.simulator.clock import SimClock
from bench.simulator.profiles import Profile, ServerlessProfile
from bench.simulator.records import RequestRecord, WorkerRecord


class TokenBucket:
    """Requests-per-minute limit: refills continuously, holds `capacity` at most."""

    def __init__(self, per_second: float, capacity: int) -> None:
        self.per_second, self.capacity = per_second, capacity
        self.tokens, self.at = float(capacity), 0.0

    def take(self, now: float) -> float:
        """Take one request's token at simulated time `now`; 0 if granted, else seconds until one is there."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second


class QueueTimeout(Exception):
    """A request waited longer than the profile's queue_timeout for a worker slot."""


@dataclass(eq=False)
class Worker:
    """One serverless worker as the pool sees it: its slots in use and its pending boot or idle timer."""

    id: int
    record: WorkerRecord
    always_on: bool = False
    ready_at: float = math.inf       # wall (loop) time it became ready
    active: int = 0
    timer: asyncio.TimerHandle | None = None   # the pending boot or idle shutdown

    @property
    def ready(self) -> bool:
        """Whether the worker has finished booting."""
        return self.ready_at != math.inf


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future
    queued_at: float                 # wall (loop) time


class WorkerPool:
    """RunPod serverless scaling: boots on demand, a FIFO queue, idle shutdown, scale to zero.

    Runs entirely on the simulator's event loop; timers are `call_later` handles, so a
    thousand queued requests cost a deque entry each, not a thread or a polling task.
    """

    def __init__(self, name: str, profile: ServerlessProfile, *, clock: SimClock, seed: int,
                 on_new_worker: Callable[[WorkerRecord], None]) -> None:
        """Must be made on the running event loop: always-on workers start warm, now.

        `on_new_worker` is told of every worker as it is asked for, so the simulator's metrics list it.
        """
        self.name, self.p = name, profile
        self.clock, self.seed, self.on_new_worker = clock, seed, on_new_worker
        self.loop = asyncio.get_running_loop()
        self.workers: list[Worker] = []
        self.queue: deque[_Waiter] = deque()
        self._ids = itertools.count(1)
        self._boots = itertools.count()
        for _ in range(profile.active_workers):
            worker = self._new_worker(always_on=True, boot=0.0)
            worker.ready_at = self.loop.time()
            worker.record.ready = worker.record.started

    # -- used by requests -----------------------------------------------------------------

    async def acquire(self, record: RequestRecord) -> Worker:
        """Wait for a slot (FIFO), waking or adding workers as RunPod would; fills in the record."""
        queued_at = self.loop.time()
        worker = self._free_worker() if not self.queue else None
        if worker is not None:
            self._assign(worker)
        else:
            future = self.loop.create_future()
            self.queue.append(_Waiter(future, queued_at))
            self._autoscale()
            if self.p.scale_delay > 0:
                self.loop.call_later(self.clock.wall(self.p.scale_delay), self._autoscale)
            expiry = None
            if self.p.queue_timeout is not None:
                expiry = self.loop.call_later(self.clock.wall(self.p.queue_timeout), _expire, future)
            try:
                worker = await future
            except asyncio.CancelledError:
                # Cancelled just after being handed a slot: give it back, or it leaks.
                if future.done() and not future.cancelled() and future.exception() is None:
                    self.release(future.result())
                raise
            finally:
                if expiry is not None:
                    expiry.cancel()
                record.queue_wait = (self.loop.time() - queued_at) / self.clock.scale
        record.cold_start = worker.ready_at > queued_at
        record.worker = worker.id
        return worker

    def release(self, worker: Worker) -> None:
        """A request is done with its slot: hand it on, or start the idle countdown."""
        worker.active -= 1
        self._dispatch()
        if worker.active == 0 and not worker.always_on:
            self._arm_idle(worker)

    def close(self) -> None:
        """Cancel every pending boot and idle timer (the simulator is stopping)."""
        for worker in self.workers:
            if worker.timer is not None:
                worker.timer.cancel()

    def load(self, worker: Worker) -> float:
        """Generation speed factor on `worker` now: batching slows every stream a little."""
        return 1 + self.p.batch_slowdown * max(0, worker.active - 1)

    # -- scaling --------------------------------------------------------------------------

    def _free_worker(self) -> Worker | None:
        free = [w for w in self.workers if w.ready and w.active < self.p.concurrency]
        return min(free, key=lambda w: (w.active, w.id)) if free else None

    def _assign(self, worker: Worker) -> None:
        worker.active += 1
        worker.record.jobs += 1
        if worker.timer is not None and worker.ready:
            worker.timer.cancel()   # the idle countdown
            worker.timer = None

    def _dispatch(self) -> None:
        while self.queue:
            worker = self._free_worker()
            if worker is None:
                return
            waiter = self.queue.popleft()
            if waiter.future.done():   # gave up (cancelled or timed out) while queued
                continue
            self._assign(worker)
            waiter.future.set_result(worker)

    def _autoscale(self) -> None:
        """Boot workers for the backlog: at once from zero, else once the oldest has waited scale_delay."""
        waiting = [w for w in self.queue if not w.future.done()]
        room = self.p.max_workers - len(self.workers)
        if not waiting or room <= 0:
            return
        delay = self.clock.wall(self.p.scale_delay)
        if self.workers and self.loop.time() - waiting[0].queued_at < delay * 0.999:
            return
        free = sum(self.p.concurrency - w.active for w in self.workers)  # booting workers count in full
        backlog = len(waiting) - free
        for _ in range(min(room, math.ceil(backlog / self.p.concurrency)) if backlog > 0 else 0):
            rng = random.Random(f"{self.seed}/{self.name}/boot/{next(self._boots)}")
            worker = self._new_worker(always_on=False, boot=self.p.boot_seconds(rng))
            worker.timer = self.loop.call_later(self.clock.wall(worker.record.boot_seconds), self._on_ready, worker)

    def _new_worker(self, *, always_on: bool, boot: float) -> Worker:
        record = WorkerRecord(self.name, next(self._ids), always_on, self.clock.now(), boot)
        worker = Worker(record.worker, record, always_on)
        self.workers.append(worker)
        self.on_new_worker(record)
        return worker

    def _on_ready(self, worker: Worker) -> None:
        worker.timer = None
        worker.ready_at = self.loop.time()
        worker.record.ready = self.clock.now()
        self._dispatch()
        if worker.active == 0:   # everyone it was booted for gave up meanwhile
            self._arm_idle(worker)

    def _arm_idle(self, worker: Worker) -> None:
        if worker.timer is not None:
            worker.timer.cancel()
        worker.timer = self.loop.call_later(self.clock.wall(self.p.idle_timeout), self._retire, worker)

    def _retire(self, worker: Worker) -> None:
        worker.timer = None
        if worker.active == 0 and worker in self.workers:
            self.workers.remove(worker)
            worker.record.stopped = self.clock.now()


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(QueueTimeout())


class ProviderState:
    """One simulated provider's admission state: its profile, request counter, rate limit and worker pool.

    The pool is made when the server starts, on its event loop (None for hosted profiles).
    """

    def __init__(self, name: str, profile: Profile) -> None:
        self.name, self.profile = name, profile
        self.count = itertools.count()
        self.pool: WorkerPool | None = None
        self.bucket = (TokenBucket(profile.rate_limit_rpm / 60, profile.burst())
                       if profile.rate_limit_rpm else None)
