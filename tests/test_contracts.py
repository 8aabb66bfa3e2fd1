"""One contract per twin backend, checked against each: the SQL job store (on SQLite and on PostgreSQL) and the
Redis one (and the one runner over them), disk and Redis answer caches, and the history's figures kept in the
store (SQLite or PostgreSQL) or pushed to Redis.

The Redis side is a real `redis-server` (testkit/redis_server.py), the PostgreSQL side a real throw-away cluster
(testkit/postgres.py); each test gets an empty one. No engine and no provider here: the runner is handed a plain
`diagnose` callable.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
import redis
import sqlalchemy as sa
from cryptography.fernet import Fernet
from streamlit.testing.v1 import AppTest

import startup
from domain.errors import DiagnosisError, InputError
from domain.jobs import DONE, FAILED, INTERRUPTED, QUEUED, RUNNING, UNREADABLE, JobUnreadable
from domain.locales import TABLES
from domain.parser import parse_answer
from domain.request import DiagnosisRequest, PatientInfo
from domain.result import Diagnosis, Usage
from engine.jobs import JobRunner
from storage.cache.disk import DiskAnswerCache
from storage.cache.redis import RedisAnswerCache
from storage.history import History
from storage.jobs import PROCESS_GONE
from storage.jobs.redis import RedisJobStore
from storage.jobs.sql import SqlJobStore
from storage.metrics import figures as metrics
from storage.metrics.redis import MetricsFeed
from storage.redis_client import Breaker, connect
from storage.schema import jobs
from storage.store import Store
from testkit.answers import VALID
from tests.app_scripts import APP, wait_done
from tests.page_text import alerts
from tests.waiting import wait_until
from utils.crypto import Sealer
from utils.images import ShrunkImage

PHOTO = ShrunkImage(jpeg=b"\xff\xd8\xff-photo-bytes", width=512, height=384, original_width=4032,
                    original_height=3024, original_bytes=3_100_000, original_format="JPEG", removed=("gps",))
SECRET = "Quimby-Lovelace lesion behind the left ear"


def request(text: str = SECRET, *, user: str | None = "kim", image: ShrunkImage | None = PHOTO) -> DiagnosisRequest:
    return DiagnosisRequest(text=text, image=image, info=PatientInfo(age=61, sex="female", body_site="ear"),
                            language="en", provider="runpod", use_cache=True, fallback=False, user=user,
                            source="job")


def diagnosis(provider: str = "runpod") -> Diagnosis:
    return Diagnosis(answer=parse_answer(VALID), provider=provider, model="clinic-derm-v1", raw=VALID,
                     elapsed_ms=12.0, usage=Usage(100, 50))




# -- job stores ----------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def job_stores(request, tmp_path):
    """`make(sealer=None, lease_seconds=...)`: a job store of this kind; several share one database (or Redis),
    as the processes of one deployment do. SQLite is one machine's (no leases), as the app runs it; PostgreSQL
    is shared by several servers (leases), as the app runs it."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url

        def make(sealer: Sealer | None = None, lease_seconds: float = 15.0):
            return RedisJobStore.from_url(url, sealer=sealer, retention_seconds=3600, lease_seconds=lease_seconds,
                                          poll_seconds=0.1)
        make.url = url
    else:
        shared = request.param == "postgresql"
        store = Store(request.getfixturevalue("postgres_url") if shared else tmp_path / "app.db")
        request.addfinalizer(store.dispose)

        def make(sealer: Sealer | None = None, lease_seconds: float = 15.0):
            return SqlJobStore(store, sealer=sealer, poll_seconds=0.1, lease_seconds=lease_seconds if shared else None)
        make.store = store
    make.kind = request.param
    make.leases = request.param != "sqlite"
    return make


def test_a_job_is_recorded_queued_and_its_request_comes_back_whole(job_stores):
    store = job_stores()
    job_id = store.add(request())
    job = store.get(job_id)
    assert job.status == QUEUED and not job.finished and job.kind == "image" and job.provider == "runpod"
    assert job.text == SECRET and job.user == "kim" and job.result is None and not job.unreadable
    assert store.request_of(job_id) == request()  # text, info, language, provider, flags, user and the photo
    assert store.get("no-such-job") is None
    with pytest.raises(KeyError):
        store.request_of("no-such-job")


