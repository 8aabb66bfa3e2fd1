"""A job store watched by a test: an event set each time a runner tries to finish a job (a helper, not a test)."""

from __future__ import annotations

import threading
from typing import Any


def watch_finish(jobs: Any) -> threading.Event:
    """Make `jobs.finish` set the returned event once tried, whether it succeeded or raised (the store was down)."""
    finish, tried = jobs.finish, threading.Event()

    def watched_finish(*args: Any, **kwargs: Any) -> Any:
        try:
            return finish(*args, **kwargs)
        finally:
            tried.set()

    jobs.finish = watched_finish
    return tried
