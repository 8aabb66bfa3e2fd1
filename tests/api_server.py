"""A real `streamlit run app.py` server and a FakeLLM, for the HTTP API's tests (tests/test_api*.py).

The fake answers by what the case says, so the tests never race over a scripted queue:
a description with SLOW- answers after a delay, FAIL- gets an HTTP 500 whose body carries
PROVIDER_BODY (which must never reach an API answer), refine and explain get plain text.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from storage.accounts import Accounts
from storage.store import Store
from storage.tokens import SqliteTokenStore
from testkit.answers import VALID
from testkit.fake_llm import FakeLLM, Reply

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_BODY = "PROVIDER-BODY-MUST-NOT-LEAK"
REFINED = "오른쪽 뺨에 6개월 전부터 있는 5 mm 크기의 갈색 반점으로, 최근 가려움이 있습니다."
EXPLAINED = "가장 가능성이 높은 것은 기저세포암입니다. 피부과 진료를 곧 받으세요."
PASSWORD = "correct horse battery"


def _user_text(body: dict | None) -> str:
    messages = (body or {}).get("messages") or [{}, {}]
    content = messages[-1].get("content", "")
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def respond(request) -> Reply:
    """The fake's reply, chosen by what the request says."""
    system = str(((request.body or {}).get("messages") or [{}])[0].get("content", ""))
    text = _user_text(request.body)
    if system.startswith("You rewrite"):
        return Reply(REFINED)
    if system.startswith("You explain"):
        return Reply(EXPLAINED)
    if "FAIL-" in text:
        return Reply.error(500, f"{PROVIDER_BODY}: upstream trace")
    if "SLOW-" in text:
        return Reply(VALID, delay=1.5)
    return Reply(VALID)


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo(kind: str = "PNG", size: tuple[int, int] = (640, 480)) -> bytes:
    """A small lesion-coloured photo in `kind`'s format."""
    out = io.BytesIO()
    Image.new("RGB", size, (160, 100, 90)).save(out, kind)
    return out.getvalue()


@dataclass
class ApiServer:
    """The running app: its URL, its data directory, the fake behind it and its log."""

    url: str
    data_dir: Path
    fake: FakeLLM
    log: Path

    @property
    def store(self) -> Store:
        """The app's own SQLite store (the same file the server uses)."""
        return Store(self.data_dir / "app.db")

    def user(self, name: str, *, admin: bool = False) -> str:
        """Make an account (once) and return its name."""
        accounts = Accounts(self.store)
        if accounts.get_user(name) is None:
            accounts.add_user(name, PASSWORD, admin=admin)
        return name

    def token(self, user: str, **kwargs) -> str:
        """A new token acting as `user` (made straight in the store; `cli.py tokens add` has its own test)."""
        return SqliteTokenStore(self.store, **kwargs).add(self.user(user))[1]

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client of the API, with `token` as its bearer."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
        """`python cli.py ARGS` against this server's data directory."""
        env = {**_clean_env(), "DATA_DIR": str(self.data_dir), "AUTH_MODE": "accounts"}
        return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], input=stdin, capture_output=True,
                              text=True, env=env, cwd=self.data_dir.parent, timeout=60)


def _clean_env() -> dict[str, str]:
    from tests.conftest import SDK_VARS
    from utils.settings import ENV_NAMES

    drop = {*ENV_NAMES, *SDK_VARS}
    return {k: v for k, v in os.environ.items() if k not in drop}


@contextmanager
def api_server(tmp: Path, **settings: str) -> Iterator[ApiServer]:
    """Start the fake and `streamlit run app.py` (in `tmp`, with `settings` over the test defaults); stop both."""
    fake = FakeLLM().start()
    fake.responder = respond
    port = free_port()
    data_dir = tmp / "data"
    env = {**_clean_env(), "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           "PYTHONUNBUFFERED": "1", "RUNPOD_API_KEY": "rpa-api-test", "RUNPOD_BASE_URL": fake.url,
           "RUNPOD_MODEL_NAME": "clinic-derm-v1", "SKIN_DIAGNOSIS_PROVIDER": "runpod", "DATA_DIR": str(data_dir),
           "AUTH_MODE": "accounts", "PROVIDER_FALLBACKS": "none", "HEDGE_AFTER_SECONDS": "off", "WARM_UP": "false",
           "LLM_MAX_RETRIES": "0", "HEALTH_FAILURES": "100", "TEXT_BUDGET_SECONDS": "10", **settings}
    log_path = tmp / "streamlit.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(url + "/healthz", proc, log_path)
            yield ApiServer(url, data_dir, fake, log_path)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            fake.stop()


def _wait(url: str, proc: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server stopped: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {seconds} s")
