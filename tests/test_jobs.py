"""Background jobs: submitted, run in a bounded pool, kept in the store across restarts."""

from __future__ import annotations

import threading

import pytest

import startup
from domain.jobs import DONE, FAILED, INTERRUPTED, QUEUED
from testkit.corpus import plain_jpeg
from testkit.fake_llm import Reply
from tests.app_scripts import wait_for

# Every test here runs with jobs in the store, then in Redis (the `jobs_backend` fixture of tests/conftest.py).
pytestmark = pytest.mark.usefixtures("jobs_backend")


def test_a_job_runs_in_the_background_and_keeps_its_result(engine_env):
    engine = startup.get_engine()
    job_id = engine.jobs.submit(engine.make_request("pearly papule", plain_jpeg(), language="en"))
    job = wait_for(engine.jobs, job_id)
    assert job.status == DONE and job.kind == "image" and job.elapsed_ms > 0
    assert job.result.label.lesion.code == 1 and job.result.provider == "runpod"
    assert engine.history.get(job.result.assessment_id)["source"] == "job"
    # A new process (a reload, a new tab, a restart) reads the same job back from the store.
    startup.reset_engine()
    again = startup.get_engine().jobs.get(job_id)
    assert again.status == DONE and again.result.raw == job.result.raw


def test_a_job_from_the_api_is_recorded_as_the_apis(engine_env):
    engine = startup.get_engine()
    job = wait_for(engine.jobs, engine.jobs.submit(engine.make_request("pearly papule", source="api")))
    assert engine.history.get(job.result.assessment_id)["source"] == "api"


def test_a_failed_job_says_why(engine_env):
    engine_env.script(Reply.error(401))
    engine = startup.get_engine()
    job = wait_for(engine.jobs, engine.jobs.submit(engine.make_request("papule")))
    assert job.status == FAILED and "RUNPOD_API_KEY" in job.error and job.result is None


def test_several_jobs_run_at_once(engine_env, reconfigure):
    reconfigure(JOB_WORKERS="4")
    content = engine_env.default.content
    # Each call is answered only once all four are in flight: jobs run one after another would leave the first
    # waiting alone until the barrier breaks, and it would fail (no clock involved).
    together = threading.Barrier(4, timeout=20)

    def answer_together(request):
        together.wait()
        return Reply(content)
    engine_env.responder = answer_together
    engine = startup.get_engine()
    ids = [engine.jobs.submit(engine.make_request(f"case {n}")) for n in range(4)]
    assert all(wait_for(engine.jobs, i).status == DONE for i in ids)


def test_jobs_left_running_by_a_restart_are_interrupted_and_can_run_again(engine_env):
    engine = startup.get_engine()
    engine_env.default = Reply(hang=True)
    job_id = engine.jobs.submit(engine.make_request("nodule", plain_jpeg()))
    engine_env.wait_for_requests(1)
    assert engine.jobs.get(job_id).status in (QUEUED, "running")
    startup.reset_engine()  # the app restarts
    jobs = startup.get_engine().jobs
    interrupted = jobs.get(job_id)
    assert interrupted.status == INTERRUPTED and "restarted" in interrupted.error
    # Only now may the provider answer: closing the old engine broke its hung call, and a retry that found an
    # answer already would have finished the old job before the new engine looked (a busy machine did that).
    from testkit.answers import VALID
    engine_env.default = Reply(VALID)
    again = wait_for(jobs, jobs.rerun(job_id))
    assert again.status == DONE and again.kind == "image" and again.text == "nodule"


def test_jobs_list_newest_first_and_per_user(engine_env):
    engine = startup.get_engine()
    from dataclasses import replace
    first = engine.jobs.submit(replace(engine.make_request("one"), user="kim"))
    second = engine.jobs.submit(replace(engine.make_request("two"), user="lee"))
    wait_for(engine.jobs, first), wait_for(engine.jobs, second)
    assert [j.id for j in engine.jobs.list()] == [second, first]
    assert [j.id for j in engine.jobs.list(user="kim")] == [first]


def test_jobs_are_sealed_at_rest_with_a_key(engine_env, reconfigure):
    from cryptography.fernet import Fernet

    reconfigure(DATA_ENCRYPTION_KEY=Fernet.generate_key().decode())
    engine = startup.get_engine()
    secret = "Quimby-Lovelace lesion behind the left ear"
    job = wait_for(engine.jobs, engine.jobs.submit(engine.make_request(secret, plain_jpeg())))
    assert job.status == DONE and job.text == secret and job.result.label is not None
    assert engine.jobs.request_of(job.id).image is not None
    stored = b"".join(path.read_bytes() for path in engine.settings.data_dir.rglob("*") if path.is_file())
    assert secret.encode() not in stored and b"Quimby" not in stored
