"""The operators' endpoints: /healthz, /readyz and /metrics.

Most tests call the routes of `web.routes` in a Starlette app through `TestClient` (fast), with the engine
pointed at the fake LLM; Redis is a real `redis-server`, stopped to take it down. One test starts the real
server (`streamlit run app.py`) and asks it the three routes.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.testclient import TestClient

import startup
import web.readiness
from domain.errors import ProviderAuthError
from domain.jobs import RUNNING
from startup import diagnose
from testkit.answers import BENIGN, TRUNCATED, VALID
from testkit.app_server import app_env, serve_app
from testkit.corpus import plain_jpeg
from testkit.fake_llm import Reply
from tests.conftest import OPENAI_KEY, OPENAI_MODEL, RUNPOD_KEY, RUNPOD_MODEL
from tests.waiting import wait_until
from web.routes import routes

SECRET_TEXT = "Quimby-Lovelace papule behind the left ear"


@pytest.fixture
def client(request):
    """The operators' routes; with `engine_env`, its store first brought to the newest migration, as the app's start
    does (app.py). Otherwise a test's first /readyz migrated a new store inside the check's 2 s bound, which a loaded
    machine can pass, and the check then reported its own start-up instead of the store."""
    if "engine_env" in request.fixturenames:
        request.getfixturevalue("engine_env")
        startup.get_store().migrate()
    with TestClient(Starlette(routes=routes())) as test_client:
        yield test_client


def checks(response) -> dict[str, dict]:
    return {c["name"]: c for c in response.json()["checks"]}


def scrape(client, **headers) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def by_model(fake, replies: dict[str, Reply]) -> None:
    fake.responder = lambda request: replies.get(request.body.get("model"))


# -- /healthz -------------------------------------------------------------------------------------

def test_healthz_answers_without_auth_or_io(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


# -- /readyz --------------------------------------------------------------------------------------

def test_readyz_is_ready_and_lists_every_check_without_secrets(engine_env, client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and list(checks(response)) == ["store", "providers", "redis", "audit"]
    found = checks(response)
    assert found["store"] == {"name": "store", "ok": True, "detail": "writable"}
    assert found["redis"]["ok"] and "not set" in found["redis"]["detail"]
    assert {p["name"]: (p["circuit"], p["usable"]) for p in found["providers"]["providers"]} == {
        "runpod": ("closed", True), "openai": ("closed", True)}
    assert response.headers["cache-control"] == "no-store"
    for secret in (RUNPOD_KEY, OPENAI_KEY, engine_env.url, str(engine_env.port)):
        assert secret not in response.text


def test_readyz_leaves_nothing_in_the_store(engine_env, reconfigure, client, database_url):
    reconfigure(DATABASE_URL=database_url)
    # The first probe of a fresh database may take past its 2 s on a busy machine (a 503, as it should): ask again.
    response = wait_until(lambda: (r := client.get("/readyz")).status_code == 200 and r, seconds=30)
    store = startup.get_store()
    assert checks(response)["store"]["detail"] == ("writable" if store.dialect == "sqlite" else "answers")
    assert "readiness_probe" not in sa.inspect(store.engine).get_table_names()
    with store.connect() as conn:  # the probe's own busy wait did not stay on the pooled connection
        if store.dialect == "sqlite":
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == int(store.timeout_seconds * 1000)


def test_readyz_is_503_when_postgresql_is_down_or_slow(engine_env, reconfigure, client, postgres_url,
                                                       postgres_server, monkeypatch):
    reconfigure(DATABASE_URL=postgres_url)
    # Ready once the pool's first connection is made (on a loaded machine the very first may pass 1 s: "slow").
    assert wait_until(lambda: client.get("/readyz").status_code == 200)
    monkeypatch.setattr(web.readiness, "STORE_SLOW_SECONDS", -1.0)  # any answer is too slow
    slow = checks(client.get("/readyz"))["store"]
    assert not slow["ok"] and slow["detail"].startswith("slow (SELECT 1 took ")
    monkeypatch.setattr(web.readiness, "STORE_SLOW_SECONDS", 1.0)
    postgres_server.stop()
    try:
        response = client.get("/readyz")
    finally:
        postgres_server.start()
    assert response.status_code == 503
    assert checks(response)["store"] == {"name": "store", "ok": False, "detail": "down (StoreUnavailable)"}
    assert postgres_url not in response.text and str(postgres_server.port) not in response.text
    assert wait_until(lambda: client.get("/readyz").status_code == 200)  # back on its own, once reconnected


def test_readyz_is_503_when_the_store_cannot_take_a_write(engine_env, reconfigure, client, tmp_path):
    not_a_folder = tmp_path / "data-is-a-file"
    not_a_folder.write_text("DATA_DIR must be a folder")
    reconfigure(DATA_DIR=not_a_folder)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["status"] == "not ready"
    store = checks(response)["store"]
    assert not store["ok"] and store["detail"].startswith("not writable (")
    assert str(tmp_path) not in response.text  # an error class, never a path


def test_readyz_is_503_when_data_dir_is_full_although_a_rolled_back_write_passes(engine_env, reconfigure, client,
                                                                                tmp_path, monkeypatch):
    # A full disk: SQLite's rolled-back probe needs no new page and passes, while every history row fails.
    # The free-space probe is the seam (a loop-mounted or tmpfs disk is not available to the tests).
    reconfigure(DATA_DIR=tmp_path / "data")
    asked: list[Path] = []

    def full(path: Path) -> int:
        asked.append(path)
        return web.readiness.DATA_DIR_FLOOR_BYTES - 1

    monkeypatch.setattr(web.readiness, "free_bytes", full)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["status"] == "not ready"
    store = checks(response)["store"]
    assert not store["ok"] and store["detail"].startswith("DATA_DIR is nearly full (63 MB free, 64 MB needed)")
    assert asked == [(tmp_path / "data").resolve()] and str(tmp_path) not in response.text
    monkeypatch.setattr(web.readiness, "free_bytes", lambda path: web.readiness.DATA_DIR_FLOOR_BYTES)
    assert client.get("/readyz").status_code == 200  # space freed: ready again


def test_readyz_is_503_while_the_only_provider_cools_down_and_ready_again_after(engine_env, reconfigure, client,
                                                                                health_clock):
    reconfigure(OPENAI_API_KEY=None, HEALTH_COOLDOWN_SECONDS="0.5")
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    health = startup.get_engine().health["runpod"]
    for _ in range(3):  # HEALTH_FAILURES failures in a row open the circuit
        health.failure()
    response = client.get("/readyz")
    assert response.status_code == 503
    found = checks(response)["providers"]
    assert not found["ok"] and "cooling down" in found["detail"]
    assert found["providers"] == [{"name": "runpod", "circuit": "open", "usable": False,
                                   "retry_in_seconds": pytest.approx(0.5, abs=0.2)}]
    health_clock.now += 0.6  # nobody sends a case meanwhile: readiness must come back on its own, for the probe
    # to follow
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert checks(response)["providers"]["providers"][0]["usable"]


def test_readyz_is_ready_while_one_of_two_providers_is_open(engine_env, client):
    health = startup.get_engine().health["runpod"]
    for _ in range(3):
        health.failure()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert checks(response)["providers"]["detail"] == "1 of 2 configured providers usable"


def test_readyz_is_503_without_a_configured_provider_unless_in_demo_mode(engine_env, reconfigure, client):
    reconfigure(RUNPOD_API_KEY=None, OPENAI_API_KEY=None)
    response = client.get("/readyz")
    assert response.status_code == 503 and "no provider is configured" in checks(response)["providers"]["detail"]
    reconfigure(DEMO_MODE="true")  # pinned answers only: no provider is asked
    assert client.get("/readyz").status_code == 200


def test_readyz_stays_ready_and_says_degraded_while_redis_is_down(engine_env, reconfigure, client, redis_server):
    # Redis is optional for answering and recording: a blip must not take every server out of rotation.
    reconfigure(REDIS_URL=redis_server.url)
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["status"] == "ready"
    assert checks(response)["redis"] == {"name": "redis", "ok": True, "detail": "answers"}
    redis_server.stop()
    try:
        started = time.monotonic()
        response = client.get("/readyz")
        assert time.monotonic() - started < web.readiness.CHECK_SECONDS + 1
        assert response.status_code == 200 and response.json()["status"] == "degraded"
        redis = checks(response)["redis"]
        assert redis["ok"] and redis["degraded"] and redis["detail"].startswith("no answer (")
        assert "background jobs cannot be submitted" in redis["detail"]
        assert "assessments still answer and are recorded" in redis["detail"]
        assert str(redis_server.port) not in response.text
        assert checks(response)["store"]["ok"] and checks(response)["providers"]["ok"]
        assert diagnose(text="scaly patch, Redis down", use_cache=True).assessment_id  # answered and recorded
    finally:
        redis_server.start()
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["status"] == "ready"


def test_readyz_stays_ready_while_redis_hangs(engine_env, reconfigure, client):
    # A Redis that accepts connections and never answers (hung, or restarting and loading its data).
    with socket.create_server(("127.0.0.1", 0)) as hung:
        reconfigure(REDIS_URL=f"redis://:s3cret-pass@127.0.0.1:{hung.getsockname()[1]}/0")
        response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["status"] == "degraded"
    redis = checks(response)["redis"]
    assert redis["ok"] and redis["degraded"] and redis["detail"].startswith("no answer (")
    assert "s3cret-pass" not in response.text


def test_readyz_never_hangs_and_starts_no_second_thread_for_a_check_still_running(engine_env, client,
                                                                                monkeypatch):
    monkeypatch.setattr(web.readiness, "CHECK_SECONDS", 0.3)
    release, calls = threading.Event(), []

    def stuck() -> web.readiness.Check:
        calls.append(1)
        release.wait(10)
        return web.readiness.Check("store", True, "writable")

    monkeypatch.setattr(web.readiness, "store_writable", stuck)
    try:
        started = time.monotonic()
        first = client.get("/readyz")
        assert time.monotonic() - started < 2
        assert first.status_code == 503 and checks(first)["store"]["detail"] == "no answer within 0.3 s"
        second = client.get("/readyz")
        assert second.status_code == 503
        assert checks(second)["store"]["detail"] == "the previous check has not finished yet"
        assert len(calls) == 1
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the store check did not come back once its thread finished"
        time.sleep(0.05)


# -- /metrics -------------------------------------------------------------------------------------

def test_metrics_count_every_assessment_with_its_labels(engine_env, client):
    engine = startup.get_engine()
    before = scrape(client)
    assert value(before, "skinai_assessments_total", provider="runpod", kind="text", outcome="answered",
                 source="page") == 0
    diagnose(text=SECRET_TEXT)  # answered by RunPod
    diagnose(text=SECRET_TEXT)  # the same case again: from the cache
    engine.diagnose(engine.make_request(text="another case", source="api", use_cache=False))
    engine_env.script(Reply(TRUNCATED))
    engine.diagnose(engine.make_request(text="cut short", source="cli"))
    engine_env.script(Reply.error(401))
    with pytest.raises(ProviderAuthError):
        diagnose(text="refused")
    diagnose(image=plain_jpeg())
    after = scrape(client)

    def assessments(outcome: str, source: str = "page") -> float:
        return value(after, "skinai_assessments_total", provider="runpod", kind="text", outcome=outcome,
                     source=source)

    assert assessments("answered") == 1 and assessments("cached") == 1 and assessments("answered", "api") == 1
    assert assessments("incomplete", "cli") == 1 and assessments("failed_auth") == 1
    assert value(after, "skinai_assessments_total", provider="runpod", kind="image", outcome="answered",
                 source="page") == 1
    assert value(after, "skinai_cache_hits_total", kind="text") == 1
    assert value(after, "skinai_assessment_seconds_count", kind="text", outcome="answered") == 2
    assert value(after, "skinai_assessment_seconds_bucket", kind="text", outcome="answered", le="60.0") == 2
    assert value(after, "skinai_first_token_seconds_count", provider="runpod", kind="text") == 3  # not the cached
    assert value(after, "skinai_hedges_total", kind="text") == 0
    assert value(after, "skinai_fallbacks_total", kind="text") == 0
    for provider in ("runpod", "openai"):
        assert value(after, "skinai_provider_circuit_state", provider=provider) == 0
    assert value(after, "skinai_jobs_queued") == 0 and value(after, "skinai_jobs_running") == 0
    assert value(after, "skinai_api_slots") >= 1 and value(after, "skinai_api_waiting") == 0  # the fair-share gate
    text = client.get("/metrics").text
    assert SECRET_TEXT not in text and RUNPOD_KEY not in text


def test_metrics_count_hedges_and_fallbacks(engine_env, reconfigure, client):
    # 1 s: the refusal (answered at once) comes before any hedge even on a loaded machine, and the 3 s answer after.
    reconfigure(PROVIDER_FALLBACKS="runpod,openai", HEDGE_AFTER_SECONDS="1")
    by_model(engine_env, {RUNPOD_MODEL: Reply.error(401)})
    assert diagnose(text="falls back").fallback
    by_model(engine_env, {RUNPOD_MODEL: Reply(VALID, delay=3), OPENAI_MODEL: Reply(BENIGN)})
    assert diagnose(text="hedged").hedged
    samples = scrape(client)
    assert value(samples, "skinai_fallbacks_total", kind="text") == 1
    assert value(samples, "skinai_hedges_total", kind="text") == 1
    assert value(samples, "skinai_assessments_total", provider="openai", kind="text", outcome="answered",
                 source="page") == 2
    assert value(samples, "skinai_first_token_seconds_count", provider="openai", kind="text") == 2


def test_metrics_count_demo_replays(engine_env, reconfigure, client):
    live = diagnose(text="demo case")
    startup.get_engine().history.pin(live.assessment_id)
    reconfigure(DEMO_MODE="true")
    assert diagnose(text="demo case").replayed
    samples = scrape(client)  # a new engine (reconfigured): its figures start from zero
    assert value(samples, "skinai_assessments_total", provider="runpod", kind="text", outcome="replayed",
                 source="page") == 1
    assert value(samples, "skinai_cache_hits_total", kind="text") == 0


def test_metrics_show_an_open_circuit(engine_env, client):
    health = startup.get_engine().health["openai"]
    for _ in range(3):
        health.failure()
    samples = scrape(client)
    assert value(samples, "skinai_provider_circuit_state", provider="openai") == 1
    assert value(samples, "skinai_provider_circuit_state", provider="runpod") == 0


def test_metrics_read_jobs_queued_and_running_when_scraped(engine_env, reconfigure, client):
    reconfigure(JOB_WORKERS="1")
    engine = startup.get_engine()
    engine_env.script(Reply(VALID, delay=1.5))
    first = engine.jobs.submit(engine.make_request(text="job one"))
    second = engine.jobs.submit(engine.make_request(text="job two"))
    deadline = time.monotonic() + 5
    while engine.jobs.get(first).status != RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    samples = scrape(client)
    assert value(samples, "skinai_jobs_running") == 1 and value(samples, "skinai_jobs_queued") == 1
    for job_id in (first, second):
        while not engine.jobs.get(job_id).finished:
            assert time.monotonic() < deadline + 10
            time.sleep(0.02)
    samples = scrape(client)
    assert value(samples, "skinai_jobs_running") == 0 and value(samples, "skinai_jobs_queued") == 0
    assert value(samples, "skinai_assessments_total", provider="runpod", kind="text", outcome="answered",
                 source="job") == 2


def test_metrics_still_answer_when_the_job_store_is_down(engine_env, reconfigure, client,
                                                          redis_server):
    reconfigure(REDIS_URL=redis_server.url)
    assert "skinai_jobs_queued" in client.get("/metrics").text
    redis_server.stop()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "skinai_provider_circuit_state" in response.text and "skinai_jobs_queued" not in response.text


def test_a_failing_observer_never_fails_a_case(engine_env):
    class Broken:
        def observe(self, *args) -> None:
            raise RuntimeError("metrics backend gone")

    startup.get_engine().recorder.observer = Broken()
    assert diagnose(text="still answered").complete


def test_metrics_token_guards_metrics_only(engine_env, reconfigure, client):
    token = "metrics-token-not-real-0123456789"
    reconfigure(METRICS_TOKEN=token)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"},
                    {"Authorization": f"Bearer {token}x"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "unauthorized" and token not in response.text
    assert "skinai_provider_circuit_state" in client.get("/metrics",
                                                           headers={"Authorization": f"Bearer {token}"}).text
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


def test_metrics_are_open_without_a_token(engine_env, client):
    assert client.get("/metrics").status_code == 200


# -- the real server ------------------------------------------------------------------------------

def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_the_real_server_serves_health_readiness_and_metrics(fake_llm, tmp_path):
    env = app_env(RUNPOD_API_KEY="rpa-ops-test", RUNPOD_BASE_URL=fake_llm.url, RUNPOD_MODEL_NAME="clinic-derm-v1",
                  DATA_DIR=str(tmp_path / "data"), AUTH_MODE="off", METRICS_TOKEN="scrape-me")
    with serve_app(env, tmp_path) as base:
        assert _get(f"{base}/healthz")[2] == '{"status":"ok"}'
        deadline = time.monotonic() + 60
        while (ready := _get(f"{base}/readyz"))[0] != 200:  # the first call builds the engine
            assert time.monotonic() < deadline, ready
            time.sleep(0.2)
        assert ready[1].startswith("application/json") and '"runpod"' in ready[2]
        assert _get(f"{base}/metrics")[0] == 401
        status, content_type, text = _get(f"{base}/metrics", {"Authorization": "Bearer scrape-me"})
        assert status == 200 and content_type.startswith("text/plain")
        assert 'skinai_provider_circuit_state{provider="runpod"} 0.0' in text
        assert "skinai_jobs_queued 0.0" in text
        # Raw Korean in the URL, as `curl "$API/analyses/search?query=구진"` sends it: the HTTP parser refuses it
        # before any route runs, and the refusal is the API's JSON all the same (it was uvicorn's text/plain).
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            raw.sendall("GET /api/v1/analyses/search?query=구진 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            answer = b""
            while chunk := raw.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400") and b"content-type: application/json" in head.lower(), head
        assert json.loads(body)["error"] == "bad_request" and "--data-urlencode" in json.loads(body)["detail"]


def test_a_malformed_url_port_names_the_variable_and_the_server_still_starts(fake_llm, tmp_path):
    # It was a 28-40 line traceback, a server that did not start, or a 500 on every API call.
    env = app_env(RUNPOD_API_KEY="rpa-ops-test", RUNPOD_BASE_URL=fake_llm.url, RUNPOD_MODEL_NAME="clinic-derm-v1",
                  DATA_DIR=str(tmp_path / "data"), AUTH_MODE="off", REDIS_URL="redis://:hunter2-pw@cache:abc/0")
    with serve_app(env, tmp_path) as base:
        status, _, body = _get(f"{base}/readyz")
        assert status == 503 and '"error":"settings"' in body
        request = urllib.request.Request(f"{base}/api/v1/diagnose/skin-lesion", method="POST",
                                         data=b'{"lesion_description": "papule"}',
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": "Bearer any-token"})
        try:
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as error:
            answer = (error.code, error.read().decode())
        assert answer[0] == 503 and '"error":"settings"' in answer[1] and "Traceback" not in answer[1]
    log = (tmp_path / "streamlit.log").read_text()
    named = [line for line in log.splitlines() if "REDIS_URL cannot be used: its port is not a number" in line]
    assert named and "redis://:***@cache:abc/0" in named[0]
    assert "hunter2-pw" not in log and "Traceback" not in log


def test_an_audit_trail_that_falls_behind_degrades_readiness_and_its_misses_are_counted(engine_env, client,
                                                                                          monkeypatch):
    # The audit write never stops an assessment (issue 23): readiness says degraded, the misses show on /metrics.
    response = client.get("/readyz")
    assert checks(response)["audit"] == {"name": "audit", "ok": True, "detail": "recording"}
    trail = startup.audit()
    monkeypatch.setattr(trail, "counts", lambda: {"written": 3, "failed": 2, "pending": 5000})
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["status"] == "degraded"
    audit = checks(response)["audit"]
    assert audit["ok"] and audit["degraded"] and audit["detail"].startswith("5000 events waiting")
    assert "assessments still answer and are recorded" in audit["detail"]
    figures = scrape(client)
    assert figures[("skinai_audit_events_failed_total", frozenset())] == 2
    assert figures[("skinai_audit_events_pending", frozenset())] == 5000
