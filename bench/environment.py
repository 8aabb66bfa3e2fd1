"""The environment a benchmark's engine runs in: one fake provider, a private data dir, no developer `.env`."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import startup
from utils.settings import ENV_NAMES

RUNPOD_MODEL = "clinic-derm-v1"
RUNPOD_KEY = "rpa-bench-key-not-real"


def _foreign(name: str) -> bool:
    """Variables the OpenAI SDK, langchain or httpx read on their own (keys, gateways, tracing, proxies)."""
    return (name.startswith(("OPENAI_", "AZURE_OPENAI_", "LANGCHAIN_", "LANGSMITH_"))
            or name.lower() in {"http_proxy", "https_proxy", "all_proxy"})


@contextlib.contextmanager
def engine_pointed_at(url: str) -> Iterator[Path]:
    """Point the process-wide engine at `url` as RunPod, alone, with a private data dir; yields that dir.

    As tests/conftest.py does (every variable the settings declare is cleared): no fallback, no
    hedging, no warm-up pings (each would add a request the benchmark does not mean to time),
    and the working directory is a fresh temporary one so a developer's `.env` is not read.
    Everything is restored afterwards.
    """
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    with tempfile.TemporaryDirectory(prefix="bench-micro-") as tmp:
        try:
            for name in {*ENV_NAMES, *(n for n in os.environ if _foreign(n))}:
                os.environ.pop(name, None)
            os.environ.update({
                "RUNPOD_API_KEY": RUNPOD_KEY, "RUNPOD_BASE_URL": url, "RUNPOD_MODEL_NAME": RUNPOD_MODEL,
                "DATA_DIR": str(Path(tmp) / "data"),
                "PROVIDER_FALLBACKS": "none", "HEDGE_AFTER_SECONDS": "off", "WARM_UP": "false",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            })
            os.chdir(tmp)
            startup.reset_engine()
            yield Path(tmp)
        finally:
            startup.reset_engine()
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
