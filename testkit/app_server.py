"""`streamlit run app.py` on a free loopback port, for the tests and benchmarks that need the real server.

A fresh process each time, unless `fork_servers()` was called (tests/conftest.py does): then the server is a fork
of a warm interpreter (testkit/fork_server.py), which skips its ~2 CPU-seconds of library imports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from testkit.fork_server import ForkServer
from testkit.processes import Stoppable, stop
from testkit.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1,localhost"
_warm: ForkServer | None = None


def fork_servers(owner: int) -> ForkServer:
    """From now on `serve_app` forks its servers from the warm interpreter of `owner`'s run (started at the first,
    shared by every process that names the same owner); returns it, for the owner to close when the run ends."""
    global _warm
    if _warm is None:
        _warm = ForkServer(owner)
    return _warm


def app_env(**settings: str) -> dict[str, str]:
    """This process's environment without any provider's variables or proxies, plus `settings`.

    A developer's OPENAI_API_KEY or an HTTPS proxy must not reach a server a test points at its fake.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "RUNPOD_", "LOCAL_", "SKIN_DIAGNOSIS_"))
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    # One reading per case unless the test asks for double reading (SECOND_READER=runpod).
    env.update(PYTHONUNBUFFERED="1", NO_PROXY=LOOPBACK, no_proxy=LOOPBACK, SECOND_READER="off")
    env.update(settings)
    return env


def wait_http(url: str, proc: Stoppable, log: Path, seconds: float = 60) -> None:
    """Until `url` answers 200; raises with the server's last log lines when it stops or does not come up."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server stopped: {log.read_text(errors='replace')[-2000:]}")
        with suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {seconds:g} s: {log.read_text(errors='replace')[-2000:]}")


@contextmanager
def serve_app(env: dict[str, str], cwd: Path, *, seconds: float = 60) -> Iterator[str]:
    """Run `streamlit run app.py` in `cwd` with exactly `env`; yields its base URL (no trailing slash), then stops it.

    Ready once `/healthz` answers; its output goes to `cwd/streamlit.log`.
    """
    port = free_port()
    log_path = cwd / "streamlit.log"
    command = ["run", str(ROOT / "app.py"), "--server.port", str(port), "--server.address", "127.0.0.1",
               "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with open(log_path, "w") as log:
        proc: Stoppable
        if _warm is not None:
            proc = _warm.spawn(command, cwd, env, log_path)
        else:
            proc = subprocess.Popen([sys.executable, "-m", "streamlit", *command], cwd=cwd, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(url + "/healthz", proc, log_path, seconds)
            yield url
        finally:
            stop(proc)