def test_jobs_list_newest_first_and_per_user(job_stores):
    store = job_stores()
    first = store.add(request("one", user="kim", image=None))
    time.sleep(0.01)
    second = store.add(request("two", user="lee", image=None))
    assert [j.id for j in store.list()] == [second, first]
    assert [j.id for j in store.list(user="kim")] == [first]
    assert [j.id for j in store.list(limit=1)] == [second]
    assert store.list(user="nobody") == []


def test_a_job_is_claimed_once_and_finished_only_while_running(job_stores):
    store = job_stores()
    job_id = store.add(request())
    assert store.next_job() == job_id and store.next_job() is None  # handed out once
    assert not store.finish(job_id, DONE, result=diagnosis())  # not running yet
    assert store.claim(job_id) and not store.claim(job_id)
    assert store.get(job_id).status == RUNNING
    assert store.finish(job_id, DONE, result=diagnosis(provider="openai"), elapsed_ms=42.0)
    assert not store.finish(job_id, FAILED, error="late")  # done stays done
    job = store.get(job_id)
    assert job.status == DONE and job.finished and job.elapsed_ms == 42.0 and job.error is None
    assert job.result.raw == VALID and job.provider == "openai"


def test_a_released_job_is_next_in_line_again(job_stores):
    store = job_stores()
    first, second = store.add(request("one")), store.add(request("two"))
    assert store.next_job() == first
    store.release(first)
    assert {store.next_job(), store.next_job()} == {first, second}


def test_a_job_whose_process_is_gone_is_interrupted_by_the_next_start(job_stores):
    gone = job_stores(lease_seconds=0.3)
    running, waiting = gone.add(request("running")), gone.add(request("waiting"))
    assert gone.next_job() == running and gone.claim(running)
    if job_stores.leases:  # the process died: nobody refreshes its lease (the server's clock: a real wait)
        time.sleep(0.4)
    # (SQLite: one machine's store, no lease; the process's memory is gone)
    store = job_stores()
    recovered = store.recover()
    if job_stores.leases:  # a queued job still in the shared line is not lost: some process runs it
        assert recovered == 1 and store.get(waiting).status == QUEUED
    else:  # one machine's store: whatever the last run left is interrupted
        assert recovered == 2 and store.get(waiting).status == INTERRUPTED
    interrupted = store.get(running)
    assert interrupted.status == INTERRUPTED and interrupted.error
    assert not gone.finish(running, DONE, result=diagnosis())  # a late finish leaves it interrupted
    assert store.get(running).status == INTERRUPTED


def test_a_start_interrupts_the_jobs_of_a_dead_process_and_never_those_of_a_live_one(store):
    # Two servers on one database, with leases (as on a shared PostgreSQL; the same rules on SQLite).
    live, dead = (SqlJobStore(store, poll_seconds=0.1, lease_seconds=0.6) for _ in range(2))
    kept, lost = live.add(request("kept")), dead.add(request("lost"))
    taken, waiting = dead.add(request("taken")), live.add(request("waiting"))
    assert live.next_job() == kept and live.claim(kept)
    assert dead.next_job() == lost and dead.claim(lost)
    assert dead.next_job() == taken  # taken from the line, never started
    assert SqlJobStore(store, lease_seconds=0.6).recover() == 0  # a third server starts: both others are alive
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:  # `live` renews its leases (as its keeper does); `dead` has stopped
        live.heartbeat()
        time.sleep(0.1)
    starting = SqlJobStore(store, lease_seconds=0.6)
    assert starting.recover() == 2
    assert starting.get(lost).status == starting.get(taken).status == INTERRUPTED
    assert starting.get(lost).error == PROCESS_GONE and starting.get(taken).error
    assert starting.get(kept).status == RUNNING and starting.get(waiting).status == QUEUED  # live, and in line
    assert not dead.finish(lost, DONE, result=diagnosis())  # a late finish leaves it interrupted
    assert live.finish(kept, DONE, result=diagnosis()) and starting.get(kept).status == DONE
    assert starting.next_job() == waiting and starting.claim(waiting)  # any server runs what is in line


