"""The static checks (ruff, mypy) as CI runs them: `python -m TOOL ARGS` from the project root, started in the
background as soon as the run knows it has their tests (tests/conftest.py's `pytest_collection_finish`), so
mypy's half minute overlaps the rest of the suite instead of adding to it. A helper module, not a test module.

    done = static_runs.result("mypy")   # starts it now if nothing did, then waits for it
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 600

_started: dict[tuple[str, ...], tuple[subprocess.Popen[bytes], IO[bytes], IO[bytes]]] = {}


def start(*args: str) -> None:
    """Start `python -m ARGS` in the project root unless it is already running (its output goes to temp files)."""
    if args in _started:
        return
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115 (read and closed by result())
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=out, stderr=err,
                            stdin=subprocess.DEVNULL)
    _started[args] = (proc, out, err)


def result(*args: str) -> subprocess.CompletedProcess[str]:
    """The finished run of `python -m ARGS` (started now if it was not), with its exit code and output."""
    start(*args)
    proc, out, err = _started.pop(args)
    try:
        proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    texts = []
    for stream in (out, err):
        stream.seek(0)
        texts.append(stream.read().decode("utf-8", "replace"))
        stream.close()
    return subprocess.CompletedProcess(proc.args, proc.returncode, texts[0], texts[1])


def stop_all() -> None:
    """End every run nobody collected (a run stopped early, or `-k` deselected their tests after all)."""
    for proc, out, err in _started.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()
        err.close()
    _started.clear()
