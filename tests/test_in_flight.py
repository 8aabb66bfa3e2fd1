"""Many assessments in flight from one process, and no SDK import where none is needed (issue 19, load).

The HTTP API awaits `Engine.adiagnose`: an assessment waiting for its provider holds no thread, so
more of them can be in flight than any thread pool has threads. A cache hit, and building the
engine, never import langchain-openai or the openai SDK (about a second); the server imports them
at its start. Speed itself is shown by `bench/api_load.py`, never asserted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator

import startup
from engine.core import IO_THREADS
from testkit.answers import VALID
from testkit.fake_llm import Reply
from tests.conftest import PROJECT_ROOT
from tests.waiting import wait_until

IN_FLIGHT = 60  # more than anyio's 40 worker threads, the old cap of the API


@contextlib.contextmanager
def all_at_once(engine, requests, release: threading.Event) -> Iterator[list]:
    """Every request's `adiagnose` at once, on an event loop of its own, while the block runs; then `release` is
    set and their results (or exceptions) fill the list yielded."""
    results: list = []

    async def gathered() -> None:
        results.extend(await asyncio.gather(*(engine.adiagnose(r) for r in requests), return_exceptions=True))

    runner = threading.Thread(target=asyncio.run, args=(gathered(),))
    runner.start()
    try:
        yield results
    finally:
        release.set()
        runner.join(30)


def test_more_assessments_than_threads_are_in_flight_at_once_and_all_answered(engine_env):
    release = threading.Event()

    def held(_request) -> Reply:  # each call waits at the provider until every one of them has arrived
        release.wait(30)
        return Reply(VALID)

    engine_env.responder = held
    engine = startup.get_engine()
    requests = [engine.make_request(f"case {n}: 2 cm pearly papule on the nose", source="api")
                for n in range(IN_FLIGHT)]
    with all_at_once(engine, requests, release) as results:
        engine_env.wait_for_requests(IN_FLIGHT, timeout=20)  # all with the provider before any was answered
        busy = [t.name for t in threading.enumerate() if t.name.startswith("engine-io")]
    assert len(busy) <= 8  # the engine's small pool, not a thread per assessment
    assert len(results) == IN_FLIGHT and all(not isinstance(r, BaseException) and r.provider == "runpod"
                                             for r in results), [r for r in results if isinstance(r, BaseException)]


def test_cases_answered_together_wait_for_their_rows_without_holding_the_pool_and_share_a_transaction(
        engine_env, monkeypatch):
    engine = startup.get_engine()
    writing, go = threading.Event(), threading.Event()
    batches: list[int] = []
    insert = engine.history.insert

    def held(rows):  # the first transaction takes until the test lets it go
        batches.append(len(rows))
        writing.set()
        go.wait(30)
        return insert(rows)

    monkeypatch.setattr(engine.history, "insert", held)
    cases = 3 * IO_THREADS  # more than the pool has threads: a case waiting for its row must not hold one
    requests = [engine.make_request(f"case {n}: 3 mm scaly patch on the arm", source="api") for n in range(cases)]
    with all_at_once(engine, requests, go) as results:
        assert writing.wait(20)
        wait_until(lambda: engine.recorder.writer.waiting == cases - 1, seconds=20)  # every other row handed over
    assert batches == [1, cases - 1]
    assert all(not isinstance(r, BaseException) and r.assessment_id for r in results), results
    assert len({r.assessment_id for r in results}) == cases == len(engine.history.search())


def test_adiagnose_records_the_case_and_caches_it_as_diagnose_does(engine_env):
    engine = startup.get_engine()
    request = engine.make_request("a 4 mm dark macule on the back", source="api")
    first = asyncio.run(engine.adiagnose(request))
    again = engine.diagnose(request)  # the pages' path: the same cache key, the same steps
    assert not first.cached and again.cached and again.raw == first.raw
    assert first.assessment_id and engine.history.get(first.assessment_id) is not None


_PROBE = """
import json, sys
import startup
engine = startup.get_engine()
built = "langchain_openai" in sys.modules or "openai" in sys.modules
result = startup.diagnose(text="a pearly papule on the nose, 2 cm, six months")
print(json.dumps({"built_imports_sdk": built, "cached": result.cached,
                  "answer_imports_sdk": "langchain_openai" in sys.modules}))
"""


def test_building_the_engine_and_a_cache_hit_do_not_import_the_llm_sdk(engine_env, tmp_path):
    runs = [subprocess.run([sys.executable, "-c", _PROBE], cwd=PROJECT_ROOT, capture_output=True, text=True,
                           timeout=120) for _ in range(2)]
    for done in runs:
        assert done.returncode == 0, done.stderr
    first, second = (json.loads(done.stdout.strip().splitlines()[-1]) for done in runs)
    assert not first["built_imports_sdk"] and not first["cached"] and first["answer_imports_sdk"]
    assert second["cached"] and not second["answer_imports_sdk"]  # the answer came from the cache: no SDK
