"""Many callers' rows written in one transaction by one thread (group commit).

Under load, each assessment's history row used to take a thread of the engine's small pool for its own
transaction, and the rows queued for SQLite's one write lock (and one fsync each) while the next cases'
cache lookups queued behind them (bench/RESULTS.md, "Where the time over one client goes"). Here a
caller hands its row over and waits on a future, which an event loop can await without holding a thread;
one writer thread takes everything handed over since its last transaction and writes it in one. A lone
row is written at once: batching comes only from rows that arrive while a transaction is running.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

# Rows per transaction: bounds how long one transaction holds the database's write lock.
MAX_BATCH = 256


class GroupCommit(Generic[Item, Result]):
    """Hands items to `write_many`, in batches, on one writer thread; thread-safe.

    `write_many(items)` returns one result per item, in order; when it raises, each item of the batch is
    written alone instead, so one item the database refuses does not fail the others (an item that fails
    alone gets its exception). No thread is kept while nothing is waiting: the writer starts with the first
    item handed over and stops when it finds none left.
    """

    def __init__(self, write_many: Callable[[Sequence[Item]], Sequence[Result]], *, name: str,
                 max_batch: int = MAX_BATCH) -> None:
        """`name` names the writer thread (in a thread dump); `max_batch` items at most per call."""
        self._write_many = write_many
        self._name = name
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[tuple[Item, Future[Result]]] = []
        self._writing = False

    def submit(self, item: Item) -> Future[Result]:
        """Hand `item` over; the future gets its result, or the exception its write raised."""
        future: Future[Result] = Future()
        with self._lock:
            self._waiting.append((item, future))
            if self._writing:  # the running writer takes it with its next batch
                return future
            self._writing = True
        threading.Thread(target=self._drain, name=self._name, daemon=True).start()
        return future

    @property
    def waiting(self) -> int:
        """Items handed over and not yet taken by the writer."""
        with self._lock:
            return len(self._waiting)

    def write(self, item: Item) -> Result:
        """Hand `item` over and wait for its result (a caller with a thread to wait in: a page, the CLI)."""
        return self.submit(item).result()

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._waiting = self._waiting[:self._max_batch], self._waiting[self._max_batch:]
                if not batch:
                    self._writing = False
                    return
            self._write(batch)

    def _write(self, batch: list[tuple[Item, Future[Result]]]) -> None:
        try:
            results = self._write_many([item for item, _ in batch])
        except BaseException as exc:  # every future gets an answer, whatever happened, or its caller waits forever
            if len(batch) == 1 or not isinstance(exc, Exception):
                for _, future in batch:
                    future.set_exception(exc)
                return
            log.info("%s: a batch of %d failed (%s); writing each alone", self._name, len(batch), type(exc).__name__)
            for one in batch:
                self._write([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)


__all__ = ["GroupCommit", "MAX_BATCH"]
