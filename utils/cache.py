"""The answer cache on disk: explicit, versioned keys; any failure behaves as a miss."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from pathlib import Path

import diskcache

log = logging.getLogger(__name__)

# Bump when the shape of the key record or of the stored value changes.
CACHE_KEY_VERSION = 1


def cache_key(record: dict) -> str:
    """SHA-256 over the canonical JSON of `record`; the key reveals nothing of its content."""
    canonical = json.dumps({"v": CACHE_KEY_VERSION, **record}, sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"))
    return "answer:v%d:%s" % (CACHE_KEY_VERSION, hashlib.sha256(canonical.encode("utf-8")).hexdigest())


_FAILURES = (OSError, sqlite3.Error, diskcache.Timeout)


class AnswerCache:
    """A diskcache.Cache under `directory` that never lets its own failure stop an assessment."""

    def __init__(self, directory: Path, *, ttl_seconds: float, enabled: bool = True) -> None:
        self.ttl_seconds = ttl_seconds
        self._cache: diskcache.Cache | None = None
        if not enabled:
            return
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._cache = diskcache.Cache(str(directory), timeout=1.0, size_limit=2**30)
        except _FAILURES as exc:
            log.warning("answer cache unavailable, assessing without it: %s", type(exc).__name__)

    @property
    def available(self) -> bool:
        """False when the cache is switched off or could not be opened."""
        return self._cache is not None

    def get(self, key: str) -> dict | None:
        """The stored value, or None on a miss or any cache error."""
        if self._cache is None:
            return None
        try:
            value = self._cache.get(key, default=None, retry=True)
        except _FAILURES as exc:
            log.warning("answer cache read failed, treated as a miss: %s", type(exc).__name__)
            return None
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: dict) -> bool:
        """Store `value` for the TTL; False (and a log line without content) when it could not be stored."""
        if self._cache is None:
            return False
        try:
            return bool(self._cache.set(key, value, expire=self.ttl_seconds or None, retry=True))
        except _FAILURES as exc:
            log.warning("answer cache write failed, answer not cached: %s", type(exc).__name__)
            return False

    def delete(self, key: str) -> bool:
        """Remove one entry; False when absent or on error."""
        if self._cache is None:
            return False
        try:
            return bool(self._cache.delete(key, retry=True))
        except _FAILURES:
            return False
