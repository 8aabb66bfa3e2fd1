"""More than one server: the answer cache, the jobs and the metrics shared through a real Redis.

Every test runs against a real `redis-server` on a free port of 127.0.0.1 (testkit/redis_server.py);
the two-process tests start real Python subprocesses, each with its own engine and DATA_DIR,
that share nothing but Redis (and the fake LLM).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

import startup
from domain.errors import ProviderError
from domain.jobs import DONE, INTERRUPTED, QUEUED, RUNNING
from engine.core import Engine
from engine.jobs import JobRunner
from startup import build_engine
from storage import redis_client
from storage.cache.redis import RedisAnswerCache
from storage.jobs import NEVER_STARTED, PROCESS_GONE
from storage.jobs.redis import QUEUE, RedisJobStore
from storage.metrics import figures as metrics
from storage.metrics.redis import METRICS_KEY, MetricsFeed, feed_for
from storage.redis_client import PREFIX, Breaker, connect
from testkit.answers import DISCLAIMER, VALID, xml_answer
from testkit.fake_llm import Reply
from testkit.redis_server import RedisServer, skip_unless_available
from tests.waiting import wait_until
from utils.crypto import Sealer
from utils.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
TOKEN = re.compile(r"TOKEN-[0-9a-z]+")


def echo_token(request) -> Reply | None:
    """The fake LLM's responder: a valid answer whose findings name the case's token; HANG hangs, SLOW is slow."""
    text = request.text()
    if "HANG" in text:
        return Reply(hang=True)
    found = TOKEN.search(text)
    answer = xml_answer(1, 78, "기저세포암", f"진주양 구진 ({found.group(0) if found else 'no token'}).",
                        [(11, 12, "피지샘증식증")], tail=DISCLAIMER)
    return Reply(answer, delay=4.5 if "SLOW" in text else 0.0)


@pytest.fixture
def shared(engine_env, redis_server, monkeypatch):
    """The engine environment with REDIS_URL pointing at the test's Redis; yields (fake_llm, server)."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    engine_env.responder = echo_token
    startup.reset_engine()
    yield engine_env, redis_server
    startup.reset_engine()


def make_engine(data_dir: Path, **env: str) -> Engine:
    """An engine with the current environment plus `env`, and its own DATA_DIR (another machine)."""
    return build_engine(load_settings({**os.environ, "DATA_DIR": str(data_dir), **env}, env_file=None))


def redis_store(engine: Engine, **timing: float) -> RedisJobStore:
    """The engine's Redis job store, with test timings (`lease_seconds`, `poll_seconds`)."""
    return RedisJobStore.from_url(engine.settings.redis_url, sealer=engine.sealer, retention_seconds=3600, **timing)




# -- the answer cache ----------------------------------------------------------------------------

def test_cache_round_trip_ttl_and_versioned_keys(redis_server):
    client = connect(redis_server.url)
    cache = RedisAnswerCache(client, ttl_seconds=0.4, sealer=Sealer())
    key = "answer:v1:" + "a" * 64
    assert cache.available and cache.get(key) is None
    assert cache.set(key, {"raw": "<root/>", "usage": [120, 80]})
    assert cache.get(key) == {"raw": "<root/>", "usage": [120, 80]}
    assert json.loads(client.get(PREFIX + key)) == {"raw": "<root/>", "usage": [120, 80]}  # JSON, under the prefix
    assert 0 < client.pttl(PREFIX + key) <= 400
    time.sleep(0.5)
    assert cache.get(key) is None  # expired

    forever = RedisAnswerCache(client, ttl_seconds=0, sealer=Sealer())
    assert forever.set(key, {"raw": "x", "usage": [0, 0]}) and client.pttl(PREFIX + key) == -1
    assert forever.delete(key) and not forever.delete(key) and forever.get(key) is None
    assert not RedisAnswerCache(client, ttl_seconds=1, enabled=False, sealer=Sealer()).available


def test_two_engines_share_answers(shared, tmp_path):
    fake, _ = shared
    a, b = make_engine(tmp_path / "a"), make_engine(tmp_path / "b")
    try:
        first = a.diagnose(a.make_request("5 mm pearly papule TOKEN-share1"))
        second = b.diagnose(b.make_request("5 mm pearly papule TOKEN-share1"))
        assert not first.cached and second.cached and second.raw == first.raw
        assert "TOKEN-share1" in second.answer.summary
        assert len(fake.chat_requests) == 1  # the second machine asked no provider
    finally:
        a.close(), b.close()


