"""How much one API client may ask: requests a minute per token, and assessments at once per process.

Both live in this process's memory. With several app processes behind a load balancer each
keeps its own count, so a token may make API_RATE_PER_MINUTE requests a minute to each; that
is the price of not writing to the store on every request, and the bound still holds per process.
"""

from __future__ import annotations

import math
import threading
import time
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


class ConcurrencyGate:
    """At most `limit()` assessments at once; a request waits up to QUEUE_SECONDS for a slot, then gets 503."""

    def __init__(self, limit: Callable[[], int], *, queue_seconds: float = QUEUE_SECONDS) -> None:
        """`limit` is API_MAX_CONCURRENT, read when the first request comes (the slots are made then)."""
        self.limit = limit
        self.queue_seconds = queue_seconds
        self._slots: anyio.Semaphore | None = None
        self._size = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block; `ApiError` 503 with Retry-After when none came free in time."""
        if self._slots is None:  # made in the server's event loop, on first use
            self._size = self.limit()
            self._slots = anyio.Semaphore(self._size)
        slots = self._slots
        got = False
        with anyio.move_on_after(self.queue_seconds):
            await slots.acquire()
            got = True
        if not got:
            wait = max(1, math.ceil(self.queue_seconds))
            raise ApiError(503, "busy", f"The server is busy with {self._size} assessments from the API: "
                           f"try again in {wait} s (API_MAX_CONCURRENT).", headers={"Retry-After": str(wait)})
        try:
            yield
        finally:
            slots.release()


__all__ = ["ConcurrencyGate", "QUEUE_SECONDS", "RateLimiter"]
