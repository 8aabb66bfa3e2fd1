"""Shared fixtures: every test isolated from the developer's settings, a real fake LLM server, and an
environment that points the engine at it; the real PostgreSQL and Redis servers.

Every fixture is here, registered once: a test module names a fixture as a parameter and never imports one
(tests/test_architecture.py checks)."""

from __future__ import annotations

import functools
import os
from collections import Counter
from pathlib import Path

import pytest
from streamlit.components.v2 import manifest_scanner

import startup
import storage.store
import utils.settings
from engine.health import ProviderHealth
from storage import accounts
from storage.store import Store
from testkit import app_server
from testkit.browser import CHROMIUM, TEST_CHROMIUM_ARGS, LocaleDefault
from testkit.fake_llm import FakeLLM
from testkit.fork_server import ForkServer
from testkit.migrated_copy import MigratedCopy
from testkit.postgres import PostgresServer
from testkit.redis_server import RedisServer, skip_unless_available
from tests import static_runs
from utils.settings import ENV_NAMES

# Each AppTest's runtime scans every installed distribution's metadata for Streamlit component manifests: ~0.35 s of
# CPU each time, about half of a page test's. What is installed cannot change during a run, so it is scanned once.
_SCAN_COMPONENT_MANIFESTS = manifest_scanner.scan_component_manifests


@functools.cache
def _component_manifests() -> tuple:
    return tuple(_SCAN_COMPONENT_MANIFESTS())


manifest_scanner.scan_component_manifests = lambda *args, **kwargs: list(_component_manifests())

# scrypt is slow on purpose (~50 ms and 16 MiB a hash). The sign-in tests check the same password against the same
# stored hash again and again (the auth, language, session and audit tests: 277 hashes, 120 different inputs), and
# it is a pure function: each input is hashed once per process, its digest remembered. A test that counts hashes
# (tests/test_auth.py) wraps this and still sees every call.
accounts._scrypt = functools.cache(accounts._scrypt)

# Alembic's revisions cost a new store ~40-60 CPU-milliseconds, and a run makes some 750 SQLite and 230 PostgreSQL
# ones: each process migrates one for real and copies the result into the others (testkit/migrated_copy.py, checked
# by tests/test_migrated_copy.py). Tests marked `real_migrations` run the revisions on every store.
MIGRATIONS = MigratedCopy(storage.store.upgrade)
storage.store.upgrade = MIGRATIONS

_WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # set in pytest-xdist's workers, not in its controller
_OWNER = os.getppid() if _WORKER else os.getpid()  # the run's first process: xdist's controller starts the workers
PROJECT_ROOT = Path(__file__).resolve().parents[1]  # engine_env changes the cwd; use this for app paths

RUNPOD_KEY = "rpa-test-key-not-real"
OPENAI_KEY = "sk-test-not-real"
RUNPOD_MODEL = "clinic-derm-v1"
OPENAI_MODEL = "gpt-4o-mini"

# Every variable the app reads (declared once, in utils/settings.py), plus the ones the OpenAI SDK,
# langchain-openai and httpx read on their own; a developer's shell or CI must not leak any of them into a test.
SETTINGS_VARS = ENV_NAMES
SDK_VARS = (
    "OPENAI_API_BASE", "OPENAI_ORG_ID", "OPENAI_ORGANIZATION", "OPENAI_PROJECT_ID", "OPENAI_PROXY",
    "OPENAI_WEBHOOK_SECRET", "OPENAI_LOG", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT",
    "LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY",
    # A proxy would send 127.0.0.1 traffic elsewhere (httpx honours these unless NO_PROXY matches).
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "static_check(*args): the test reads `python -m ARGS`'s run "
                            "(tests/static_runs.py), started in the background when the run begins")
    # Each app server a test starts is a fork of one warm interpreter for the whole run, shared by pytest-xdist's
    # workers (testkit/fork_server.py): the run starts two dozen, and a fresh `streamlit run app.py` spends
    # ~2 CPU-seconds importing libraries.
    app_server.fork_servers(owner=_OWNER)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the static checks of the selected tests now, so mypy runs alongside the rest of the suite.

    Under pytest-xdist every worker collects every test but runs only its share: there the check starts when its
    test runs, in the one worker that has it, instead of once in each (and `pytest_collection_modifyitems` puts
    those tests first, so that worker starts them at once).
    """
    if _WORKER:
        return
    for item in session.items:
        marker = item.get_closest_marker("static_check")
        if marker is not None:
            static_runs.start(*marker.args)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, so that a parallel run (scripts/test.sh: one file per worker at a time, in this
    order, `--no-loadscope-reorder`) ends with short files on every worker instead of one long file on one.

    First the static checks (mypy's half minute runs beside the other files instead of after them), then the files
    that drive Chromium (the longest: 12-170 s each in a full run), then the rest; each group by its number of tests,
    most first.
    """
    per_file = Counter(item.path for item in items)
    browser = {item.path for item in items if item.get_closest_marker("browser") is not None}
    checks = {item.path for item in items if item.get_closest_marker("static_check") is not None}
    items.sort(key=lambda item: (item.path not in checks, item.path not in browser, -per_file[item.path],
                                 str(item.path)))