def test_redis_down_means_misses_and_assessments_still_work(engine_env, tmp_path, caplog, clock, monkeypatch):
    skip_unless_available()
    monkeypatch.setattr(redis_client, "Breaker", functools.partial(Breaker, clock=clock))  # the engine's breaker
    with RedisServer() as server:
        engine = make_engine(tmp_path / "a", REDIS_URL=server.url)
        try:
            assert not engine.diagnose(engine.make_request("scaly plaque on the scalp")).cached
            server.stop()  # Redis goes away mid-day
            caplog.set_level(logging.WARNING)
            started = time.monotonic()
            for _ in range(3):
                result = engine.diagnose(engine.make_request("scaly plaque on the scalp"))
                assert result.complete and not result.cached  # a miss: the provider answered again
            assert time.monotonic() - started < 3
            assert len(engine_env.chat_requests) == 4
            assert "ConnectionError" in caplog.text and "scaly" not in caplog.text
            server.start()  # and comes back: after the breaker's cool-down the cache works again
            clock.now += 2.1
            engine.diagnose(engine.make_request("scaly plaque on the scalp"))
            assert engine.diagnose(engine.make_request("scaly plaque on the scalp")).cached
        finally:
            engine.close()


def test_a_redis_that_hangs_costs_one_short_timeout_not_a_stall(engine_env, tmp_path, caplog):
    # A listener that accepts and never answers: what a frozen Redis or a black-holed route looks like.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        engine = make_engine(tmp_path / "a", REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        try:
            started = time.monotonic()
            for n in range(4):
                assert engine.diagnose(engine.make_request(f"nodule {n}")).complete
            # One 0.5 s socket timeout, then the breaker skips Redis for its cool-down (without it: 6 s and more).
            assert time.monotonic() - started < 2.5
            assert "TimeoutError" in caplog.text
        finally:
            engine.close()


# -- jobs across processes -----------------------------------------------------------------------

CHILD = r"""
import json, sys
import sqlalchemy as sa
from startup import get_engine
from engine.jobs import JobRunner
from storage.jobs.redis import RedisJobStore
from storage.schema import assessments

engine = get_engine()
jobs = None


def reply(**values):
    print(json.dumps(values), flush=True)


reply(ready=True)
for line in sys.stdin:
    command = json.loads(line)
    op = command["op"]
    if op == "jobs":
        store = RedisJobStore.from_url(engine.settings.redis_url, sealer=engine.sealer, retention_seconds=3600,
                                       lease_seconds=command["lease"], poll_seconds=0.2)
        jobs = JobRunner(store, engine.diagnose, workers=command["workers"])
        reply(owner=store.owner)
    elif op == "submit":
        reply(id=jobs.submit(engine.make_request(command["text"], user=command.get("user"))))
    elif op == "get":
        job = jobs.get(command["id"])
        reply(status=job.status, error=job.error, summary=job.result.answer.summary if job.result else None)
    elif op == "diagnose":
        result = engine.diagnose(engine.make_request(command["text"]))
        reply(summary=result.answer.summary, cached=result.cached)
    elif op == "history":
        with engine.store.connect() as conn:
            reply(sources=list(conn.execute(sa.select(assessments.c.source)).scalars()))
    elif op == "quit":
        if jobs is not None:
            jobs.shutdown(wait=True)
        reply(bye=True)
        break
"""


class Child:
    """An app process: its own engine and DATA_DIR, driven by JSON lines on stdin and stdout.

    A real process, not an engine in this one: the tests kill it (SIGKILL) and check that its jobs' leases lapse.
    """

    def __init__(self, tmp_path: Path, name: str, redis_url: str) -> None:
        env = {**os.environ, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path / name), "PYTHONPATH": str(ROOT),
               "PYTHONUNBUFFERED": "1"}
        self.log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 -- the child's stderr until close()
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, cwd=tmp_path, env=env)
        assert self._read(60)["ready"]

    def _read(self, seconds: float = 30.0) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], seconds)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise AssertionError(f"the child said nothing (exit code {self.proc.poll()}); see {self.log.name}")
        return json.loads(line)

    def ask(self, op: str, **values) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **values}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def kill(self) -> None:
        """SIGKILL: the process dies without a word, as on a crash or an OOM kill."""
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask("quit")
                self.proc.wait(10)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


@pytest.fixture
def children(shared, tmp_path):
    """Start app processes with `children(name)`; all are stopped after the test."""
    _, server = shared
    started: list[Child] = []

    def start(name: str) -> Child:
        child = Child(tmp_path, name, server.url)
        started.append(child)
        return child

    yield start
    for child in started:
        child.close()


