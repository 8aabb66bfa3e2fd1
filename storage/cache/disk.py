"""The `AnswerCache` of one process: a diskcache under DATA_DIR, readable by the app's user only."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import diskcache

from storage.cache import ValueCodec
from storage.data_dir import private_dir
from utils.crypto import Sealer

log = logging.getLogger(__name__)

# Answers are a few KB: keep every value inside cache.db (created 0600 below) instead of letting
# diskcache write a file per large value with its own 0644 default.
_MIN_FILE_SIZE = 2**26

_FAILURES = (OSError, sqlite3.Error, diskcache.Timeout)

# How long a read or write waits for SQLite's lock while another writer (a thread, the CLI, a second
# process) holds it. Then it gives up: a read is a miss, a write is skipped, as diskcache's own
# FanoutCache does (10 ms, no retry). With `retry=True` diskcache would instead loop on BEGIN
# IMMEDIATE for as long as the lock is held, after the race and outside the assessment's budget.
_LOCK_WAIT_SECONDS = 0.05
_DELETE_PATIENCE_SECONDS = 2.0
# Opening writes diskcache's settings, and diskcache waits up to 60 s for a lock another program holds;
# a process starting (a page, the command line) waits this long at most (under a second, with the opening
# itself), then runs without the cache.
_OPEN_WAIT_SECONDS = 0.8


class _Cache(diskcache.Cache):
    """A diskcache.Cache whose opening gives up (`diskcache.Timeout`) once the database stayed locked `open_wait` s.

    diskcache retries its opening statements for a fixed 60 s, through `_sql`; while the cache opens,
    `_sql` retries a locked statement itself until the deadline, then raises what diskcache does not retry.
    """

    def __init__(self, directory: str, *, open_wait: float, **settings: Any) -> None:
        self._open_until: float | None = time.monotonic() + open_wait
        try:
            super().__init__(directory, **settings)
        except BaseException:
            self.close()  # the half-opened connection, not left to the garbage collector
            raise
        self._open_until = None

    @property
    def _sql(self) -> Any:
        execute = self._con.execute
        until = self._open_until
        if until is None:
            return execute

        def bounded(statement: str, *args: Any, **kwargs: Any) -> Any:
            while True:
                try:
                    return execute(statement, *args, **kwargs)
                except sqlite3.OperationalError as exc:
                    if str(exc) != "database is locked":
                        raise
                    if time.monotonic() >= until:
                        raise diskcache.Timeout("the cache's database stayed locked") from None
                    time.sleep(0.01)

        return bounded


class DiskAnswerCache:
    """The `AnswerCache` of one process: a diskcache.Cache under `directory`, never failing an assessment."""

    def __init__(self, directory: Path, *, ttl_seconds: float, sealer: Sealer, enabled: bool = True) -> None:
        """Open (or create) the cache under `directory`; `sealer` encrypts the values when it holds a key."""
        self.ttl_seconds = ttl_seconds
        self.codec = ValueCodec(sealer)
        self._cache: diskcache.Cache | None = None
        if not enabled:
            return
        try:
            # The cache is usually the first thing created under DATA_DIR: both folders private (0700),
            # an existing one that others may write to tightened, or the cache goes unused.
            private_dir(directory.parent)
            private_dir(directory)
            # SQLite creates the database with the umask's 0644 and copies that mode to its -wal and
            # -shm files; an empty file made first with 0600 is used as the new database instead.
            os.close(os.open(directory / "cache.db", os.O_CREAT | os.O_WRONLY, 0o600))
            # secure_delete: a deleted or expired answer is overwritten, not left in free pages.
            self._cache = _Cache(str(directory), open_wait=_OPEN_WAIT_SECONDS, timeout=_LOCK_WAIT_SECONDS,
                                 size_limit=2**30, disk_min_file_size=_MIN_FILE_SIZE, sqlite_secure_delete=1)
            for name in ("cache.db", "cache.db-wal", "cache.db-shm"):  # a cache made before this was private
                if (directory / name).exists():
                    os.chmod(directory / name, 0o600)
        except diskcache.Timeout:
            log.warning("answer cache unavailable, assessing without it: another program held its database's "
                        "lock for over %g s", _OPEN_WAIT_SECONDS)
        except _FAILURES as exc:
            log.warning("answer cache unavailable, assessing without it: %s", type(exc).__name__)

    @property
    def available(self) -> bool:
        """False when the cache is switched off or could not be opened."""
        return self._cache is not None

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value, or None on a miss or any cache error."""
        cache = self._cache  # a local: `close` may run meanwhile on another thread
        if cache is None:
            return None
        try:
            value = cache.get(key, default=None, retry=False)
        except _FAILURES as exc:
            log.warning("answer cache read failed, treated as a miss: %s", type(exc).__name__)
            return None
        if isinstance(value, dict):  # written as a pickled dict before the codec: still a plain answer
            return value
        return self.codec.decode(value) if isinstance(value, bytes) else None

    def set(self, key: str, value: dict[str, Any]) -> bool:
        """Store `value` for the TTL; False (and a log line without content) when it could not be stored."""
        cache = self._cache
        if cache is None:
            return False
        try:
            return bool(cache.set(key, self.codec.encode(value), expire=self.ttl_seconds or None, retry=False))
        except _FAILURES as exc:
            log.warning("answer cache write failed, answer not cached: %s", type(exc).__name__)
            return False

    def delete(self, key: str) -> bool:
        """Remove one entry; False when absent, on error, or when the lock stayed taken for a few seconds."""
        cache = self._cache
        if cache is None:
            return False
        # Deleting is a clinician's request (a history entry removed), not part of an assessment: worth
        # a few short tries, but never an unbounded wait.
        give_up = time.monotonic() + _DELETE_PATIENCE_SECONDS
        while True:
            try:
                deleted = bool(cache.delete(key, retry=False))
                break
            except diskcache.Timeout:
                if time.monotonic() >= give_up:
                    log.warning("answer cache busy, entry not deleted: it expires with CACHE_TTL_SECONDS")
                    return False
            except _FAILURES:
                return False
        if deleted:
            self._checkpoint(cache.directory)
        return deleted

    def close(self) -> None:
        """Close this thread's connection to the cache; every call afterwards misses."""
        cache, self._cache = self._cache, None
        if cache is not None:
            with contextlib.suppress(*_FAILURES):
                cache.close()

    @staticmethod
    def _checkpoint(directory: str) -> None:
        # A deleted answer still sits in the write-ahead log until SQLite checkpoints it: copy the
        # log into the database (where secure_delete zeroed the row) and truncate it.
        try:
            with sqlite3.connect(os.path.join(directory, "cache.db"), timeout=1.0) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:  # busy readers: SQLite checkpoints on its own later
            pass
