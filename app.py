"""The one server: the Streamlit UI (`main.py`) and, beside it, the HTTP routes of `web/`.

    streamlit run app.py

Streamlit finds `app` (an `st.App`, a Starlette application) and serves it: the pages, the
original backend's HTTP API and the operators' endpoints, in one process on one engine.
Before the first request, the store is brought to the newest migration (as `cli.py db upgrade`
does); a database that cannot be reached then is logged, and the app starts all the same.
"""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import streamlit as st

import startup
from providers.base import load_sdk
from storage.database import StoreError
from utils.settings import SettingsError
from web import bad_request
from web.routes import middleware, routes

log = logging.getLogger("app")

def migrate_store() -> None:
    """The store at the newest migration; a database that is down, or a DATA_DIR that cannot be used, is one log
    line: the pages then say the database is unavailable, and the store migrates on its next use."""
    try:
        store = startup.get_store()
        revision = store.migrate()
    except SettingsError as exc:  # one line naming the variable (a URL's password hidden); main.py's page says it too
        log.error("%s", exc)
        return
    except (StoreError, OSError) as exc:  # the message names the database without its password
        log.error("the store was not migrated at start: %s", exc)
        return
    log.info("store %s at revision %s", store.name, revision)


def build_engine() -> None:
    """The process's engine, built before the first request; settings that cannot be used are the pages' to explain."""
    try:
        startup.get_engine()
    except (SettingsError, StoreError, OSError) as exc:
        log.error("the engine was not built at start: %s", exc)
    load_sdk()  # the provider loop must not stall on this import under the first clinicians' assessments


@asynccontextmanager
async def _start(_app: st.App) -> AsyncIterator[None]:
    # Before the first request, off the event loop (a remote database may take a moment to answer).
    await anyio.to_thread.run_sync(migrate_store)
    # The engine and the LLM SDK too, so the first clinicians do not wait for them (a cache hit never needs the SDK:
    # providers/base.py imports it at the first provider call elsewhere, as on the command line).
    await anyio.to_thread.run_sync(build_engine)
    # What start-up made lives as long as the process: frozen, Streamlit's full collection after every script run
    # (runner.postScriptGC) walks only what came since: ~0-30 ms a run instead of ~140 ms (a Jobs page re-runs
    # every 2 s), and cyclic garbage is still collected after each run.
    gc.collect()
    gc.freeze()
    yield


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # as main.py
bad_request.install()  # a request line uvicorn cannot parse is answered as the API answers errors
app = st.App("main.py", routes=routes(), middleware=middleware(), lifespan=_start)
