"""The audit writer: records an event without ever blocking or failing what the user is doing.

`AuditTrail.record(...)` makes the event at once (its time is the moment of the action) and hands it to one
background thread per process, which appends it to the chain (storage/audit.py). The caller never waits for the
database: a database that is down or slow delays only the trail, and an event that cannot be written (the
database refused it or did not answer in `ATTEMPTS` tries, or more than `QUEUE_LIMIT` events are waiting) is
logged by its action and the error's class, never its content, and counted (`counts()`, served as
`skinai_audit_events_failed_total` on /metrics).

The same thread runs the trail's retention (AUDIT_RETENTION_DAYS) once a day per process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from domain.audit import Action, Actor, AuditEvent, Outcome, event
from storage.audit import AuditLog
from storage.database import StoreUnavailable

log = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000  # events waiting for the database; beyond it each new one is counted as failed
PURGE_EVERY_SECONDS = 86_400.0
ATTEMPTS = 3  # tries per event before it is counted as failed
RETRY_SECONDS = 0.2


class AuditTrail:
    """The process's audit writer over `trail`; `retention_days` None keeps every event."""

    def __init__(self, trail: AuditLog, *, retention_days: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.log = trail
        self.retention_days = retention_days
        self.clock = clock
        self._queue: deque[AuditEvent] = deque()
        self._changed = threading.Condition()
        self._busy = False  # the thread holds an event it has not finished writing
        self._thread: threading.Thread | None = None
        self._closed = False
        self._last_purge = 0.0
        self.written = 0
        self.failed = 0

    def record(self, action: Action, actor: Actor, *, outcome: Outcome = Outcome.SUCCESS,
               cases: Iterable[str] = (), **detail: Any) -> None:
        """Record one event (see domain/audit.py for what it may carry); returns at once and never raises."""
        try:
            item = event(action, actor, at=self.clock(), outcome=outcome, cases=cases, **detail)
        except Exception as exc:  # a caller's mistake (an unknown action) must not fail what the user did
            self._missed(str(action), exc)
            return
        with self._changed:
            if self._closed or len(self._queue) >= QUEUE_LIMIT:
                self.failed += 1
                log.error("audit event %s not recorded: %s", item.action.value,
                          "the trail is closed" if self._closed else "too many events waiting for the database")
                return
            self._queue.append(item)
            self._start()
            self._changed.notify_all()

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
            self._thread.start()

    def _missed(self, action: str, exc: BaseException) -> None:
        with self._changed:
            self.failed += 1
        log.error("audit event %s not recorded (%s)", action, type(exc).__name__)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._closed:
                    self._changed.wait()
                if not self._queue:
                    return  # closed and drained
                item = self._queue.popleft()
                self._busy = True
            try:
                self._append(item)
            except Exception as exc:  # StoreUnavailable, a refused row: counted, logged, the app goes on
                self._missed(item.action.value, exc)
            else:
                with self._changed:
                    self.written += 1
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
            self._maybe_purge()

    def _append(self, item: AuditEvent) -> None:
        # A lock wait that ran out (many writers on one SQLite file) is worth another try or two; a database that
        # is down fails each try quickly (connection refused) or after its timeout, and the event is counted then.
        for attempt in range(ATTEMPTS):
            try:
                self.log.append(item)
                return
            except StoreUnavailable:
                if attempt == ATTEMPTS - 1 or self._closed:
                    raise
                time.sleep(RETRY_SECONDS * (attempt + 1))

    def _maybe_purge(self) -> None:
        now = self.clock()
        if self.retention_days is None or now - self._last_purge < PURGE_EVERY_SECONDS:
            return
        self._last_purge = now
        try:
            self.log.purge(self.retention_days)
        except Exception as exc:  # tried again a day later; the events stay meanwhile
            log.error("audit trail retention not run (%s)", type(exc).__name__)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every event recorded so far is written (or failed); False if `timeout` s passed first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is waiting (at most `timeout` s), then stop the thread; later events count as failed."""
        self.flush(timeout)
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def counts(self) -> dict[str, int]:
        """Events written and failed since the process started, and waiting now (for /metrics)."""
        with self._changed:
            return {"written": self.written, "failed": self.failed, "pending": len(self._queue) + self._busy}


__all__ = ["AuditTrail", "QUEUE_LIMIT"]
