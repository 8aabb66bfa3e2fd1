"""The answer cache in Redis, for more than one app process: the `storage.cache.AnswerCache` contract.

Keys are the existing versioned `cache_key` digests under the app's prefix
(`skinai:answer:v1:<sha256>`), values JSON (encrypted with DATA_ENCRYPTION_KEY, as on
disk), expiry by SET with PX (the TTL may be a fraction of a second). Every Redis error
behaves as a miss and is logged by class only.
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from storage.cache import ValueCodec
from storage.redis_client import FAILURES, PREFIX, Breaker, breaker, connect
from utils.crypto import Sealer
from utils.settings import Settings

log = logging.getLogger(__name__)


class RedisAnswerCache:
    """The `AnswerCache` shared by every app process through one Redis; never lets Redis stop an assessment."""

    def __init__(self, client: redis.Redis | None, *, ttl_seconds: float, enabled: bool = True,
                 sealer: Sealer, breaker: Breaker | None = None) -> None:
        """`sealer` encrypts the values when it holds a key, as on disk."""
        self.ttl_seconds = ttl_seconds
        self._redis = client if enabled else None
        self._breaker = breaker or Breaker()
        self.codec = ValueCodec(sealer)

    @classmethod
    def from_settings(cls, settings: Settings, *, sealer: Sealer) -> RedisAnswerCache:
        """The cache for REDIS_URL, CACHE_TTL_SECONDS and CACHE_ENABLED (values sealed by `sealer`)."""
        return cls(connect(settings.redis_url), ttl_seconds=settings.cache_ttl_seconds,
                   enabled=settings.cache_enabled, breaker=breaker(settings.redis_url), sealer=sealer)

    @property
    def available(self) -> bool:
        """False when the cache is switched off (a Redis that is down shows as misses, not here)."""
        return self._redis is not None

    def close(self) -> None:
        """Stop using Redis; every call afterwards misses. The connection pool is the process's, shared: it stays."""
        self._redis = None

    def _usable(self) -> redis.Redis | None:
        return self._redis if self._redis is not None and self._breaker.closed else None

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value, or None on a miss or any Redis error."""
        client = self._usable()
        if client is None:
            return None
        try:
            data = client.get(PREFIX + key)
        except FAILURES as exc:
            self._breaker.trip(exc, "answer cache")
            return None
        # Another key, or written by something else: a miss, and the next set replaces it.
        return None if data is None else self.codec.decode(data)

    def set(self, key: str, value: dict[str, Any]) -> bool:
        """Store `value` for the TTL; False (and a log line without content) when it could not be stored."""
        client = self._usable()
        if client is None:
            return False
        data = self.codec.encode(value)  # with DATA_ENCRYPTION_KEY, Redis holds ciphertext only
        expire_ms = int(self.ttl_seconds * 1000)
        try:
            # TTL 0 means no expiry, as on disk.
            return bool(client.set(PREFIX + key, data, px=expire_ms if expire_ms > 0 else None))
        except FAILURES as exc:
            self._breaker.trip(exc, "answer cache")
            return False

    def delete(self, key: str) -> bool:
        """Remove one entry; False when absent or on error."""
        client = self._usable()
        if client is None:
            return False
        try:
            return bool(client.delete(PREFIX + key))
        except FAILURES as exc:
            self._breaker.trip(exc, "answer cache")
            return False