def test_a_job_submitted_to_one_process_runs_in_another_and_reads_from_both(children):
    a, b = children("a"), children("b")
    a.ask("jobs", workers=0, lease=5)      # A only takes cases in (as if its workers were all busy)
    b.ask("jobs", workers=2, lease=5)
    job_id = a.ask("submit", text="진주빛 구진 TOKEN-job1", user="dr-kim")["id"]
    done = wait_until(lambda: (j := a.ask("get", id=job_id))["status"] == DONE and j)
    assert "TOKEN-job1" in done["summary"]
    assert b.ask("get", id=job_id) == done
    # B ran it: the assessment is in B's own history, not in A's.
    assert b.ask("history")["sources"] == ["job"] and a.ask("history")["sources"] == []


def test_a_dead_process_job_is_interrupted_and_a_live_process_job_is_not(shared, children):
    fake, server = shared
    engine = startup.get_engine()
    store = redis_store(engine, lease_seconds=2.0)
    jobs = JobRunner(store, engine.diagnose, workers=0)  # this test process only submits and reads
    b = children("b")
    b.ask("jobs", workers=1, lease=2.0)
    stuck = jobs.submit(engine.make_request("HANG nodule"))
    wait_until(lambda: jobs.get(stuck).status == RUNNING)
    b.kill()

    c = children("c")
    c.ask("jobs", workers=1, lease=2.0)
    slow = jobs.submit(engine.make_request("SLOW plaque TOKEN-slow"))  # runs 4.5 s: longer than two leases
    wait_until(lambda: jobs.get(slow).status == RUNNING)
    seen = set()
    while not jobs.get(slow).finished:
        store.reap()  # another process looking for dead processes' jobs must leave C's alone
        seen.add(jobs.get(slow).status)
        time.sleep(0.1)
    assert jobs.get(slow).status == DONE and INTERRUPTED not in seen
    interrupted = wait_until(lambda: (j := jobs.get(stuck)).status == INTERRUPTED and j, seconds=10)
    assert interrupted.error == PROCESS_GONE
    # The interrupted job runs again, from its request kept in Redis (and this time the provider answers).
    fake.responder = lambda request: Reply(VALID)
    again = jobs.rerun(stuck)
    assert wait_until(lambda: (j := jobs.get(again)).finished and j).status == DONE
    assert jobs.request_of(again).text == "HANG nodule" and not jobs.request_of(again).use_cache


def test_a_job_taken_from_the_queue_by_a_process_that_died_is_interrupted(shared):
    engine = startup.get_engine()
    store = redis_store(engine)
    jobs = JobRunner(store, engine.diagnose, workers=0)
    client = redis.Redis.from_url(shared[1].url)
    lost = jobs.submit(engine.make_request("papule"))
    waiting = jobs.submit(engine.make_request("plaque"))
    assert client.lpop(QUEUE).decode() == lost  # a worker's BLPOP, then its process died before the claim
    assert store.reap() == 0  # one look could fall between a live worker's BLPOP and its claim
    assert store.reap() == 1
    assert jobs.get(lost).status == INTERRUPTED and jobs.get(lost).error == NEVER_STARTED
    assert jobs.get(waiting).status == QUEUED  # still in the queue: some process will run it


# The jobs tests (tests/test_jobs.py) and the Jobs page's (tests/test_page_jobs.py) run again with REDIS_URL set:
# the `jobs_backend` fixture of tests/conftest.py.


# -- metrics -------------------------------------------------------------------------------------

def test_metrics_of_both_engines_are_aggregated(shared, tmp_path):
    fake, server = shared
    a, b = make_engine(tmp_path / "a"), make_engine(tmp_path / "b")
    try:
        assert isinstance(a.history.metrics, MetricsFeed)
        for n in range(2):
            a.diagnose(a.make_request(f"papule TOKEN-a{n}"))
        for n in range(3):
            b.diagnose(b.make_request(f"plaque TOKEN-b{n}"))
        b.diagnose(b.make_request("plaque TOKEN-b0"))  # a cache hit, counted as one
        feed = feed_for(server.url)
        everyone = metrics.compute(a.store, feed=feed)
        assert everyone.overall.count == 6 and everyone.overall.cached == 1 and everyone.overall.complete == 6
        assert everyone.kind("text").latency_ms.n == 6
        assert metrics.compute(a.store, feed=None).overall.count == 2  # A's own history
        # With REDIS_URL in the settings, the Performance page reads every process's figures through start-up's feed.
        assert metrics.for_window(startup.get_engine().store, "hour", feed=startup.metrics_feed()).overall.count == 6
    finally:
        a.close(), b.close()