def test_a_job_runs_on_whichever_process_takes_it(job_stores):
    submitter, worker = job_stores(), job_stores()  # a server with no workers, and one with
    job_id = submitter.add(request())
    assert worker.next_job() == job_id and worker.claim(job_id)
    assert not submitter.finish(job_id, DONE, result=diagnosis())  # only the process that claimed it
    assert worker.finish(job_id, DONE, result=diagnosis()) and submitter.get(job_id).status == DONE


def test_a_job_sealed_under_another_key_is_listed_with_the_error_in_both(job_stores):
    old_key = Fernet.generate_key().decode()
    writer = job_stores(sealer=Sealer(old_key))
    job_id = writer.add(request())
    assert writer.next_job() == job_id and writer.claim(job_id)
    assert writer.finish(job_id, DONE, result=diagnosis(), elapsed_ms=5.0)
    for reader in (job_stores(sealer=Sealer(Fernet.generate_key().decode())), job_stores()):  # another key; none
        (listed,) = reader.list()
        assert listed == reader.get(job_id)
        assert listed.id == job_id and listed.status == DONE and listed.unreadable
        assert listed.error == UNREADABLE and listed.text == "" and listed.result is None
        assert listed.provider == "runpod" and listed.user == "kim" and listed.elapsed_ms == 5.0
        with pytest.raises(JobUnreadable, match="DATA_ENCRYPTION_KEY"):
            reader.request_of(job_id)
    # With the key it was sealed with among the keys (a rotation), it reads again.
    rotated = job_stores(sealer=Sealer(f"{Fernet.generate_key().decode()},{old_key}"))
    assert rotated.get(job_id).text == SECRET and not rotated.get(job_id).unreadable


def test_a_job_is_sealed_at_rest(job_stores, tmp_path):
    store = job_stores(sealer=Sealer(Fernet.generate_key().decode()))
    job_id = store.add(request())
    assert store.next_job() == job_id and store.claim(job_id) and store.finish(job_id, DONE, result=diagnosis())
    if job_stores.kind == "sqlite":
        stored = b"".join(p.read_bytes() for p in tmp_path.rglob("app.db*"))
    elif job_stores.kind == "postgresql":
        with job_stores.store.connect() as conn:
            rows = conn.execute(sa.select(jobs)).all()
        stored = b"".join(v if isinstance(v, bytes) else str(v).encode() for row in rows for v in row)
    else:
        client = redis.Redis.from_url(job_stores.url)
        stored = b"".join(v for k in client.scan_iter() if client.type(k) == b"hash" for v in client.hvals(k))
    assert stored
    assert SECRET.encode() not in stored and b"-photo-bytes" not in stored and "기저세포암".encode() not in stored
    assert store.get(job_id).text == SECRET and store.request_of(job_id).image.jpeg == PHOTO.jpeg


# -- the one runner over either store ------------------------------------------------------------

@pytest.fixture
def runners(job_stores):
    """`start(diagnose, workers=2, store=None)`: a JobRunner over a job store of the parametrized kind."""
    started: list[JobRunner] = []

    def start(diagnose, *, workers: int = 2, store=None) -> JobRunner:
        runner = JobRunner(store or job_stores(), diagnose, workers=workers)
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.shutdown(wait=True)


def finished(runner: JobRunner, job_id: str):
    return wait_until(lambda: (job := runner.get(job_id)).finished and job)


def test_the_runner_runs_a_job_with_the_diagnose_it_was_given(runners):
    seen: list[DiagnosisRequest] = []

    def diagnose(asked: DiagnosisRequest) -> Diagnosis:
        seen.append(asked)
        return diagnosis()

    runner = runners(diagnose)
    job_id = runner.submit(replace(request(), source="page"))
    job = finished(runner, job_id)
    assert job.status == DONE and job.result.raw == VALID and job.elapsed_ms >= 0 and job.error is None
    assert seen == [request()]  # the whole request, photo included, as a job ("job" source)
    assert [j.id for j in runner.list(user="kim")] == [job_id] and runner.request_of(job_id) == request()