def pytest_sessionfinish(session: pytest.Session) -> None:
    static_runs.stop_all()


def pytest_unconfigure(config: pytest.Config) -> None:
    if not _WORKER:  # the owner, after every worker has ended
        app_server.fork_servers(owner=_OWNER).close()


@pytest.fixture(autouse=True)
def _migrations_of_the_test(request):
    """New stores, SQLite and PostgreSQL, are copies of a migrated one unless the test is marked `real_migrations`."""
    MIGRATIONS.enabled = request.node.get_closest_marker("real_migrations") is None
    yield
    MIGRATIONS.enabled = True


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch, tmp_path_factory):
    """Every test starts from the app's defaults: no declared or SDK variable, no developer `.env`.

    The loader's `.env` is pointed at a file that does not exist (rather than changing the
    working directory, which tests with relative paths and `AppTest.from_file` rely on), and
    settings and engine are re-read before and after the test. Subprocesses read `.env` from
    their own working directory: start them in `tmp_path` (as `engine_env` does).
    """
    for name in {*SETTINGS_VARS, *SDK_VARS}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(utils.settings, "ENV_FILE", tmp_path_factory.getbasetemp() / "no-env-file" / ".env")
    startup.reset_engine()
    yield
    startup.reset_engine()


@pytest.fixture(scope="session")
def fork_server() -> ForkServer:
    """The run's warm interpreter, which `serve_app` forks the app servers from (testkit/fork_server.py)."""
    return app_server.fork_servers(owner=_OWNER)


@pytest.fixture
def fake_llm():
    """A running FakeLLM on a free port, stopped after the test."""
    with FakeLLM() as server:
        yield server


@pytest.fixture
def engine_env(fake_llm, monkeypatch, tmp_path):
    """Point RunPod and OpenAI at `fake_llm`, with test keys, a private data dir and fast retries.

    The working directory is `tmp_path` (for subprocesses and relative paths; `isolated_settings`
    already keeps the developer's variables and `.env` out). Everything else is the app's default;
    change settings with the `reconfigure` fixture (or `monkeypatch.setenv` then
    `startup.reset_engine()`). Yields the FakeLLM.
    """
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    values = {
        "RUNPOD_API_KEY": RUNPOD_KEY, "RUNPOD_BASE_URL": fake_llm.url, "RUNPOD_MODEL_NAME": RUNPOD_MODEL,
        "OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fake_llm.url, "OPENAI_MODEL": OPENAI_MODEL,
        "DATA_DIR": str(tmp_path / "data"), "LLM_RETRY_BASE_DELAY": "0.01",
        # One provider at a time unless a test turns fallback and hedging on (tests/test_routing.py).
        "PROVIDER_FALLBACKS": "none", "HEDGE_AFTER_SECONDS": "off", "WARM_UP": "false",
        "AUTH_MODE": "off",  # sign-in has its own tests (tests/test_auth.py)
        # One reading per case: double reading has its own tests (tests/test_second_reading.py).
        "SECOND_READER": "off",
        # The tests were written RunPod-first (the app's text default is OpenAI, see settings.py).
        "SKIN_DIAGNOSIS_PROVIDER": "runpod",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    startup.reset_engine()
    yield fake_llm
    startup.reset_engine()


@pytest.fixture
def demo_env(monkeypatch, tmp_path):
    """A new install: a fresh, empty data folder, no provider configured, sign-in off (the demo pack's tests).

    The working directory is `tmp_path`; yields the data folder (DATA_DIR). Set DEMO_MODE or DATABASE_URL with
    `monkeypatch.setenv` then `startup.reset_engine()`.
    """
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUTH_MODE", "off")
    monkeypatch.setenv("WARM_UP", "false")
    monkeypatch.chdir(tmp_path)
    startup.reset_engine()
    yield tmp_path / "data"
    startup.reset_engine()


@pytest.fixture
def reconfigure(engine_env, monkeypatch):
    """A function that sets (or, given None, removes) variables and rebuilds the engine from them.

        def test_x(reconfigure):
            reconfigure(LLM_STREAM="false", RUNPOD_API_KEY=None)
    """
    def apply(**env: str | float | None) -> None:
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, str(value))
        startup.reset_engine()
    return apply


