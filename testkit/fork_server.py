"""App servers forked from a warm interpreter: the tests' `streamlit run app.py` without its ~2 CPU-seconds of imports.

A fresh `python -m streamlit run app.py` spends nearly all of its start importing Streamlit, SQLAlchemy, Alembic,
Redis, langchain-openai and the openai SDK; a full test run starts a few dozen servers. This module's process
imports them once, then forks one child per server. The app's own modules are dropped from the warm interpreter
before any fork, so every child imports the app afresh (its settings, its engine and its module state are its own,
as in a new process); only the libraries' imports are shared. Each child then runs Streamlit's own command line
(`streamlit run ...`) with exactly the environment, working directory and log file it was given.

Benchmarks do not use it: a benchmark of a server's start or first page measures a fresh process.

    with ForkServer() as warm:
        server = warm.spawn(argv, cwd, env, log_path)   # a handle that `testkit.processes.stop` ends
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Streamlit's command line and server, the SDK a server loads at its start (providers/base.py `load_sdk`), and the
# app's modules behind app.py and the pages, for the libraries they import (the app's own are then dropped again:
# app.py and main.py themselves are never run here, they act on import).
WARM_IMPORTS = ("streamlit.web.cli", "streamlit.web.bootstrap", "streamlit.web.server", "langchain_openai", "openai",
                "startup", "web.routes")
WARM_PACKAGES = ("ui",)


def _is_app_module(module: object) -> bool:
    path = getattr(module, "__file__", None)
    if not path:
        return False
    resolved = Path(path).resolve()
    return resolved.is_relative_to(ROOT) and not resolved.is_relative_to(ROOT / ".venv") \
        and not resolved.is_relative_to(ROOT / "testkit")


class ForkedProcess:
    """A server the fork server started, with the part of `subprocess.Popen` that `testkit.processes.stop` and
    `testkit.app_server.wait_http` use. It is the fork server's child, not ours: it is gone once it has exited (the
    fork server never keeps a zombie), and its exit status is not known (`returncode` is -1 once it has exited)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """None while the process runs, -1 once it has exited."""
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = -1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Until the process has exited; `subprocess.TimeoutExpired` after `timeout` seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.05)
        return -1

    def terminate(self) -> None:
        """SIGTERM, as `Popen.terminate`."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, as `Popen.kill`."""
        self._signal(signal.SIGKILL)

    def _signal(self, number: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, number)
            except ProcessLookupError:
                self.returncode = -1


class ForkServer:
    """The warm interpreter (`python -m testkit.fork_server`), started at the first `spawn`, ended by `close`."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def spawn(self, argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> ForkedProcess:
        """Start `argv` (a `streamlit ...` command line, without the program) in a fork: in `cwd`, with exactly
        `env`, its output appended to `log`."""
        request = json.dumps({"argv": argv, "cwd": str(cwd), "env": env, "log": str(log)})
        with self._lock:
            proc = self._started()
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(request + "\n")
            proc.stdin.flush()
            answer = proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the fork server stopped (exit {proc.wait()}); its errors went to this run's stderr")
        return ForkedProcess(int(json.loads(answer)["pid"]))

    def _started(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            # No provider variable or proxy: the libraries import as they would in a server a test starts.
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RUNPOD_", "LOCAL_"))}
            self._proc = subprocess.Popen([sys.executable, "-m", "testkit.fork_server"], cwd=ROOT, env=env, text=True,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return self._proc

    def close(self) -> None:
        """End the warm interpreter (the servers it forked are their starters' to stop)."""
        with self._lock:
            if self._proc is not None:
                assert self._proc.stdin is not None
                self._proc.stdin.close()  # its loop ends at the end of its input
                self._proc.wait(30)
                self._proc = None

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _child(request: dict) -> None:
    """In the fork: become `streamlit ARGV` in the request's directory, environment and log; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the server's own subprocesses are waited for as usual
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if isinstance(sys.stdout, io.TextIOWrapper):  # as PYTHONUNBUFFERED would have made it in a new process
            sys.stdout.reconfigure(line_buffering=True)
        sys.argv = ["streamlit", *request["argv"]]
        from streamlit.web import cli

        cli.main(args=request["argv"], prog_name="streamlit")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever stopped the server is in its log
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    """Import the libraries, forget the app's modules, then fork a server for each request line on stdin."""
    import importlib
    import pkgutil

    for name in WARM_IMPORTS:
        importlib.import_module(name)
    for package in WARM_PACKAGES:
        for found in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
            importlib.import_module(found.name)
    for name in [name for name, module in sys.modules.items() if _is_app_module(module)]:
        del sys.modules[name]
    if threading.active_count() != 1:  # a fork copies only this thread: a lock another held would stay held
        raise SystemExit(f"the warm imports started threads: {threading.enumerate()}")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the forks: none stays a zombie
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    main()
