"""How each provider has been doing lately: first-token times, failures, cold starts.

The engine asks three things of it: how long to wait for a first token before
hedging, whether to skip a provider for now, and when to probe a skipped one.

Skipping is a circuit breaker. Repeated failures, or one cold start, open it: the
provider is skipped (straight to the next) for a cool-down that doubles each time it
opens again. When the cool-down is over one light probe is sent (half-open); a quick
answer closes the breaker, a slow one or a failure opens it for longer. So a RunPod
endpoint that scales to zero costs one probe per cool-down, not one per clinician.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from utils.stats import percentile_of_sorted

_MAX_COOLDOWN_FACTOR = 8

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class ProviderHealth:
    """The recent record of one provider; thread-safe, clock injectable for tests."""

    def __init__(self, name: str, *, failures_to_open: int = 3, cooldown: float = 60.0,
                 cold_start: float = 10.0, serverless: bool = False,
                 hedge_bounds: tuple[float, float] = (0.75, 4.0), idle_timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.failures_to_open = failures_to_open
        self.cooldown = cooldown
        self.cold_start = cold_start
        self.serverless = serverless
        self.hedge_bounds = hedge_bounds
        self._clock = clock
        self._lock = threading.Lock()
        # Per input kind: a photo's first token comes later (upload, image encoder) than a text's.
        self._first_tokens: dict[str, deque[float]] = {}
        self._answers: dict[str, deque[float]] = {}  # seconds to a complete answer, per input kind
        self._failures = 0
        self._opened = 0  # how many times in a row the breaker opened: the cool-down doubles each time
        self._open_until = 0.0
        self.state = CLOSED
        # Serverless only: how long a worker outlives its last request (RunPod's idle timeout),
        # raised whenever the provider answers quickly after a longer quiet spell (always-on workers).
        self.idle_timeout = idle_timeout
        self._last_active: float | None = None

    # -- what happened ----------------------------------------------------------------------

    def first_token(self, seconds: float, kind: str = "text") -> None:
        """A call's first token came after `seconds`: a cold start opens the breaker, a quick one closes it."""
        with self._lock:
            self._first_tokens.setdefault(kind, deque(maxlen=50)).append(seconds)
            if seconds >= self.cold_start:
                self._open()
            else:
                self._warm_answer(seconds)
            self._last_active = self._clock()

    def answered(self, seconds: float, kind: str = "text") -> None:
        """A complete answer took `seconds` from the call's start (streamed or not): what a whole answer's hedge
        waits for."""
        with self._lock:
            self._answers.setdefault(kind, deque(maxlen=50)).append(seconds)

    def success(self) -> None:
        """A complete answer arrived (whether the provider was cold is told by `first_token`)."""
        with self._lock:
            self._failures = 0
            self._last_active = self._clock()

    def _warm_answer(self, took: float) -> None:
        if self._last_active is not None:  # quick after this long a quiet spell: workers outlive it
            self.idle_timeout = max(self.idle_timeout, self._clock() - took - self._last_active)
        self._close()

    def failure(self) -> None:
        """An attempt failed (timeout, connection, 429, 5xx); enough in a row open the breaker."""
        with self._lock:
            self._failures += 1
            if self._failures >= self.failures_to_open or self.state == HALF_OPEN:
                self._open()

    def stalled(self, seconds: float) -> None:
        """No first token after `seconds`, past the hedge delay (another provider won, or a ping waits).

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

    def pinged(self, seconds: float) -> None:
        """A probe or warm-up ping was answered after `seconds`: quick means a worker is up."""
        with self._lock:
            if seconds < self.cold_start:
                self._warm_answer(seconds)
            elif self.state == HALF_OPEN:
                self._open()
            self._last_active = self._clock()

    def _open(self) -> None:
        if self.state != OPEN:
            self._opened = min(self._opened + 1, _MAX_COOLDOWN_FACTOR)
        self._open_until = self._clock() + self.cooldown * 2 ** (self._opened - 1)
        self._failures = 0
        self.state = OPEN

    def _close(self) -> None:
        self._failures = 0
        self._opened = 0
        self.state = CLOSED

    # -- what to do -------------------------------------------------------------------------

    @property
    def cooling_down(self) -> bool:
        """True while the provider should be skipped (straight to the next one)."""
        return self.state != CLOSED

    @property
    def likely_cold(self) -> bool:
        """A serverless provider quiet for longer than its workers stay up: a call would wait for a boot.

        Before its first answer nothing is known, and the provider is given the benefit of the doubt
        (the page's warm-up ping finds out soon enough).
        """
        if not self.serverless:
            return False
        with self._lock:
            return self._last_active is not None and self._clock() - self._last_active > self.idle_timeout

    def cooldown_left(self) -> float:
        """Seconds until an open breaker's cool-down is over (0 when closed, half-open, or its probe is due)."""
        with self._lock:
            return max(0.0, self._open_until - self._clock()) if self.state == OPEN else 0.0

    def probe_due(self) -> bool:
        """True once when the cool-down is over: the caller sends one probe (the breaker is half-open)."""
        with self._lock:
            if self.state == OPEN and self._clock() >= self._open_until:
                self.state = HALF_OPEN
                return True
            return False

    def hedge_after(self, kind: str = "text") -> float:
        """Seconds to wait for a first token before a second provider starts in parallel.

        A little past the 90th percentile of recent warm first tokens for this kind of input:
        late enough that few calls are doubled, early enough that a stuck one costs little.
        """
        with self._lock:
            recent = [t for t in self._first_tokens.get(kind, ()) if t < self.cold_start]
        floor, ceiling = self.hedge_bounds
        if len(recent) < 5:  # too little to go on: twice the floor, 1.5 s by default
            return min(2 * floor, ceiling)
        p90 = percentile_of_sorted(sorted(recent), 90)
        return min(max(p90 * 1.25, floor), ceiling)

    def answer_hedge_after(self, kind: str, budget: float) -> float:
        """Seconds to wait for a whole (unstreamed) answer before a second provider starts in parallel.

        A little past the 90th percentile of this provider's recent answers for this kind of input; until
        five are known, half of `budget`, which leaves the other half to the next provider.
        """
        with self._lock:
            recent = list(self._answers.get(kind, ()))
        if len(recent) < 5:
            return budget / 2
        return max(percentile_of_sorted(sorted(recent), 90) * 1.25, self.hedge_bounds[0])
