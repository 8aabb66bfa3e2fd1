"""The clinic's PostgreSQL goes down: assessments still answer, with a note that they were not recorded, and the
pages that read the database say so instead of a traceback.

The database is the real throw-away cluster of tests/conftest.py, stopped (as a dead machine: `-m immediate`) and
always started again, since the whole run shares it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import startup
from domain.jobs import DONE, INTERRUPTED, RUNNING, JobStoreUnavailable
from domain.locales import TABLES
from domain.parser import parse_answer
from domain.request import DiagnosisRequest
from domain.result import NOT_RECORDED, Diagnosis
from engine.jobs import JobRunner
from startup import diagnose
from storage.accounts import accounts_for
from storage.jobs.sql import SqlJobStore
from storage.sessions import sessions_for
from storage.store import Store
from testkit.answers import VALID
from tests.cli_runs import run_cli
from tests.job_watch import watch_finish
from tests.page_text import alerts, plain_alerts, shown
from tests.waiting import wait_until
from ui.auth_grace import GRACE_KEY
from utils.settings import get_settings
from web.api.bodies import diagnosis_body

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "main.py")


@contextmanager
def down(postgres_server, url: str) -> Iterator[None]:
    """PostgreSQL stopped for the block, started again whatever happens (every test of the run shares it)."""
    postgres_server.stop()  # a crash-like stop: what was committed survives it, as on a clinic's server
    try:
        yield
    finally:
        postgres_server.start()


@pytest.fixture
def on_postgres(reconfigure, postgres_url):
    """The engine on a fresh PostgreSQL database (the app as several servers run it, without Redis)."""
    reconfigure(DATABASE_URL=postgres_url)
    return postgres_url


def test_an_assessment_answers_with_a_note_while_the_database_is_down(on_postgres, postgres_server, engine_env):
    recorded = diagnose(text="pearly papule beside the nose")
    assert recorded.assessment_id and not recorded.not_recorded and "not_recorded" not in recorded.to_dict()
    with down(postgres_server, on_postgres):
        result = diagnose(text="scaly patch on the scalp", use_cache=False)
        assert result.complete and result.label is not None  # the fake LLM answered
        assert result.not_recorded and result.assessment_id is None
        assert result.to_dict()["not_recorded"] == NOT_RECORDED
        body = diagnosis_body(result, kind="text", created_at=0.0)  # what the HTTP API answers
        assert body["metadata"]["not_recorded"] == NOT_RECORDED and body["assessment"]["not_recorded"]
    again = diagnose(text="a third case", use_cache=False)
    assert again.assessment_id and not again.not_recorded  # back up: recorded again
    assert startup.get_engine().history.get(again.assessment_id) is not None


def test_with_the_history_off_nothing_is_noted(reconfigure):
    reconfigure(HISTORY_ENABLED="false")
    result = diagnose(text="pearly papule beside the nose")
    assert result.assessment_id is None and not result.not_recorded  # not kept on purpose: no note


def test_the_command_line_prints_the_note(on_postgres, postgres_server, capsys):
    import cli

    with down(postgres_server, on_postgres):
        done = run_cli("diagnose", "--text", "pearly papule", "--json")
        result = diagnose(text="pearly papule", use_cache=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["not_recorded"] == NOT_RECORDED and "Traceback" not in done.stderr
    cli._print_human(result)
    assert f"NOTE: {NOT_RECORDED}" in capsys.readouterr().out


def test_the_diagnose_page_shows_the_card_and_the_note(on_postgres, postgres_server):
    at = AppTest.from_file(APP, default_timeout=30).run()
    with down(postgres_server, on_postgres):
        at.text_area(key="symptoms").input("코 옆 진주빛 구진").run()
        at = at.button(key="assess").click().run()
    assert not at.exception
    assert "기저세포암" in shown(at)  # the card
    assert TABLES["ko"]["result.not_recorded"] in [w.value for w in at.warning]



def test_a_signed_in_clinician_keeps_working_and_keeps_what_was_typed(reconfigure, postgres_server, postgres_url):
    # Pressing Assess during the outage sent the clinician to the sign-in form, and the description was gone.
    reconfigure(AUTH_MODE="accounts", DATABASE_URL=postgres_url, DATABASE_TIMEOUT_SECONDS=2)
    settings = get_settings()
    accounts_for(startup.get_store(), settings).add_user("kim", "correct horse battery")
    key = sessions_for(startup.get_store(), settings).start("kim", address=None, agent="AppTest").key
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["auth_session"] = key
    at.run()
    assert not at.exception and at.session_state["user"] == "kim"
    typed = "코 옆 진주빛 구진, 6개월간 서서히 커짐"
    at.text_area(key="symptoms").input(typed).run()
    with down(postgres_server, postgres_url):
        at = at.button(key="assess").click().run()
        assert not at.exception and at.session_state["user"] == "kim"
        assert not _sign_in_form(at)
        assert TABLES["ko"]["auth.store_down_grace"] in [w.value for w in at.warning]
        assert "기저세포암" in shown(at)  # answered
        assert TABLES["ko"]["result.not_recorded"] in [w.value for w in at.warning]
        assert at.text_area(key="symptoms").value == typed
        # The grace is bounded: past the session's own limits as known at its last check, the form again.
        limits = at.session_state[GRACE_KEY]
        assert limits["until"] <= time.time() + settings.session_timeout_minutes * 60
        at.session_state[GRACE_KEY] = {**limits, "until": time.time() - 1}
        expired = at.run()
        assert _sign_in_form(expired)
        assert alerts(expired, "error")[0].startswith("로그인 데이터베이스를 사용할 수 없습니다")  # says why
        at.session_state[GRACE_KEY] = limits
    at.run()  # the database is back: checked again, nothing lost, no notice
    assert not at.exception and at.session_state["user"] == "kim"
    assert at.text_area(key="symptoms").value == typed
    assert TABLES["ko"]["auth.store_down_grace"] not in [w.value for w in at.warning]


def _sign_in_form(at: AppTest) -> bool:
    return any(w.key == "login_name" for w in at.text_input)


def test_the_history_and_jobs_pages_say_the_database_is_down(on_postgres, postgres_server):
    at = AppTest.from_file(APP, default_timeout=30).run()
    with down(postgres_server, on_postgres):
        at.switch_page("app_pages/history.py").run()
        assert not at.exception
        assert alerts(at, "error") == [TABLES["ko"]["store.down"]]
        at.switch_page("app_pages/jobs.py").run()
        assert not at.exception
        korean = TABLES["ko"]
        assert plain_alerts(at, "error") == [korean["job.store_down"].format(store=korean["word.job_store.database"])]
        assert str(JobStoreUnavailable("database")).startswith("Background jobs are unavailable: the database that")


def test_the_job_store_raises_its_own_error_and_a_start_waits_for_the_database(postgres_url, postgres_server):
    store = Store(postgres_url)
    try:
        jobs = SqlJobStore(store, lease_seconds=None, poll_seconds=0.1)
        left = jobs.add(_request())
        with down(postgres_server, postgres_url):
            starting = SqlJobStore(store, lease_seconds=None, poll_seconds=0.1)
            assert starting.recover() == 0  # logged, not raised: the app still starts
            for call in (lambda: starting.list(), starting.counts, lambda: starting.add(_request()),
                         starting.next_job):
                with pytest.raises(JobStoreUnavailable, match="database"):
                    call()
        assert starting.next_job() is None  # the recovery ran first, once the database was back
        assert starting.get(left).status == "interrupted"
    finally:
        store.dispose()


def _request() -> DiagnosisRequest:
    return DiagnosisRequest(text="nodule", language="en")


def _diagnosis() -> Diagnosis:
    return Diagnosis(answer=parse_answer(VALID), provider="runpod", model="clinic-derm-v1", raw=VALID,
                     elapsed_ms=12.0)




def test_a_job_that_ends_while_the_database_is_down_is_recorded_done_once_it_is_back(postgres_url, postgres_server):
    # Jobs on PostgreSQL shared by servers (leases), no Redis: the answer comes while the database is down.
    store = Store(postgres_url)
    asked, answer = threading.Event(), threading.Event()

    def slow_diagnose(request: DiagnosisRequest) -> Diagnosis:
        asked.set()
        answer.wait(30)
        return _diagnosis()

    jobs = SqlJobStore(store, lease_seconds=0.6, poll_seconds=0.1)
    tried = watch_finish(jobs)
    runner = JobRunner(jobs, slow_diagnose, workers=1)
    try:
        job_id = runner.submit(_request())
        assert asked.wait(30)
        with down(postgres_server, postgres_url):
            answer.set()
            assert tried.wait(30)  # the worker's finish found the database gone
            time.sleep(0.7)  # the job's lease runs out meanwhile
        job = wait_until(lambda: (found := runner.get(job_id)) and found.status != RUNNING and found)
        assert job.status == DONE and job.result is not None and job.result.raw == VALID and job.error is None
    finally:
        runner.shutdown(wait=True)
        store.dispose()


def test_after_an_outage_a_server_waits_a_lease_before_taking_another_ones_jobs_for_dead(postgres_url,
                                                                                         postgres_server, clock):
    store = Store(postgres_url)
    try:
        alive = SqlJobStore(store, lease_seconds=0.5, poll_seconds=0.1)
        keeper = SqlJobStore(store, lease_seconds=0.5, poll_seconds=0.1, clock=clock)  # another server's keeper
        job_id = alive.add(_request())
        assert alive.next_job() == job_id and alive.claim(job_id)
        with down(postgres_server, postgres_url):
            with pytest.raises(JobStoreUnavailable):
                keeper.upkeep()
            with pytest.raises(JobStoreUnavailable):
                alive.finish(job_id, DONE, result=_diagnosis())
            time.sleep(0.6)  # every lease runs out: nobody could renew one
        assert keeper.reap() == 0  # not yet: `alive` could not renew its lease either, and holds the answer
        assert alive.finish(job_id, DONE, result=_diagnosis()) and keeper.get(job_id).status == DONE
        dead = SqlJobStore(store, lease_seconds=0.5, poll_seconds=0.1)
        lost = dead.add(_request())
        assert dead.next_job() == lost and dead.claim(lost)
        time.sleep(0.6)  # `dead` stopped renewing
        clock.now += 0.5  # a lease after the database came back: a process that is gone is taken for gone
        assert keeper.reap() == 1 and keeper.get(lost).status == INTERRUPTED
    finally:
        store.dispose()