class Clock:
    """A clock the test moves by hand (`clock.now += 60`)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A `Clock` at a fixed moment, for stores that take `clock=`."""
    return Clock()


@pytest.fixture
def health_clock(clock, monkeypatch) -> Clock:
    """The engine's provider health records (cool-downs, probes) read `clock` instead of `time.monotonic`.

    The engine is built afresh on next use; move the clock by hand (`health_clock.now += 60`) instead of sleeping.
    """
    monkeypatch.setattr(startup, "ProviderHealth", functools.partial(ProviderHealth, clock=clock))
    startup.reset_engine()
    return clock


@pytest.fixture(scope="module")
def chromium():
    """Debian's headless Chromium through Playwright, launched once per test module and closed after it.

    Not once per process: Playwright's synchronous API keeps its event loop running in this thread while it is
    open, and the in-process tests after a browser module run `asyncio.run` there. Tests open contexts of their
    own in it (the `browser` fixture closes them after the test); a module that keeps a context for several
    tests (tests/test_accessibility.py) closes it itself."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=TEST_CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser(chromium):
    """The module's Chromium, its new pages in Korean unless a test names another locale (testkit.browser
    `LocaleDefault`); every context (and page) the test opened is closed after it, so no cookie, storage or open
    app session reaches the next test."""
    yield LocaleDefault(chromium)
    for context in chromium.contexts:
        context.close()


@pytest.fixture(scope="session")
def postgres_server():
    """One throw-away PostgreSQL cluster for the whole run (testkit/postgres.py); each test takes its own database.

    Never skipped: scripts/test.sh installs Debian's postgresql, so a missing server is a failure to see.
    """
    server = PostgresServer().start()
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each store test runs twice: on a SQLite file under tmp_path, and on a fresh PostgreSQL database.

    Either URL may be set as `DATABASE_URL` (sqlite:///PATH is what an empty DATABASE_URL means, under DATA_DIR).
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'app.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def store(database_url):
    """A `Store` on `database_url` (both databases), its pool closed after the test."""
    opened = Store(database_url)
    yield opened
    opened.dispose()


@pytest.fixture(scope="module")
def redis_module_server():
    """One redis-server for a test module (testkit/redis_server.py)."""
    skip_unless_available()
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_server(redis_module_server):
    """The module's redis-server, running and empty at the start of each test."""
    import redis

    redis_module_server.start()
    client = redis.Redis.from_url(redis_module_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    yield redis_module_server


@pytest.fixture(params=["store", "redis"])
def jobs_backend(request, engine_env, monkeypatch):
    """Jobs in the store (the default), then in Redis (REDIS_URL): the jobs tests and the Jobs page's hold on both.

    A module asks for it with `pytestmark = pytest.mark.usefixtures("jobs_backend")`; yields the backend's name.
    """
    if request.param == "redis":
        from storage.jobs.redis import RedisJobStore

        monkeypatch.setenv("REDIS_URL", request.getfixturevalue("redis_server").url)
        startup.reset_engine()
        assert isinstance(startup.get_engine().jobs.store, RedisJobStore)
        startup.reset_engine()
    yield request.param
