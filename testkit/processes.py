"""Ending a server process a test or benchmark started: politely first, for certain after a grace period."""

from __future__ import annotations

import subprocess
from typing import Protocol


class Stoppable(Protocol):
    """What `stop` asks of a process: `subprocess.Popen`, or a server forked by testkit/fork_server.py."""

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...


def stop(proc: Stoppable, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL when `proc` has not exited after `grace` seconds; returns once it has exited."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)