def test_a_failed_job_says_why_and_a_crash_does_not_kill_the_worker(runners):
    def diagnose(asked: DiagnosisRequest) -> Diagnosis:
        if asked.text == "refused":
            raise InputError("Give a photo of the lesion or describe it in text.")
        if asked.text == "crash":
            raise RuntimeError("a bug")
        return diagnosis()

    runner = runners(diagnose, workers=1)
    refused, crash = runner.submit(request("refused")), runner.submit(request("crash"))
    fine = runner.submit(request("fine"))
    assert finished(runner, refused).error == "Give a photo of the lesion or describe it in text."
    assert finished(runner, crash).error == "Unexpected error (RuntimeError)."
    assert finished(runner, refused).status == finished(runner, crash).status == FAILED
    assert finished(runner, fine).status == DONE  # the one worker lived on


def test_several_workers_run_jobs_side_by_side(runners):
    together = threading.Barrier(3, timeout=5)  # passes only when three jobs run at once

    def diagnose(asked: DiagnosisRequest) -> Diagnosis:
        together.wait()
        return diagnosis()

    runner = runners(diagnose, workers=3)
    ids = [runner.submit(request(f"case {n}")) for n in range(3)]
    assert all(finished(runner, i).status == DONE for i in ids)


def test_rerun_submits_the_request_again_without_the_cache(runners):
    runner = runners(lambda asked: diagnosis())
    first = runner.submit(request())
    finished(runner, first)
    again = runner.rerun(first)
    assert again != first and finished(runner, again).status == DONE
    assert runner.request_of(again) == replace(request(), use_cache=False)


def test_rerun_of_a_job_sealed_under_another_key_raises_a_diagnosis_error_saying_what_to_do(job_stores, runners):
    writer = job_stores(sealer=Sealer(Fernet.generate_key().decode()))
    job_id = writer.add(request())
    runner = runners(lambda asked: diagnosis(), workers=0, store=job_stores(sealer=Sealer(Fernet.generate_key()
                                                                                             .decode())))
    with pytest.raises(DiagnosisError) as refused:
        runner.rerun(job_id)
    assert isinstance(refused.value, JobUnreadable) and str(refused.value) == UNREADABLE
    assert "DATA_ENCRYPTION_KEY" in UNREADABLE and "set the key" in UNREADABLE
    assert [j.id for j in runner.list()] == [job_id]  # nothing was submitted


def test_after_shutdown_no_job_is_taken(runners):
    calls: list[str] = []
    runner = runners(lambda asked: calls.append(asked.text) or diagnosis(), workers=2)
    runner.shutdown(wait=True)
    job_id = runner.submit(request("too late"))
    time.sleep(0.3)
    assert runner.get(job_id).status == QUEUED and calls == []


def test_a_worker_given_a_job_sealed_under_another_key_fails_it_with_the_error(redis_server):
    # Only a shared queue can hand a process a job it cannot read (two processes configured with different keys).
    writer = RedisJobStore.from_url(redis_server.url, sealer=Sealer(Fernet.generate_key().decode()),
                                    retention_seconds=3600, poll_seconds=0.1)
    job_id = writer.add(request())
    reader = RedisJobStore.from_url(redis_server.url, sealer=Sealer(Fernet.generate_key().decode()),
                                    retention_seconds=3600, poll_seconds=0.1)
    runner = JobRunner(reader, lambda asked: diagnosis(), workers=1)
    try:
        job = finished(runner, job_id)
    finally:
        runner.shutdown(wait=True)
    assert job.status == FAILED and job.error == UNREADABLE and job.unreadable  # not left running for ever
    assert not reader._held  # and its lease is no longer refreshed


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "redis"])
def test_the_jobs_page_shows_a_job_sealed_under_another_key_and_why_it_cannot_run_again(backend, request,
                                                                                         engine_env, reconfigure,
                                                                                         monkeypatch):
    if backend == "redis":
        monkeypatch.setenv("REDIS_URL", request.getfixturevalue("redis_server").url)
    elif backend == "postgresql":
        monkeypatch.setenv("DATABASE_URL", request.getfixturevalue("postgres_url"))
    reconfigure(DATA_ENCRYPTION_KEY=Fernet.generate_key().decode())
    engine = startup.get_engine()
    job_id = engine.jobs.submit(engine.make_request("ulcerated nodule"))
    wait_done(job_id)
    reconfigure(DATA_ENCRYPTION_KEY=Fernet.generate_key().decode())  # the app now runs with another key
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.switch_page("app_pages/jobs.py").run()
    # The Korean page says it in Korean (the API and the command line read UNREADABLE, in English).
    # In plain words: the reader is not an administrator (with sign-in off, nobody is).
    assert not at.exception and alerts(at, "error") == [TABLES["ko"]["job.unreadable.plain"]]
    at.button(key=f"jobs_rerun_{job_id}").click().run()
    assert not at.exception and alerts(at, "warning") == [TABLES["ko"]["job.unreadable.plain"]]
    assert [j.id for j in startup.get_engine().jobs.list()] == [job_id]  # nothing new was queued


