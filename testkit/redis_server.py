"""A real `redis-server` for tests and benchmarks: a free port on 127.0.0.1, a temporary directory, stopped after.

    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        server.stop(); ...; server.start()   # Redis down, then back on the same port
        server.freeze(); ...; server.thaw()  # Redis hung, then answering again

Nothing is persisted (no RDB snapshots, no AOF); the server listens on 127.0.0.1 only.
The `redis_server` fixture of tests/conftest.py runs one per test module, emptied before each test; it skips
when the binary is missing, except in CI, where scripts/test.sh installs it and a missing binary is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from testkit.processes import stop

BINARY_NAMES = ("/usr/bin/redis-server", "redis-server")


def redis_binary() -> str | None:
    """The path of `redis-server` (Debian's first), or None when it is not installed."""
    for name in BINARY_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One `redis-server` process; `url` points at it; `stop()` and `start()` take it down and up again."""

    def __init__(self, *, port: int | None = None, directory: Path | None = None,
                 maxmemory: str = "256mb") -> None:
        binary = redis_binary()
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.binary = binary
        self.port = port or free_port()
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="redis-test-"))
        self.maxmemory = maxmemory
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server (on the same port after a `stop()`) and wait until it answers PING."""
        if self.running:
            return self
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
                "--maxmemory", self.maxmemory, "--logfile", str(self.directory / "redis.log")]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}; see {self.directory}/redis.log")
            if self._ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout} s")

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s); the port is free afterwards."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop(proc, grace=5)

    def freeze(self) -> None:
        """Hang the server (SIGSTOP): it keeps its port and its data but answers nothing, until `thaw()`."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server answer again (SIGCONT); keys whose expiry passed meanwhile are gone."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop the server and remove its temporary directory."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def skip_unless_available() -> None:
    """Skip the calling test when redis-server is missing, unless in CI (where that is a failure)."""
    if redis_binary() is None and not os.environ.get("CI"):
        pytest.skip("redis-server is not installed (scripts/test.sh installs Debian's redis-server)")
