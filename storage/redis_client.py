"""One Redis connection pool per URL and timeout, shared by the answer cache, the jobs and the metrics.

With REDIS_URL set, several app processes (behind a proxy with sticky sessions) share
answers, background jobs and performance figures through one Redis. Redis is a helper
here, never a dependency of an assessment: the cache and the metrics use short socket
timeouts and a small breaker, so a dead or unreachable Redis costs an assessment at most
one failed round trip every few seconds, never a stall.

Every key the app writes starts with `PREFIX`; no key carries patient text, a user name
or a photo (digests and random ids only).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

# Namespace of every key; a shared Redis may hold other applications' keys too.
PREFIX = "skinai:"

# Seconds for one round trip of the cache and the metrics: a miss is cheaper than a wait.
FAST_TIMEOUT = 0.5

# What a failed Redis call can raise: its own errors, and OSError from a socket that broke mid-read.
FAILURES = (redis.RedisError, OSError)


@lru_cache(maxsize=16)
def connect(url: str, timeout: float = FAST_TIMEOUT) -> redis.Redis:
    """A client for `url` whose calls give up after `timeout` seconds (pools are per URL and timeout).

    One immediate retry without back-off covers a pooled connection that went stale when Redis
    restarted; redis-py's default (ten retries with exponential back-off) would turn a dead Redis
    into a stall of many seconds. Values stay bytes (photos are stored as bytes).
    """
    # Retry on a broken connection only: retrying a timeout would double the wait on a Redis that hangs.
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=min(timeout, 1.0),
                                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                                retry_on_timeout=False, health_check_interval=0, client_name="skinai")


@lru_cache(maxsize=16)
def breaker(url: str) -> Breaker:
    """The process's breaker for `url`: the cache and the metrics stop calling a dead Redis together."""
    return Breaker()


class Breaker:
    """After a failure, skip Redis for `cooldown` seconds: one failed call per cool-down, not one per request.

    Logs the error's class only (never a key or a value), once per trip.
    """

    def __init__(self, cooldown: float = 2.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown = cooldown
        self._clock = clock  # injectable for tests
        self._until = 0.0
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """True when calls may go to Redis (no failure within the cool-down)."""
        return self._clock() >= self._until

    def trip(self, exc: BaseException, what: str) -> None:
        """Record a failure of `what` (e.g. "answer cache"): calls are skipped for the cool-down.

        The first failure of a streak is logged, by the error's class only.
        """
        with self._lock:
            now = self._clock()
            first = now >= self._until
            self._until = now + self.cooldown
        if first:
            log.warning("%s: Redis unavailable, carrying on without it for %g s: %s", what, self.cooldown,
                        type(exc).__name__)


def key(*parts: str) -> str:
    """A namespaced key from already safe parts (digests, ids, fixed words)."""
    return PREFIX + ":".join(parts)