def test_metrics_records_match_the_history_rows_and_fall_back_when_redis_is_down(shared, tmp_path):
    fake, server = shared
    fake.script(Reply.error(401))
    a = make_engine(tmp_path / "a")
    try:
        with pytest.raises(ProviderError):
            a.diagnose(a.make_request("ulcer TOKEN-fail"))
        a.diagnose(a.make_request("ulcer TOKEN-ok"))
        rows = feed_for(server.url).rows()
        assert [r["error"] for r in rows] == ["ProviderAuthError", None]
        assert rows[1]["complete"] == 1 and rows[1]["provider"] == "runpod" and rows[1]["source"] == "page"
        assert rows[1]["latency_ms"] > 0 and rows[1]["first_token_ms"] > 0
        sqlite_report = metrics.compute(a.store, feed=None)
        redis_report = metrics.compute(a.store, feed=feed_for(server.url))
        assert redis_report.groups == sqlite_report.groups  # the same figures from either source
    finally:
        a.close()
    down = MetricsFeed(connect("redis://127.0.0.1:1/0"), breaker=Breaker())
    assert down.rows() is None and metrics.compute(a.store, feed=down).overall.count == 2


def test_metrics_are_capped(redis_server):
    feed = MetricsFeed(connect(redis_server.url), cap=5)
    for n in range(8):
        assert feed.push({"kind": "text", "provider": "openai", "latency_ms": n, "complete": 1}, at=1000.0 + n)
    assert [r["latency_ms"] for r in feed.rows()] == [3, 4, 5, 6, 7]
    assert [r["latency_ms"] for r in feed.rows(1004, 1006)] == [4, 5]  # [since, until)


# -- privacy -------------------------------------------------------------------------------------

def test_no_key_and_no_metrics_record_carries_patient_text(shared, children, tmp_path):
    fake, server = shared
    secret_text, secret_user = "홍길동 왼쪽 뺨 흑색 결절 TOKEN-secret", "dr-secret-name"
    a = children("a")
    a.ask("jobs", workers=1, lease=5)
    job_id = a.ask("submit", text=secret_text, user=secret_user)["id"]
    wait_until(lambda: a.ask("get", id=job_id)["status"] == DONE)
    engine = make_engine(tmp_path / "b")
    try:
        engine.diagnose(engine.make_request(secret_text))
    finally:
        engine.close()
    client = redis.Redis.from_url(server.url)
    keys = [k.decode() for k in client.scan_iter(count=1000)]
    assert keys and all(k.startswith(PREFIX) and k.isascii() for k in keys)
    for fragment in ("TOKEN-secret", "홍길동", "결절", secret_user, "dr-"):
        assert not any(fragment in k for k in keys), fragment
    records = b"".join(client.zrange(METRICS_KEY, 0, -1)).decode()
    assert records and not any(f in records for f in ("TOKEN", "홍길동", secret_user))


def test_with_an_encryption_key_redis_holds_no_patient_text_in_clear(shared, reconfigure):
    pytest.importorskip("utils.crypto")
    from cryptography.fernet import Fernet

    from testkit.corpus import plain_jpeg

    fake, server = shared
    reconfigure(DATA_ENCRYPTION_KEY=Fernet.generate_key().decode())
    engine = startup.get_engine()
    if not getattr(engine, "sealer", None) or not engine.sealer.enabled:
        pytest.skip("this engine has no encryption at rest")
    text = "홍길동 왼쪽 뺨 흑색 결절 TOKEN-sealed"
    assert not engine.diagnose(engine.make_request(text)).cached
    assert engine.diagnose(engine.make_request(text)).cached  # the sealed answer opens again
    job_id = engine.jobs.submit(engine.make_request(text, plain_jpeg()))
    job = wait_until(lambda: (j := engine.jobs.get(job_id)).finished and j)
    assert job.status == DONE and job.text == text and "TOKEN-sealed" in job.result.answer.summary
    assert engine.jobs.request_of(job_id).image.jpeg[:3] == b"\xff\xd8\xff"

    client = redis.Redis.from_url(server.url)
    stored = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            stored.append(client.get(key))
        elif kind == b"hash":
            stored.extend(client.hvals(key))
        elif kind == b"zset":
            stored.extend(client.zrange(key, 0, -1))
        elif kind == b"list":
            stored.extend(client.lrange(key, 0, -1))
    blob = b"\n".join(v for v in stored if v)
    for clear in ("TOKEN-sealed", "홍길동", "결절", "기저세포암"):
        assert clear.encode() not in blob, clear
    assert b"\xff\xd8\xff" not in blob  # no JPEG in clear either
