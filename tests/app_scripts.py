"""What several test modules drive the app through: the app's entry script, the page wrappers for AppTest, and
waiting for a background job. A helper module, not a test module: test modules import from here, never from
each other (tests/test_architecture.py checks)."""

from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

import startup
from domain.jobs import Job
from engine.jobs import JobRunner

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "main.py")
HISTORY_PAGE = str(ROOT / "app_pages" / "history.py")
QA_PAGE = ROOT / "app_pages" / "qa.py"

# app.py does this much before running a page; the page is run on its own until app.py lists it.
HISTORY_WRAPPER = f"""
import runpy
from ui.state import init_state
init_state()
runpy.run_path({HISTORY_PAGE!r}, run_name="__main__")
"""
# app.py registers the page; here it runs on its own, after the session set-up app.py does first.
QA_SCRIPT = f"""
import runpy
from ui.state import init_state
init_state()
runpy.run_path({str(QA_PAGE)!r}, run_name="__main__")
"""


def history_page(**state) -> AppTest:
    """The history page run once, with `state` in its session."""
    at = AppTest.from_string(HISTORY_WRAPPER, default_timeout=20)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def select_row(at: AppTest, position: int) -> AppTest:
    """The history table's row at `position` selected, then the page run again."""
    # What a click on a row sends; AppTest has no click for a dataframe, but its selection state is writable.
    at.session_state["hist_table"] = {"selection": {"rows": [position], "columns": [], "cells": []}}
    return at.run()


def wait_for(jobs: JobRunner, job_id: str, seconds: float = 10) -> Job:
    """The job once it has finished; fails when it has not after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = jobs.get(job_id)
        if job is not None and job.finished:
            return job
        time.sleep(0.02)
    job = jobs.get(job_id)
    raise AssertionError(f"job {job_id} still {job.status if job else 'missing'}")


def wait_done(job_id: str, seconds: float = 10) -> None:
    """Until the process-wide engine's job `job_id` has finished."""
    wait_for(startup.get_engine().jobs, job_id, seconds)