# -- answer caches -------------------------------------------------------------------------------

VALUE = {"raw": "<root><label id_code=\"1\" score=\"78\">기저세포암</label></root>", "usage": [812, 143]}
KEY = "answer:v1:" + "a" * 64


@pytest.fixture(params=["disk", "redis"])
def caches(request, tmp_path):
    """`make(ttl_seconds=60, enabled=True, sealer=None)`: an answer cache of this kind; all share one storage."""
    if request.param == "disk":
        def make(ttl_seconds: float = 60, enabled: bool = True, sealer: Sealer | None = None):
            return DiskAnswerCache(tmp_path / "cache", ttl_seconds=ttl_seconds, enabled=enabled,
                                   sealer=sealer or Sealer())
    else:
        url = request.getfixturevalue("redis_server").url

        def make(ttl_seconds: float = 60, enabled: bool = True, sealer: Sealer | None = None):
            return RedisAnswerCache(connect(url), ttl_seconds=ttl_seconds, enabled=enabled, breaker=Breaker(),
                                    sealer=sealer or Sealer())
    make.kind = request.param
    return make


def test_a_cached_answer_round_trips_and_is_shared(caches):
    cache = caches()
    assert cache.available and cache.get(KEY) is None
    assert cache.set(KEY, VALUE) is True and cache.get(KEY) == VALUE
    assert caches().get(KEY) == VALUE  # another process (Redis) or the next start (disk) reads it too
    assert cache.delete(KEY) is True and cache.get(KEY) is None and cache.delete(KEY) is False


def test_answers_expire_after_the_ttl_and_zero_means_never(caches):
    short, forever = caches(ttl_seconds=0.3), caches(ttl_seconds=0)
    assert short.set(KEY, VALUE) and forever.set("answer:v1:forever", VALUE)
    time.sleep(0.45)
    assert short.get(KEY) is None and forever.get("answer:v1:forever") == VALUE


def test_a_disabled_or_closed_cache_is_all_misses(caches):
    disabled = caches(enabled=False)
    assert not disabled.available
    assert disabled.set(KEY, VALUE) is False and disabled.get(KEY) is None and disabled.delete(KEY) is False
    cache = caches()
    assert cache.set(KEY, VALUE)
    cache.close()
    assert cache.get(KEY) is None and cache.set(KEY, VALUE) is False and cache.delete(KEY) is False
    assert caches().get(KEY) == VALUE  # closing lets go of the cache; it does not empty it


def test_a_sealed_answer_reads_only_with_its_key(caches):
    key = Fernet.generate_key().decode()
    assert caches(sealer=Sealer(key)).set(KEY, VALUE)
    assert caches(sealer=Sealer(key)).get(KEY) == VALUE
    assert caches(sealer=Sealer(Fernet.generate_key().decode())).get(KEY) is None  # another key: a miss
    assert caches(sealer=Sealer()).get(KEY) is None  # no key: a miss, never a token


