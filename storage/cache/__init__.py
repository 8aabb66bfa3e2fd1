"""The answer cache: its contract (`AnswerCache`), its versioned keys and its value codec; one module per backend.

Two caches keep answers under `cache_key` digests: `storage.cache.disk.DiskAnswerCache` (one process's
diskcache under DATA_DIR) and `storage.cache.redis.RedisAnswerCache` (REDIS_URL, shared by every app
process). Any failure of either behaves as a miss. Both store a value through `ValueCodec`: JSON, sealed
with DATA_ENCRYPTION_KEY when a key is set (see utils/crypto.py), so either reads what the other would.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Protocol

from utils.crypto import SealedWithAnotherKey, Sealer

log = logging.getLogger(__name__)

# Bump when the shape of the key record or of the stored value changes.
CACHE_KEY_VERSION = 1


def cache_key(record: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of `record`; the key reveals nothing of its content."""
    canonical = json.dumps({"v": CACHE_KEY_VERSION, **record}, sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"))
    return f"answer:v{CACHE_KEY_VERSION}:{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


class AnswerCache(Protocol):
    """What the engine needs of an answer cache; a failure is never raised: reads miss, writes say False."""

    @property
    def available(self) -> bool:
        """False when the cache is switched off (or, on disk, could not be opened)."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value, or None on a miss or any error."""

    def set(self, key: str, value: dict[str, Any]) -> bool:
        """Store `value` for the cache's TTL (0: no expiry); False when it could not be stored."""

    def delete(self, key: str) -> bool:
        """Remove one entry; False when absent or on error."""

    def close(self) -> None:
        """Let go of the cache; every call afterwards misses."""


class ValueCodec:
    """How both caches store an answer: compact JSON, sealed with the data key when there is one."""

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer

    def encode(self, value: dict[str, Any]) -> bytes:
        """The stored bytes of `value`; ciphertext only when the sealer holds a key."""
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return self.sealer.seal_bytes(data) if self.sealer.enabled else data

    def decode(self, stored: bytes | str) -> dict[str, Any] | None:
        """The value of `stored`, or None when it is sealed with another key or is not an answer (a miss)."""
        try:
            value = json.loads(self.sealer.open_bytes(stored) if isinstance(stored, bytes) else stored)
        except (SealedWithAnotherKey, ValueError) as exc:
            log.info("cached answer unreadable (%s), treated as a miss", type(exc).__name__)
            return None
        return value if isinstance(value, dict) else None
