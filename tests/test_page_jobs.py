"""The Jobs page and the diagnose page's 'Run in background', through AppTest."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import startup
from testkit.fake_llm import Reply
from tests.app_scripts import APP, wait_done
from tests.page_text import alerts

# Every test here runs with jobs in the store, then in Redis (the `jobs_backend` fixture of tests/conftest.py).
pytestmark = pytest.mark.usefixtures("jobs_backend")


def test_run_in_background_then_read_the_result_in_jobs(engine_env):
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.text_area(key="symptoms").input("pearly papule beside the nose").run()
    at.button(key="submit_job").click().run()
    assert not at.exception and not at.error
    job_id = at.session_state["last_job"]
    wait_done(job_id)
    at.switch_page("app_pages/jobs.py").run()
    assert not at.exception
    assert at.selectbox(key="jobs_pick").value == job_id
    assert any("기저세포암 · Basal cell carcinoma" in m.value for m in at.markdown)
    assert at.query_params["job"] in (job_id, [job_id])


def test_background_job_with_no_input_is_refused_at_once(engine_env):
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.button(key="submit_job").click().run()
    assert "병변 사진" in alerts(at, "error")[0]
    assert startup.get_engine().jobs.list() == []


def test_failed_job_explains_and_runs_again(engine_env):
    engine_env.script(Reply.error(503), Reply.error(503))
    engine = startup.get_engine()
    job_id = engine.jobs.submit(engine.make_request("ulcerated nodule"))
    wait_done(job_id)
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.switch_page("app_pages/jobs.py").run()
    assert "HTTP 503" in alerts(at, "error")[0]
    at.button(key=f"jobs_rerun_{job_id}").click().run()
    new_id = at.query_params["job"]
    new_id = new_id[0] if isinstance(new_id, list) else new_id
    assert new_id != job_id
    wait_done(new_id)
    assert engine.jobs.get(new_id).status == "done"


def test_jobs_page_without_jobs(engine_env):
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.switch_page("app_pages/jobs.py").run()
    assert not at.exception and "No jobs yet" in at.info[0].value or "아직 작업이 없습니다" in at.info[0].value


def test_a_link_to_a_missing_job_shows_no_case_and_keeps_the_url(engine_env):
    engine = startup.get_engine()
    own = engine.jobs.submit(engine.make_request("pearly papule beside the nose"))
    wait_done(own)
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.switch_page("app_pages/jobs.py")
    at.query_params["job"] = "no-such-job"
    at.run()
    assert not at.exception
    assert "no-such-job" in alerts(at, "warning")[0]
    # Not the reader's newest job in the linked one's place: nothing picked, no card, the URL as opened.
    assert at.selectbox(key="jobs_pick").value is None
    assert not any("Basal cell carcinoma" in m.value for m in at.markdown)
    assert at.query_params["job"] in ("no-such-job", ["no-such-job"])
    # Picking a job of one's own then shows it and the URL follows.
    at.selectbox(key="jobs_pick").select(own).run()
    assert any("기저세포암 · Basal cell carcinoma" in m.value for m in at.markdown)
    assert at.query_params["job"] in (own, [own]) and not alerts(at, "warning")


def test_a_link_to_an_own_job_beyond_the_list_opens_it(engine_env, monkeypatch):
    engine = startup.get_engine()
    old = engine.jobs.submit(engine.make_request("pearly papule beside the nose"))
    wait_done(old)
    monkeypatch.setattr(engine.jobs, "list", lambda **kw: [])  # as if 200 newer jobs pushed it off the list
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.switch_page("app_pages/jobs.py")
    at.query_params["job"] = old
    at.run()
    assert not at.exception and not alerts(at, "warning")
    assert at.selectbox(key="jobs_pick").value == old
    assert any("기저세포암 · Basal cell carcinoma" in m.value for m in at.markdown)


def test_an_administrator_sees_whose_each_job_is_and_every_provider_by_its_title(engine_env):
    engine = startup.get_engine()
    job_id = engine.jobs.submit(engine.make_request("pearly papule beside the nose", user="dr.kim"))
    wait_done(job_id)
    at = AppTest.from_file(APP, default_timeout=20)
    at.session_state["is_admin"] = True
    at.run()
    at.switch_page("app_pages/jobs.py").run()
    table = at.dataframe[0].value  # the job list (a table with no selection has no key in AppTest)
    assert list(table["사용자"]) == ["dr.kim"] and list(table["제공자"]) == ["RunPod"]  # not "runpod"
    at.session_state["is_admin"] = False  # a clinician's list is her own: no column for whose
    at.run()
    assert "사용자" not in at.dataframe[0].value.columns
