"""`cli.main(argv)` in the test's own process, as a fresh `python cli.py ARGS` would run it, without paying ~2 s of
imports per run.

    done = run_cli("users", "add", "kim", "--password-stdin", stdin=PASSWORD + "\\n")
    assert done.returncode == 0 and done.stdout == "added kim\\n"

Each run starts and ends with `startup.reset_engine()`, so it reads the settings of the moment (as a new process
would) and the test's next `startup.get_engine()` reads them again. `env` adds variables for that run only (a
value of None removes one), `cwd` is its working directory (a relative DATA_DIR is under it), and stdin is a pipe
holding `stdin` (never a terminal). Each command group keeps one real-process smoke test of its own.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import cli
import startup


@dataclass(frozen=True)
class CliRun:
    """What the run left: its exit code and everything it wrote (the fields of `subprocess.CompletedProcess`)."""

    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _environment(env: Mapping[str, str | None]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    try:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_cli(*args: str, stdin: str | bytes = b"", env: Mapping[str, str | None] | None = None,
            cwd: Path | str | None = None) -> CliRun:
    """Run `cli.main(args)` in this process with stdin a pipe of `stdin`; returns the exit code and the output."""
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    piped = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="strict")
    out, err = io.StringIO(), io.StringIO()
    with _environment(env or {}), contextlib.chdir(cwd or os.getcwd()), mock.patch("sys.stdin", piped), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        startup.reset_engine()
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            startup.reset_engine()
    return CliRun(code, out.getvalue(), err.getvalue())