def test_a_failing_cache_behaves_as_misses(caches, tmp_path):
    if caches.kind == "disk":
        (tmp_path / "blocked").write_text("a file where the directory should be")
        broken = DiskAnswerCache(tmp_path / "blocked", ttl_seconds=60, sealer=Sealer())
    else:
        broken = RedisAnswerCache(connect("redis://127.0.0.1:1/0"), ttl_seconds=60, breaker=Breaker(), sealer=Sealer())
    assert broken.get(KEY) is None and broken.set(KEY, VALUE) is False and broken.delete(KEY) is False


# -- the history's figures, in SQLite or pushed to Redis -----------------------------------------

ROWS = [  # (seconds ago, kind, provider, latency ms, error, cached)
    (50, "text", "runpod", 900.0, None, 0), (40, "text", "runpod", 1500.0, None, 1),
    (30, "image", "openai", 4200.0, None, 0), (20, "text", "runpod", 30000.0, "ProviderTimeout", 0),
    (10, "image", "openai", 3100.0, None, 0),
]


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def figures(request, tmp_path):
    """(history, report): a history recording rows, and the Performance page's report of their figures.

    SQLite or PostgreSQL: the figures are the history's own rows. Redis: the history pushes each row's figures to
    the shared metrics, and the report reads them from there, on a machine whose own history is empty.
    """
    if request.param != "redis":
        store = Store(request.getfixturevalue("postgres_url") if request.param == "postgresql"
                      else tmp_path / "app.db")
        request.addfinalizer(store.dispose)
        return History(store), lambda: metrics.compute(store, feed=None)
    feed = MetricsFeed(connect(request.getfixturevalue("redis_server").url), breaker=Breaker())
    history = History(Store(tmp_path / "a.db"), metrics=feed)
    return history, lambda: metrics.compute(Store(tmp_path / "b.db"), feed=feed)


def test_recorded_assessments_give_the_same_figures_from_either_backend(figures):
    history, report = figures
    now = time.time()
    for ago, kind, provider, latency, error, cached in ROWS:
        history.record({"created_at": now - ago, "kind": kind, "language": "ko", "provider": provider,
                        "text": SECRET, "latency_ms": latency, "complete": 0 if error else 1, "error": error,
                        "cached": cached, "source": "page"})
    found = report()
    assert found.overall.count == 5 and found.overall.complete == 4 and found.overall.cached == 1
    assert found.overall.timeouts == found.overall.errors == 1
    assert found.kind("text").count == 3 and found.kind("image").latency_ms.n == 2
    assert found.kind("image").latency_ms.p50 == 3650.0
    assert {(g.provider, g.kind, g.count) for g in found.groups} == {("runpod", "text", 3), ("openai", "image", 2)}


def test_a_metrics_sink_that_is_down_never_stops_the_history(tmp_path):
    down = MetricsFeed(connect("redis://127.0.0.1:1/0"), breaker=Breaker())
    assert down.push({"kind": "text", "latency_ms": 1.0}) is False
    history = History(Store(tmp_path / "app.db"), metrics=down)
    assessment_id = history.record({"kind": "text", "language": "ko", "text": SECRET, "latency_ms": 5.0})
    assert history.get(assessment_id)["text"] == SECRET


# -- job counts (the metrics' gauges) -------------------------------------------------------------

def test_job_counts_are_queued_and_running_ones_seen_from_any_process(job_stores):
    store, other = job_stores(), job_stores()  # two processes of one deployment
    assert other.counts() == {"queued": 0, "running": 0}
    first, second, third = store.add(request("one")), store.add(request("two")), store.add(request("three"))
    assert other.counts() == {"queued": 3, "running": 0}
    assert store.next_job() == first and store.claim(first)
    assert other.counts() == {"queued": 2, "running": 1}
    assert store.next_job() == second and store.claim(second)
    assert store.finish(first, DONE, result=diagnosis()) and store.finish(second, FAILED, error="no answer")
    assert other.counts() == {"queued": 1, "running": 0}  # done and failed jobs are not counted
    assert store.next_job() == third and store.claim(third)
    assert other.counts() == {"queued": 0, "running": 1}
