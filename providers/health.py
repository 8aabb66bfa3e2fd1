"""How each provider has been doing lately: first-token times, failures, cold starts.

The engine asks three things of it: how long to wait for a first token before
hedging, whether to skip a provider for now (a circuit breaker with a growing
cool-down), and when a light probe should find out whether a skipped provider is back.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque

_MAX_COOLDOWN_FACTOR = 8


class ProviderHealth:
    """The recent record of one provider; thread-safe, clock injectable for tests."""

    def __init__(self, name: str, *, failures_to_open: int = 3, cooldown: float = 60.0,
                 cold_start: float = 10.0, serverless: bool = False, hedge_bounds: tuple[float, float] = (0.75, 4.0),
                 clock=time.monotonic) -> None:
        self.name = name
        self.hedge_bounds = hedge_bounds
        self.serverless = serverless
        self.failures_to_open = failures_to_open
        self.cooldown = cooldown
        self.cold_start = cold_start
        self._clock = clock
        self._lock = threading.Lock()
        self._first_tokens: deque[float] = deque(maxlen=50)
        self._failures = 0
        self._opened = 0  # how many times in a row the breaker opened: the cool-down doubles each time
        self._open_until = 0.0
        self._last_probe = 0.0

    # -- what happened ----------------------------------------------------------------------

    def first_token(self, seconds: float) -> None:
        """A call's first token came after `seconds`; a cold start opens the breaker."""
        with self._lock:
            self._first_tokens.append(seconds)
            if seconds >= self.cold_start:
                self._open()
            else:  # a warm answer: whatever happened before is forgiven
                self._failures = 0
                self._opened = 0

    def success(self) -> None:
        """A complete answer arrived; a cold start before it still keeps the provider skipped."""
        with self._lock:
            self._failures = 0

    def recovered(self) -> None:
        """A probe or warm-up got an answer: a worker is up now, stop skipping the provider."""
        with self._lock:
            self._failures = 0
            self._open_until = 0.0

    def failure(self) -> None:
        """An attempt failed (timeout, connection, 429, 5xx); enough in a row open the breaker."""
        with self._lock:
            self._failures += 1
            if self._failures >= self.failures_to_open:
                self._open()

    def stalled(self, seconds: float) -> None:
        """No first token after `seconds`, past the hedge delay, and another provider won.

        For a serverless provider that is a worker booting or a queue: skip it at once rather
        than make the next clinicians wait out the hedge delay too. Elsewhere it counts as a
        failure, or as a cold start when that long.
        """
        with self._lock:
            if self.serverless or seconds >= self.cold_start:
                self._open()
                return
            self._failures += 1
            if self._failures >= self.failures_to_open:
                self._open()

    def _open(self) -> None:
        self._opened = min(self._opened + 1, _MAX_COOLDOWN_FACTOR)
        self._open_until = self._clock() + self.cooldown * 2 ** (self._opened - 1)
        self._failures = 0

    # -- what to do -------------------------------------------------------------------------

    @property
    def cooling_down(self) -> bool:
        """True while the provider should be skipped (straight to the next one)."""
        with self._lock:
            return self._clock() < self._open_until

    def probe_due(self, every: float) -> bool:
        """True when a cooling-down provider should be probed now (at most once per `every` seconds)."""
        with self._lock:
            now = self._clock()
            if now >= self._open_until or now - self._last_probe < every:
                return False
            self._last_probe = now
            return True

    def hedge_after(self) -> float:
        """Seconds to wait for a first token before a second provider starts in parallel."""
        with self._lock:
            recent = [t for t in self._first_tokens if t < self.cold_start]
        floor, ceiling = self.hedge_bounds
        if len(recent) < 5:  # too little to go on: twice the floor, 1.5 s by default
            return min(2 * floor, ceiling)
        p90 = statistics.quantiles(recent, n=10)[-1]
        return min(max(p90 * 1.5, floor), ceiling)
