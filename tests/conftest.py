"""Shared fixtures: a real fake LLM server, and an environment that points the engine at it."""

from __future__ import annotations

from pathlib import Path

import pytest

import providers
from testkit.fake_llm import FakeLLM

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # engine_env changes the cwd; use this for app paths

RUNPOD_KEY = "rpa-test-key-not-real"
OPENAI_KEY = "sk-test-not-real"
RUNPOD_MODEL = "clinic-derm-v1"
OPENAI_MODEL = "gpt-4o-mini"

# Every variable utils/settings.py reads, plus the ones the OpenAI SDK and langchain-openai
# read on their own; a developer's shell or CI must not leak any of them into a test.
SETTINGS_VARS = (
    "OPENAI_API_KEY", "OPENAI_MODEL", "OPENAI_BASE_URL", "RUNPOD_API_KEY", "RUNPOD_BASE_URL", "RUNPOD_MODEL_NAME",
    "LOCAL_BASE_URL", "LOCAL_MODEL", "LOCAL_API_KEY", "LOCAL_ACCEPTS_IMAGES", "SKIN_DIAGNOSIS_PROVIDER",
    "SKIN_DIAGNOSIS_IMAGE_PROVIDER", "REQUEST_TIMEOUT", "MAX_TOKENS", "TEMPERATURE", "LLM_MAX_RETRIES",
    "LLM_RETRY_BASE_DELAY", "LLM_STREAM", "TEXT_BUDGET_SECONDS", "IMAGE_BUDGET_SECONDS", "MAX_TEXT_CHARS",
    "IMAGE_MAX_SIDE", "IMAGE_JPEG_QUALITY", "IMAGE_MAX_UPLOAD_MB", "IMAGE_MAX_PIXELS", "DATA_DIR",
    "CACHE_TTL_SECONDS", "CACHE_ENABLED", "PROVIDER_FALLBACKS", "HEDGE_AFTER_SECONDS", "HEDGE_MIN_SECONDS", "HEDGE_MAX_SECONDS", "HEALTH_FAILURES",
    "HEALTH_COOLDOWN_SECONDS", "COLD_START_SECONDS", "SERVERLESS_IDLE_SECONDS", "WARM_UP", "WARM_UP_SECONDS", "KEEP_WARM_SECONDS",
    "KEEP_WARM_ACTIVE_SECONDS", "HISTORY_ENABLED", "HISTORY_KEEP_IMAGES", "HISTORY_RETENTION_DAYS", "JOB_WORKERS",
    "DEMO_MODE", "AUTH_MODE", "LOGIN_MAX_FAILURES", "LOGIN_LOCKOUT_SECONDS", "SESSION_TIMEOUT_MINUTES", "REDIS_URL",
    "DATA_ENCRYPTION_KEY",
)
SDK_VARS = (
    "OPENAI_API_BASE", "OPENAI_ORG_ID", "OPENAI_ORGANIZATION", "OPENAI_PROJECT_ID", "OPENAI_PROXY",
    "OPENAI_WEBHOOK_SECRET", "OPENAI_LOG", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT",
    "LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY",
    # A proxy would send 127.0.0.1 traffic elsewhere (httpx honours these unless NO_PROXY matches).
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
)


@pytest.fixture
def fake_llm():
    """A running FakeLLM on a free port, stopped after the test."""
    with FakeLLM() as server:
        yield server


@pytest.fixture
def engine_env(fake_llm, monkeypatch, tmp_path):
    """Point RunPod and OpenAI at `fake_llm`, with test keys, a private data dir and fast retries.

    The working directory is `tmp_path`, so no developer `.env` is read. Everything else
    is the app's default; change settings with the `reconfigure` fixture (or `monkeypatch.setenv`
    then `providers.reset_engine()`). Yields the FakeLLM.
    """
    for name in {*SETTINGS_VARS, *SDK_VARS}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    values = {
        "RUNPOD_API_KEY": RUNPOD_KEY, "RUNPOD_BASE_URL": fake_llm.url, "RUNPOD_MODEL_NAME": RUNPOD_MODEL,
        "OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fake_llm.url, "OPENAI_MODEL": OPENAI_MODEL,
        "DATA_DIR": str(tmp_path / "data"), "LLM_RETRY_BASE_DELAY": "0.01",
        # One provider at a time unless a test turns fallback and hedging on (tests/test_routing.py).
        "PROVIDER_FALLBACKS": "none", "HEDGE_AFTER_SECONDS": "off", "WARM_UP": "false",
        "AUTH_MODE": "off",  # sign-in has its own tests (tests/test_auth.py)
        # The tests were written RunPod-first (the app's text default is OpenAI, see settings.py).
        "SKIN_DIAGNOSIS_PROVIDER": "runpod",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    providers.reset_engine()
    yield fake_llm
    providers.reset_engine()


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
        providers.reset_engine()
    return apply

