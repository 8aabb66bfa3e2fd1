"""One background event loop that every provider call runs on.

Pages, the command line and benchmark threads call synchronously; their calls run
as tasks on this loop, so connections are pooled across callers and a call can be
cancelled for real (the HTTP request is closed) when its time is up or the
clinician navigates away. The HTTP API awaits the same calls from the server's own
event loop (`adrive`), so an assessment in flight holds no thread.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()
T = TypeVar("T")


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


def spawn(make: Callable[[], Coroutine[Any, Any, T]]) -> Future[T]:
    """Start `make()` on the loop without waiting for it (warm-ups, probes, keep-warm pings)."""
    return asyncio.run_coroutine_threadsafe(make(), _get_loop())


# -- plans: the sync steps of an assessment in the caller's thread (or a pool), its provider calls on the loop --------

# A step gets what to call with progress, or None when no one is watching (the HTTP API answers once, whole).
Step = Callable[[Callable[[Any], None] | None], Coroutine[Any, Any, Any]]
# A generator that does the blocking work itself (cache, history) and yields each coroutine it needs run on the
# loop; what the coroutine returns (or raises) is sent (thrown) back in. The pages and the command line `drive` it
# in their own thread; the HTTP API `adrive`s it without holding a thread while the providers answer.
Plan = Generator[Step, Any, T]


def drive(plan: Plan[T], on_progress: Callable[[Any], None] | None = None) -> T:
    """Run `plan` in the calling thread; each step runs on the loop through `run` (with `on_progress`)."""
    resume: Callable[[Any], Step] = plan.send
    value: Any = None
    while True:
        try:
            step = resume(value)
        except StopIteration as done:
            finished: T = done.value  # what the plan returned
            return finished
        try:
            value, resume = run(step, on_progress), plan.send
        except BaseException as exc:  # the plan decides (a provider error is recorded), then re-raises
            value, resume = exc, plan.throw


def _resume(resume: Callable[[Any], Step], value: Any) -> tuple[bool, Any]:
    # StopIteration must not cross a Future (asyncio refuses it): say "done" in the result instead.
    try:
        return False, resume(value)
    except StopIteration as done:
        return True, done.value


async def adrive(plan: Plan[T], pool: Executor) -> T:
    """Run `plan` from another event loop: its blocking parts in `pool`, its steps on the provider loop.

    No thread waits while a provider answers, so one server holds as many assessments in flight as
    its slots allow instead of as many as its worker threads. Cancelling the caller cancels the step
    on the provider loop (its HTTP request is closed). No one watches the answer grow, so its steps
    are told so (`None` for progress): a provider then sends the answer whole, at a sixth of a
    stream's CPU (bench/RESULTS.md, "hundreds of clients").
    """
    loop = asyncio.get_running_loop()
    resume: Callable[[Any], Step] = plan.send
    value: Any = None
    while True:
        done, got = await loop.run_in_executor(pool, _resume, resume, value)
        if done:
            finished: T = got  # what the plan returned
            return finished
        future = asyncio.run_coroutine_threadsafe(got(None), _get_loop())
        try:
            value, resume = await asyncio.wrap_future(future), plan.send
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            value, resume = exc, plan.throw

