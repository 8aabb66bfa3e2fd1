"""How much one API client may ask: requests a minute per token, and assessments at once per process, shared fairly.

Both live in this process's memory. With several app processes behind a load balancer each
keeps its own count, so a token may make API_RATE_PER_MINUTE requests a minute to each; that
is the price of not writing to the store on every request, and the bound still holds per process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio

from web.api.errors import ApiError

QUEUE_SECONDS = 5.0  # how long a request waits for a free assessment slot before it is turned away


class RateLimiter:
    """A token bucket per API token: `per_minute` requests a minute, in bursts of up to `per_minute`."""

    def __init__(self, per_minute: Callable[[], int], *, clock: Callable[[], float] = time.monotonic) -> None:
        """`per_minute` is read at each request (API_RATE_PER_MINUTE; 0: no limit)."""
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # token id: (requests left, when counted)
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Count one request of `key`; `ApiError` 429 with Retry-After when its bucket is empty."""
        rate = self.per_minute()
        if rate <= 0:
            return
        refill = rate / 60.0  # requests a second
        now = self.clock()
        with self._lock:
            left, then = self._buckets.get(key, (float(rate), now))
            left = min(float(rate), left + (now - then) * refill)
            if left < 1.0:
                self._buckets[key] = (left, now)
                wait = math.ceil((1.0 - left) / refill)
                raise ApiError(429, "rate_limited",
                               f"This token made more than {rate} requests in a minute: wait {wait} s, then try "
                               "again (API_RATE_PER_MINUTE).", headers={"Retry-After": str(max(1, wait))})
            self._buckets[key] = (left - 1.0, now)


class _Waiter:
    """One request waiting for a slot: woken by `ConcurrencyGate._hand_out` with the slot already its own."""

    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.granted = False


class ConcurrencyGate:
    """At most `limit()` assessments at once, shared fairly between callers; a request waits up to QUEUE_SECONDS.

    Work-conserving: a slot is never left idle while anyone waits, and a lone caller may hold every
    slot. Fair while others wait: each slot that comes free goes to the waiting caller holding the
    fewest slots (ties in round-robin order, then first come first served within a caller), so one
    token that filled every slot gets the next free one only after everybody else waiting has had
    theirs. A request that got no slot in QUEUE_SECONDS is answered 503 with Retry-After.
    """

    def __init__(self, limit: Callable[[], int], *, queue_seconds: float = QUEUE_SECONDS) -> None:
        """`limit` is API_MAX_CONCURRENT, read when the first request comes (the slots are made then)."""
        self.limit = limit
        self.queue_seconds = queue_seconds
        self._size: int | None = None
        self._held: dict[str, int] = {}  # caller: slots held now
        self._waiting: dict[str, deque[_Waiter]] = {}  # caller: its waiters; the dict's order is the round-robin

    @property
    def size(self) -> int:
        """The number of slots (API_MAX_CONCURRENT), read on first use."""
        if self._size is None:
            self._size = self.limit()
        return self._size

    def in_use(self) -> int:
        """Slots held now."""
        return sum(self._held.values())

    def waiting(self) -> int:
        """Requests waiting for a slot now."""
        return sum(len(line) for line in self._waiting.values())

    def callers(self) -> int:
        """Callers (API users) holding or waiting for a slot now."""
        return len(self._held.keys() | self._waiting.keys())

    def exposition(self) -> bytes:
        """The gate's figures now, in Prometheus's text format (appended to /metrics)."""
        figures = (("skinai_api_slots", "API assessment slots of this process (API_MAX_CONCURRENT), shared fairly "
                    "between users: a freed slot goes to the waiting user holding the fewest", self.size),
                   ("skinai_api_slots_in_use", "API assessment slots held now", self.in_use()),
                   ("skinai_api_waiting", "API requests waiting for a slot now (each waits up to 5 s, then 503)",
                    self.waiting()),
                   ("skinai_api_users", "API users holding or waiting for a slot now", self.callers()))
        lines = []
        for name, help_text, value in figures:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
        return ("\n".join(lines) + "\n").encode("utf-8")

    def _take(self, key: str) -> None:
        self._held[key] = self._held.get(key, 0) + 1

    def _give_back(self, key: str) -> None:
        left = self._held[key] - 1
        if left:
            self._held[key] = left
        else:
            del self._held[key]
        self._hand_out()

    def _hand_out(self) -> None:
        # Runs on every release, in the event loop's one thread: a free slot never waits for its next owner.
        while self._waiting and self.in_use() < self.size:
            key = min(self._waiting, key=lambda k: self._held.get(k, 0))  # the first of the fewest: round-robin
            line = self._waiting.pop(key)
            waiter = line.popleft()
            if line:
                self._waiting[key] = line  # to the back of the round
            waiter.granted = True
            self._take(key)
            waiter.event.set()

    def _leave(self, key: str, waiter: _Waiter) -> None:
        line = self._waiting.get(key)
        if line is not None and waiter in line:
            line.remove(waiter)
            if not line:
                del self._waiting[key]

    @asynccontextmanager
    async def slot(self, key: str = "") -> AsyncIterator[None]:
        """Hold one slot for `key` (the API user) for the block; `ApiError` 503 with Retry-After when none came
        free in time."""
        if not self._waiting and self.in_use() < self.size:
            self._take(key)
        else:
            waiter = _Waiter()
            self._waiting.setdefault(key, deque()).append(waiter)
            try:
                with anyio.move_on_after(self.queue_seconds):
                    await waiter.event.wait()
            except BaseException:  # the client left while waiting: a slot handed over meanwhile goes on
                if waiter.granted:
                    self._give_back(key)
                else:
                    self._leave(key, waiter)
                raise
            if not waiter.granted:  # a slot handed over as the time ran out is still taken
                self._leave(key, waiter)
                wait = max(1, math.ceil(self.queue_seconds))
                raise ApiError(503, "busy", f"The server is busy with {self.size} assessments from the API: "
                               f"try again in {wait} s (API_MAX_CONCURRENT).", headers={"Retry-After": str(wait)})
        try:
            yield
        finally:
            self._give_back(key)


__all__ = ["ConcurrencyGate", "QUEUE_SECONDS", "RateLimiter"]
