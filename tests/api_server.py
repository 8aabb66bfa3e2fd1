"""A real `streamlit run app.py` server and a FakeLLM, for the HTTP API's tests (tests/test_api*.py).

The fake answers by what the case says, so the tests never race over a scripted queue:
a description with SLOW- answers after a delay, FAIL- gets an HTTP 500 whose body carries
PROVIDER_BODY (which must never reach an API answer), refine and explain get plain text, except that
NOPROSE- makes them answer the assessment's XML (an assessment of NOPROSE- is BENIGN, whose findings mark it).

`api_server(..., two_readers=True)` serves double reading: OpenAI (FIRST_MODEL) gives the first answer as
above, RunPod (SECOND_MODEL, the clinic's model) reads every case a second time, as `ClinicModel` says.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from storage.accounts import Accounts
from storage.store import Store
from storage.tokens import SqlTokenStore
from testkit.answers import BENIGN, BENIGN_SUMMARY, DISCLAIMER, VALID, xml_answer
from testkit.app_server import LOOPBACK, serve_app
from testkit.fake_llm import FakeLLM, Reply
from tests.cli_runs import CliRun, run_cli

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_BODY = "PROVIDER-BODY-MUST-NOT-LEAK"
REFINED = "오른쪽 뺨에 6개월 전부터 있는 5 mm 크기의 갈색 반점으로, 최근 가려움이 있습니다."
EXPLAINED = "가장 가능성이 높은 것은 기저세포암입니다. 피부과 진료를 곧 받으세요."
PASSWORD = "correct horse battery"
FIRST_MODEL = "gpt-4o-mini"  # the first reader's, with two_readers
SECOND_MODEL = "clinic-derm-v1"  # RunPod's: the only provider, or the second reader with two_readers
# Squamous cell carcinoma (code 8): malignant like VALID's basal cell carcinoma, another class.
SCC = xml_answer(8, 64, "편평세포암", "각화성 구진으로 편평세포암을 의심합니다.", [(1, 20, "기저세포암")],
                 tail=DISCLAIMER)


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
    if system.startswith(("You rewrite", "You explain")) and ("NOPROSE-" in text or BENIGN_SUMMARY in text):
        return Reply(VALID)  # a helper that answers in the assessment's form
    if system.startswith("You rewrite"):
        return Reply(REFINED)
    if system.startswith("You explain"):
        return Reply(EXPLAINED)
    if "NOPROSE-" in text:
        return Reply(BENIGN)
    if "FAIL-" in text:
        return Reply.error(500, f"{PROVIDER_BODY}: upstream trace")
    if "SLOW-" in text:
        return Reply(VALID, delay=1.5)
    return Reply(VALID)


class ClinicModel:
    """The fake as the second reader (the clinic's model): it reads a case saying SECOND-BENIGN- as seborrheic
    keratosis (benign: `differ_risk` against the first reader's basal cell carcinoma), SECOND-SCC- as squamous cell
    carcinoma (`differ`), fails SECOND-CRASH- with an HTTP 500 (`unavailable`), and agrees on any other case.
    While held, its answers wait until released (a worker still booting), so a test sees the reading pending.
    """

    def __init__(self) -> None:
        self._go = threading.Event()
        self._go.set()

    def hold(self) -> None:
        """From now on, answers wait for `release`."""
        self._go.clear()

    def release(self) -> None:
        """Let the waiting answers (and every later one) go."""
        self._go.set()

    def __call__(self, request) -> Reply:
        self._go.wait(60)  # bounded: a test that forgets to release still ends
        text = _user_text(request.body)
        if "SECOND-CRASH-" in text:
            return Reply.error(500, "the worker crashed")
        return Reply(BENIGN if "SECOND-BENIGN-" in text else SCC if "SECOND-SCC-" in text else VALID)


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
    clinic: ClinicModel | None = None  # the second reader, with two_readers

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
        return SqlTokenStore(self.store, **kwargs).add(self.user(user))[1]

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client of the API, with `token` as its bearer."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)

    def cli(self, *args: str, stdin: str = "", **env: str) -> CliRun:
        """`cli.py ARGS` against this server's data directory, in this process (tests/cli_runs.py); `env` adds
        settings."""
        return run_cli(*args, stdin=stdin, env={"DATA_DIR": str(self.data_dir), "AUTH_MODE": "accounts", **env},
                       cwd=self.data_dir.parent)


def _clean_env() -> dict[str, str]:
    from tests.conftest import SDK_VARS
    from utils.settings import ENV_NAMES

    drop = {*ENV_NAMES, *SDK_VARS}
    return {k: v for k, v in os.environ.items() if k not in drop}


@contextmanager
def api_server(tmp: Path, *, two_readers: bool = False, **settings: str) -> Iterator[ApiServer]:
    """Start the fake and `streamlit run app.py` (in `tmp`, with `settings` over the test defaults); stop both.

    One reading per case (SECOND_READER=off) unless `two_readers`: then OpenAI answers first and RunPod reads
    every case again (`ApiServer.clinic` says how).
    """
    fake = FakeLLM().start()
    fake.responder = respond
    clinic = None
    data_dir = tmp / "data"
    env = {**_clean_env(), "NO_PROXY": LOOPBACK, "no_proxy": LOOPBACK,
           "PYTHONUNBUFFERED": "1", "RUNPOD_API_KEY": "rpa-api-test", "RUNPOD_BASE_URL": fake.url,
           "RUNPOD_MODEL_NAME": SECOND_MODEL, "SKIN_DIAGNOSIS_PROVIDER": "runpod", "DATA_DIR": str(data_dir),
           "AUTH_MODE": "accounts", "PROVIDER_FALLBACKS": "none", "HEDGE_AFTER_SECONDS": "off", "WARM_UP": "false",
           "LLM_MAX_RETRIES": "0", "HEALTH_FAILURES": "100", "TEXT_BUDGET_SECONDS": "10", "SECOND_READER": "off"}
    if two_readers:
        clinic = ClinicModel()
        fake.responder = lambda request: clinic(request) if request.body.get("model") == SECOND_MODEL \
            else respond(request)
        env.update(OPENAI_API_KEY="sk-api-test", OPENAI_BASE_URL=fake.url, OPENAI_MODEL=FIRST_MODEL,
                   SKIN_DIAGNOSIS_PROVIDER="openai", SECOND_READER="runpod")
    env.update(settings)
    try:
        with serve_app(env, tmp) as url:
            yield ApiServer(url, data_dir, fake, tmp / "streamlit.log", clinic)
    finally:
        if clinic is not None:
            clinic.release()
        fake.stop()
