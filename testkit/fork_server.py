"""App servers forked from a warm interpreter: the tests' `streamlit run app.py` without its ~2 CPU-seconds of imports.

A fresh `python -m streamlit run app.py` spends nearly all of its start importing Streamlit, SQLAlchemy, Alembic,
Redis, langchain-openai and the openai SDK; a full test run starts two dozen servers. This module's process
imports them once, then forks one child per server. The app's own modules are dropped from the warm interpreter
before any fork, so every child imports the app afresh (its settings, its engine and its module state are its own,
as in a new process); only the libraries' imports are shared. Each child then runs Streamlit's own command line
(`streamlit run ...`) with exactly the environment, working directory and log file it was given.

Benchmarks do not use it: a benchmark of a server's start or first page measures a fresh process.

    warm = ForkServer(owner=os.getpid())
    server = warm.spawn(argv, cwd, env, log_path)   # a handle that `testkit.processes.stop` ends
    ...
    warm.close()
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
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
        if self.returncode is None and not _alive(self.pid):
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
    """The warm interpreter of the processes of one run: a client of it, started at the first `spawn`.

    `owner` is the run's first process (pytest's controller under xdist, whose workers share one warm interpreter);
    the warm interpreter listens on a socket named after it, and ends when `close` is called or the owner is gone.
    """

    def __init__(self, owner: int) -> None:
        self.owner = owner
        self.path = Path(tempfile.gettempdir()) / f"skinai-fork-server-{owner}.sock"

    def spawn(self, argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> ForkedProcess:
        """Start `argv` (a `streamlit ...` command line, without the program) in a fork: in `cwd`, with exactly
        `env`, its output appended to `log`."""
        request = {"argv": argv, "cwd": str(cwd), "env": env, "log": str(log)}
        try:
            answer = self._ask(request)
        except OSError:  # not started yet, or gone: (re)start it, once for every process of the run
            self._start()
            answer = self._ask(request)
        return ForkedProcess(int(answer["pid"]))

    def _ask(self, request: dict) -> dict:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(60)  # a fork takes milliseconds: a warm interpreter that hangs fails the test, not the run
            conn.connect(str(self.path))
            conn.sendall(json.dumps(request).encode() + b"\n")
            line = conn.makefile("rb").readline()
        if not line:
            raise ConnectionResetError("the fork server closed the connection")
        answer: dict = json.loads(line)
        return answer

    def _start(self) -> None:
        with open(f"{self.path}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # the other processes of the run wait here, then find it running
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(self.path))
                return
            # No provider variable: a developer's key has no business in the process every test server is forked from.
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RUNPOD_", "LOCAL_"))}
            proc = subprocess.Popen([sys.executable, "-m", "testkit.fork_server", str(self.path), str(self.owner)],
                                    cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    start_new_session=True)
            assert proc.stdout is not None
            if proc.stdout.readline() != b"ready\n":
                raise RuntimeError(f"the fork server did not start (exit {proc.wait()}); its errors are on stderr")
            proc.stdout.close()

    def close(self) -> None:
        """End the warm interpreter, if it runs (the servers it forked are their starters' to stop)."""
        with contextlib.suppress(OSError):
            self._ask({"stop": True})


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


def main(path: str, owner: int) -> None:
    """Import the libraries, forget the app's modules, then fork a server for each request to the socket at `path`,
    until asked to stop or `owner` is gone."""
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
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a socket left by a run that was killed
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(16)
    listener.settimeout(1)
    print("ready", flush=True)
    try:
        while _alive(owner):
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                try:
                    request = json.loads(conn.makefile("rb").readline())
                except (OSError, ValueError):  # a probe that only connects (ForkServer._start), or a broken client
                    continue
                if request.get("stop"):
                    break
                pid = os.fork()
                if pid == 0:
                    conn.close()
                    listener.close()
                    _child(request)
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    finally:
        listener.close()
        for leftover in (path, f"{path}.lock"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
