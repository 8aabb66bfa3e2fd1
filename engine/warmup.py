"""Waking serverless providers before the clinician presses the button.

A RunPod endpoint with no active worker needs one to two and a half minutes to
boot one. The page wakes it when a clinician opens the page or starts an upload,
so the boot overlaps with the typing. Probes tell a provider that is cooling down
after failures when it is back; the optional keep-warm ping (KEEP_WARM_SECONDS,
off by default because every ping keeps a paid worker running) holds a worker
up while sessions are active.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future

from domain.errors import ProviderError
from engine import runtime
from engine.health import ProviderHealth
from providers.base import Provider
from utils.settings import Settings

log = logging.getLogger(__name__)

# Long enough for the slowest cold boot: a ping is background work and waits for the worker.
PING_TIMEOUT = 300.0


class WarmUp:
    """The engine's warm-up, probe and keep-warm pings; each provider has at most one ping in flight."""

    def __init__(self, providers: Callable[[], Iterable[Provider]], health_of: Callable[[str], ProviderHealth],
                 settings: Settings) -> None:
        """`providers()` lists the providers of the moment (asked at each wake, so a replaced set is seen).

        `health_of(name)` is a provider's health record; `settings` gives WARM_UP, WARM_UP_SECONDS and KEEP_WARM_*.
        """
        self.providers = providers
        self.health_of = health_of
        self.settings = settings
        self._lock = threading.Lock()
        self._last_wake: dict[str, float] = {}
        self._in_flight: dict[str, Future[None]] = {}
        self._active_until = 0.0
        self._keep_warm: Future[None] | None = None
        self.pings = 0  # how many pings were sent: each may have booted a paid worker

    def wake(self, kind: str | None = None) -> list[str]:
        """Wake every configured serverless provider (that takes `kind` of input) not woken lately.

        Returns the names pinged now. Cheap to call on every page run: at most one ping per
        provider every WARM_UP_SECONDS.
        """
        self.touch()
        if not self.settings.warm_up:
            return []
        return [p.name for p in self.providers()
                if p.serverless and p.configured and (kind != "image" or p.accepts_images) and self.wake_one(p)]

    def wake_one(self, provider: Provider) -> bool:
        """Ping `provider` unless it was woken within WARM_UP_SECONDS; True when a ping went out."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_wake.get(provider.name, -1e9) < self.settings.warm_up_seconds:
                return False
            self._last_wake[provider.name] = now
        return self._ping(provider, "warm-up")

    def touch(self) -> None:
        """Note that a session is active (keeps the optional keep-warm ping going)."""
        s = self.settings
        self._active_until = time.monotonic() + s.keep_warm_active_seconds
        if s.keep_warm_seconds > 0 and self._keep_warm is None:
            with self._lock:
                if self._keep_warm is None:
                    self._keep_warm = runtime.spawn(self._keep_warm_loop)

    def probe(self, provider: Provider) -> None:
        """Ping a skipped provider once its cool-down is over, to learn whether it is back."""
        if self.health_of(provider.name).probe_due():
            self._ping(provider, "probe")

    def stop(self) -> None:
        """Cancel the keep-warm loop and every ping in flight."""
        with self._lock:
            futures = [*self._in_flight.values(), *([self._keep_warm] if self._keep_warm else [])]
            self._in_flight.clear()
            self._keep_warm = None
        for future in futures:
            future.cancel()

    def _ping(self, provider: Provider, why: str) -> bool:
        with self._lock:
            if provider.name in self._in_flight:
                return False
            self.pings += 1
            future = runtime.spawn(lambda: self._ping_once(provider, why))
            self._in_flight[provider.name] = future
        future.add_done_callback(lambda _: self._forget(provider.name, future))
        return True

    def _forget(self, name: str, future: Future[None]) -> None:
        with self._lock:
            if self._in_flight.get(name) is future:
                del self._in_flight[name]

    async def _ping_once(self, provider: Provider, why: str) -> None:
        health = self.health_of(provider.name)
        started = time.monotonic()
        call = asyncio.ensure_future(provider.ping())
        try:
            # A ping still unanswered after the hedge delay means a worker is booting: clinicians
            # pressing the button now would only wait for it, so send them elsewhere at once.
            done, _ = await asyncio.wait({call}, timeout=health.hedge_after())
            if not done:
                health.stalled(time.monotonic() - started)
            async with asyncio.timeout(PING_TIMEOUT):
                await call
        except (ProviderError, TimeoutError) as exc:
            health.failure()
            log.info("%s provider=%s failed: %s", why, provider.name, type(exc).__name__)
            return
        finally:
            call.cancel()
        elapsed = time.monotonic() - started
        health.pinged(elapsed)
        log.info("%s provider=%s answered in %.1f s", why, provider.name, elapsed)

    async def _keep_warm_loop(self) -> None:
        every = self.settings.keep_warm_seconds
        while True:
            await asyncio.sleep(every)
            if time.monotonic() < self._active_until:
                for provider in self.providers():
                    if provider.serverless and provider.configured:
                        self._ping(provider, "keep-warm")
