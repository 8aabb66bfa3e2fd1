"""One background event loop that every provider call runs on.

Pages, the command line and benchmark threads call synchronously; their calls run
as tasks on this loop, so connections are pooled across callers and a call can be
cancelled for real (the HTTP request is closed) when its time is up or the
clinician navigates away.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()
_T = TypeVar("_T")


def _get_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="provider-loop", daemon=True).start()
            _loop = loop
        return _loop


def run(make: Callable[[Callable[[Any], None]], Coroutine[Any, Any, Any]],
        on_progress: Callable[[Any], None] | None = None) -> Any:
    """Run `make(emit)` on the loop and wait for its result in the calling thread.

    Values passed to `emit` are delivered to `on_progress` in the calling thread
    (Streamlit can only draw from there); bursts are coalesced to the latest value.
    If the caller is interrupted (an exception from `on_progress`, a Streamlit
    rerun), the task is cancelled before the exception propagates.
    """
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    _done = object()
    future: Future[Any] = asyncio.run_coroutine_threadsafe(make(inbox.put), _get_loop())
    future.add_done_callback(lambda _: inbox.put(_done))
    try:
        while True:
            item = inbox.get()
            while item is not _done:  # drain: only the newest progress is worth drawing
                try:
                    nxt = inbox.get_nowait()
                except queue.Empty:
                    break
                item = nxt
            if item is _done:
                return future.result()
            if on_progress is not None:
                on_progress(item)
    finally:
        future.cancel()


def spawn(make: Callable[[], Coroutine[Any, Any, _T]]) -> Future[_T]:
    """Start `make()` on the loop without waiting for it (warm-ups, probes, keep-warm pings)."""
    return asyncio.run_coroutine_threadsafe(make(), _get_loop())
