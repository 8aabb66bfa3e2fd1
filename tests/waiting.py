"""Polling with a deadline, for tests that wait on another thread, process or server (a helper, not a test)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], seconds: float = 30.0, every: float = 0.02) -> T:
    """`check()`'s first truthy value, asked every `every` s; fails the test when none came within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(every)
    raise AssertionError(f"not reached within {seconds} s")
