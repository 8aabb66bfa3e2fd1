"""The performance figures: exact percentiles and rates from the history, and the page that shows them.

The figures from a synthetic history are computed on SQLite and on PostgreSQL (conftest's `store`), so the
same SQLAlchemy queries give the same numbers on both.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

import startup
from domain.errors import ProviderTimeout
from startup import diagnose
from storage.history import History
from storage.metrics import figures as metrics
from storage.schema import assessments
from storage.store import Store
from testkit.corpus import plain_jpeg
from testkit.fake_llm import Reply
from tests.conftest import RUNPOD_MODEL
from utils.stats import percentile

PAGE = Path(__file__).resolve().parent.parent / "app_pages" / "performance.py"
# Until app.py registers the page, run it as a script of its own, after the state app.py sets up.
WRAPPER = f"""
import runpy
from ui.state import init_state
init_state()
runpy.run_path({str(PAGE)!r}, run_name="__main__")
"""
T0 = 1_700_000_000.0  # a fixed clock for the synthetic rows


def add(store: Store, created_at: float, *, kind: str = "text", provider: str | None = "runpod",
        latency_ms: float | None = 1000.0, first_token_ms: float | None = None, complete: int = 1,
        error: str | None = None, source: str = "page", **flags: int) -> None:
    """One assessment row as the engine would record it (the flags are cached, fallback, hedged)."""
    History(store).record({"created_at": created_at, "kind": kind, "language": "ko", "provider": provider,
                           "latency_ms": latency_ms, "first_token_ms": first_token_ms,
                           "complete": 0 if error else complete, "error": error, "source": source, **flags})


# -- synthetic history: exact numbers --------------------------------------------------------------

def test_exact_figures_per_provider_and_kind(store):
    for i in range(20):  # RunPod text: 1..20 s, first words a tenth of that, one a minute
        add(store, T0 + 60 * i, latency_ms=1000.0 * (i + 1), first_token_ms=100.0 * (i + 1))
    add(store, T0 + 5, latency_ms=14_800.0, error="ProviderTimeout")
    add(store, T0 + 6, latency_ms=900.0, error="ProviderUnavailable")
    add(store, T0 + 7, provider="openai", latency_ms=3004.0, first_token_ms=400.0, fallback=1, hedged=1)
    add(store, T0 + 8, provider="openai", latency_ms=4.0, cached=1)
    add(store, T0 + 9, kind="image", latency_ms=25_000.0, first_token_ms=9000.0)
    add(store, T0 + 10, kind="image", latency_ms=31_000.0, first_token_ms=12_000.0)
    add(store, T0 + 11, kind="image", latency_ms=2000.0, complete=0)  # an incomplete answer: no error, no success

    report = metrics.compute(store, T0, T0 + 3600)
    assert [(g.kind, g.provider, g.count) for g in report.groups] == [
        ("text", "runpod", 22), ("text", "openai", 2), ("image", "runpod", 3)]

    runpod = report.groups[0]
    assert (runpod.complete, runpod.timeouts, runpod.errors, runpod.fallbacks, runpod.cached) == (20, 1, 2, 0, 0)
    assert runpod.success_rate == 20 / 22 and runpod.timeout_rate == 1 / 22 and runpod.error_rate == 2 / 22
    # 22 latencies: 900, 1000..14000, 14800, 15000..20000; ranks 10.5, 19.95 and 20.79 from 0.
    assert runpod.latency_ms == metrics.Percentiles(n=22, p50=10_500.0, p95=18_950.0, p99=19_790.0)
    # Failures have no first words: 20 values, 100..2000.
    assert runpod.first_token_ms == metrics.Percentiles(n=20, p50=1050.0, p95=1905.0, p99=1981.0)
    # Complete and within 15 s: the successes of 1..15 s; the timeout at 14.8 s does not count.
    assert runpod.within_target == 15 and runpod.within_target_rate == 15 / 22

    openai = report.groups[1]
    assert (openai.fallbacks, openai.hedged, openai.cached, openai.cache_hit_rate) == (1, 1, 1, 0.5)
    assert openai.latency_ms == metrics.Percentiles(n=2, p50=1504.0, p95=2854.0, p99=2974.0)
    assert openai.first_token_ms == metrics.Percentiles(n=1, p50=400.0, p95=400.0, p99=400.0)

    image = report.groups[2]
    assert (image.complete, image.errors, image.within_target) == (2, 0, 1)  # 31 s is over the 30 s target
    assert image.latency_ms.p50 == 25_000.0 and image.first_token_ms.p95 == 11_850.0

    text = report.kind("text")
    assert text.provider is None and text.count == 24 and text.complete == 22 and text.cached == 1
    text_latencies = [1000.0 * i for i in range(1, 21)] + [14_800.0, 900.0, 3004.0, 4.0]
    assert text.latency_ms.p95 == percentile(text_latencies, 95)
    assert report.overall.count == 27 and report.overall.complete == 24 and report.overall.within_target == 18
    assert report.overall.success_rate == 24 / 27


def test_window_is_half_open_and_filters_apply(store):
    add(store, T0 - 0.001, latency_ms=1.0)                       # just before: out
    add(store, T0, latency_ms=2.0)                               # at since: in
    add(store, T0 + 99.999, provider="openai", latency_ms=3.0, source="bench")
    add(store, T0 + 100, latency_ms=4.0)                         # at until: out
    report = metrics.compute(store, T0, T0 + 100)
    assert report.overall.count == 2 and report.overall.latency_ms.p50 == 2.5
    only_openai = metrics.compute(store, T0, T0 + 100, providers=["openai"])
    assert [(g.provider, g.count) for g in only_openai.groups] == [("openai", 1)]
    assert metrics.compute(store, T0, T0 + 100, sources=["page"]).overall.latency_ms.p50 == 2.0
    assert metrics.compute(store, None, None).overall.count == 4
    empty = metrics.compute(store, T0 + 1000, T0 + 2000)
    assert empty.empty and empty.groups == () and empty.series == () and empty.overall.success_rate is None
    assert empty.kind("image").count == 0 and empty.kind("image").latency_ms.p95 is None


def test_named_windows_end_now():
    assert metrics.window_bounds("hour", now=T0) == (T0 - 3600, T0)
    assert metrics.window_bounds("month", now=T0) == (T0 - 30 * 86400, T0)
    assert metrics.window_bounds("all", now=T0) == (None, T0)
    with pytest.raises(ValueError, match="hour, day, week, month, all"):
        metrics.window_bounds("year")
    assert [metrics.bucket_seconds(metrics.WINDOWS[w]) for w in ("hour", "day", "week", "month")] == [
        60, 900, 3600, 6 * 3600]


def test_series_is_p95_per_kind_and_bucket(store):
    start = 1_700_002_800.0  # a whole hour, so minute buckets start where the rows do
    for i, ms in enumerate([1000.0, 2000.0, 3000.0, 4000.0]):
        add(store, start + i, latency_ms=ms)                  # minute 0, text
    add(store, start + 30, kind="image", latency_ms=20_000.0)  # minute 0, image
    add(store, start + 125, latency_ms=500.0)                 # minute 2, text (minute 1 is empty)
    report = metrics.for_window(store, "hour", now=start + 3000)
    assert report.bucket_seconds == 60
    assert [(p.start - start, p.kind, p.count, p.p95_ms) for p in report.series] == [
        (0, "text", 4, 3850.0), (0, "image", 1, 20_000.0), (120, "text", 1, 500.0)]
    # "all" has no start: the buckets follow the rows actually there (two minutes: minute buckets).
    assert metrics.for_window(store, "all", now=start + 200).bucket_seconds == 60


def test_sql_percentiles_agree_with_the_definition_on_random_data(store):
    rng = random.Random(11)
    rows = [(rng.choice(["runpod", "openai"]), rng.choice(["text", "image"]), rng.uniform(50, 60_000))
            for _ in range(300)]
    with store.connect() as conn:  # one transaction: 300 rows in a blink
        conn.execute(assessments.insert(), [{"id": str(i), "created_at": T0 + i, "kind": kind, "language": "ko",
                                             "provider": provider, "latency_ms": ms, "complete": 1}
                                            for i, (provider, kind, ms) in enumerate(rows)])
    report = metrics.compute(store, T0, T0 + 1000)
    for g in report.groups:
        values = [ms for provider, kind, ms in rows if (provider, kind) == (g.provider, g.kind)]
        assert g.count == len(values)
        for p in metrics.PERCENTS:
            assert getattr(g.latency_ms, f"p{p}") == percentile(values, p)


def test_table_rows_are_ready_to_show(store):
    add(store, T0, latency_ms=8200.0, first_token_ms=900.0)
    add(store, T0 + 1, provider=None, latency_ms=15_000.0, error="ProviderTimeout")
    rows = metrics.compute(store, T0, T0 + 10).table({"runpod": "RunPod", "text": "Text"})
    assert rows[0]["provider"] == "RunPod" and rows[0]["kind"] == "Text" and rows[0]["latency_p95_s"] == 8.2
    assert rows[0]["first_token_p50_s"] == 0.9 and rows[0]["success_rate"] == 1.0
    assert rows[1]["provider"] == "—" and rows[1]["timeout_rate"] == 1.0 and rows[1]["first_token_p95_s"] is None


# -- a history the real engine wrote ---------------------------------------------------------------

@pytest.fixture
def engine_on_both(engine_env, database_url, monkeypatch):
    """The engine against the fake server, its store on `database_url` (SQLite, then PostgreSQL)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    startup.reset_engine()
    return engine_env


def test_figures_from_the_engines_own_records(engine_on_both, reconfigure, fake_llm):
    diagnose(text="pearly papule beside the nose")                       # RunPod, fresh
    diagnose(text="pearly papule beside the nose")                       # the same case: cached
    diagnose(text="waxy brown plaque", provider="openai")                # OpenAI, fresh
    diagnose(image=plain_jpeg())                                         # a photo: RunPod
    reconfigure(TEXT_BUDGET_SECONDS="0.3")
    fake_llm.script(Reply(hang=True))
    with pytest.raises(ProviderTimeout):
        diagnose(text="a case that never gets an answer")
    # On a loaded machine the 0.3 s can run out before the call reaches the fake: its hang must not answer the next.
    fake_llm.clear()
    reconfigure(TEXT_BUDGET_SECONDS=None, PROVIDER_FALLBACKS="runpod,openai")
    fake_llm.responder = lambda request: {RUNPOD_MODEL: Reply.error(503)}.get(request.body.get("model"))
    assert diagnose(text="scaly patch on the shin").fallback                # RunPod fails, OpenAI answers

    report = metrics.for_window(startup.get_engine().store, "hour")
    figures = {(g.kind, g.provider): (g.count, g.complete, g.timeouts, g.errors, g.cached, g.fallbacks)
               for g in report.groups}
    assert figures == {
        ("text", "runpod"): (3, 2, 1, 1, 1, 0),
        ("text", "openai"): (2, 2, 0, 0, 0, 1),
        ("image", "runpod"): (1, 1, 0, 0, 0, 0),
    }
    total = report.overall
    assert (total.count, total.complete, total.timeouts, total.cached, total.fallbacks) == (6, 5, 1, 1, 1)
    assert total.success_rate == 5 / 6 and total.timeout_rate == 1 / 6 and total.cache_hit_rate == 1 / 6
    # Every answer here came well within its target; the timeout is no answer at all.
    assert total.within_target == 5 and total.within_target_rate == 5 / 6
    # Fresh answers have first words (4); the cached one and the timeout have none.
    assert report.overall.first_token_ms.n == 4 and report.overall.latency_ms.n == 6
    # Times vary from run to run; the percentiles must still be exactly those of the recorded rows.
    rows = startup.get_engine().history.search()
    for g in report.groups:
        for measure in ("latency_ms", "first_token_ms"):
            values = [r[measure] for r in rows if (r["kind"], r["provider"]) == (g.kind, g.provider)
                      and r[measure] is not None]
            assert getattr(g, measure) == metrics.Percentiles(len(values), *(percentile(values, p)
                                                                             for p in metrics.PERCENTS))
    timeout = next(r for r in rows if r["error"])
    # Cut at its 0.3 s budget, not left hanging (a loaded machine recorded 351 ms: the bound is not a benchmark).
    assert timeout["error"] == "ProviderTimeout" and timeout["latency_ms"] < 300 + 1000
    assert metrics.compute(startup.get_engine().store, sources=["bench"]).empty


# -- the page --------------------------------------------------------------------------------------

def page() -> AppTest:
    return AppTest.from_string(WRAPPER, default_timeout=20).run()


def shown(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info])


def chart(at: AppTest) -> tuple[dict, dict[str, pd.DataFrame]]:
    """The page's one chart: its Vega-Lite spec and its datasets by name."""
    (element,) = at.get("vega_lite_chart")
    return (json.loads(element.proto.spec),
            {d.name: convert_arrow_bytes_to_pandas_df(d.data.data) for d in element.proto.datasets})


def test_empty_history_gets_a_friendly_message(engine_env):
    at = page()
    assert not at.exception
    assert "이 기간에 기록된 평가가 없습니다" in at.info[0].value
    assert not at.dataframe and not at.metric


def test_page_shows_tiles_table_and_chart(engine_env):
    store = startup.get_engine().store
    # The rows below (now-60 … now-30) fall in one minute, so in one chart bucket of any size (the day's is 15 min):
    # with a plain time.time() a bucket's boundary fell between them now and then, and the chart had two points.
    now = (time.time() - 65) // 60 * 60 + 65
    add(store, now - 60, latency_ms=8000.0, first_token_ms=700.0)
    add(store, now - 50, latency_ms=15_500.0, error="ProviderTimeout")
    add(store, now - 40, provider="openai", latency_ms=3000.0, first_token_ms=300.0, fallback=1)
    add(store, now - 30, kind="image", latency_ms=22_000.0, first_token_ms=6000.0)
    add(store, now - 3 * 86400, provider="openai", latency_ms=1000.0)  # only in the 7- and 30-day windows

    at = page()
    assert not at.exception and not at.info
    table = at.dataframe[0].value
    assert list(zip(table["provider"], table["kind"], table["count"], strict=True)) == [
        ("RunPod", "텍스트", 2), ("OpenAI", "텍스트", 1), ("RunPod", "사진", 1)]
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["평가 수"] == "4" and tiles["성공률"] == "75%" and tiles["시간 초과"] == "25%"
    assert tiles["사진 p95"] == "22.0초" and tiles["대체 · 병렬 요청"] == "1 · 0"
    spec, data = chart(at)
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "rule", "text"]
    targets = data[spec["layer"][1]["data"]["name"]]
    assert list(zip(targets["label"], targets["target"], strict=True)) == [("텍스트 목표 15초", 15.0),
                                                                           ("사진 목표 30초", 30.0)]
    points = data[spec["layer"][0]["data"]["name"]]
    assert sorted(points["kind"]) == ["사진", "텍스트"] and max(points["p95"]) == 22.0
    # No English on the chart: 24-hour numbers on the time axis ("09 AM" otherwise), and no English description
    # of every mark for a screen reader ("X-axis titled … for a time scale …"), one in the page's language instead.
    assert spec["layer"][0]["encoding"]["x"]["axis"]["format"] == "%m-%d %H:%M"
    assert spec["config"]["aria"] is False and spec["description"].startswith("차트:")

    at.segmented_control(key="perf_window").set_value("week").run()
    assert not at.exception
    assert at.metric[0].value == "5" and list(at.dataframe[0].value["count"]) == [2, 2, 1]
    at.segmented_control(key="perf_window").set_value("hour").run()
    assert at.metric[0].value == "4"

    at.multiselect(key="perf_providers").set_value(["openai"]).run()
    assert not at.exception
    assert list(at.dataframe[0].value["provider"]) == ["OpenAI"] and at.metric[0].value == "1"


def test_page_shows_the_second_readers_record(engine_env):
    from domain.answer import ScoredClass
    from domain.classes import by_code
    from domain.readings import DONE, UNAVAILABLE, Reading

    engine = startup.get_engine()
    now = time.time()
    cases = []
    for i, code in enumerate((1, 1, 7)):  # two agree with the first reading's class 1, one differs on risk
        add(engine.store, now - 300 + i, latency_ms=3000.0)
        case = engine.history.search()[0]["id"]
        engine.readings.ask(case, "runpod", job_id=None)
        cases.append(case)
        with engine.store.connect() as conn:
            conn.execute(assessments.update().where(assessments.c.id == case).values(label_code=1, label_score=80.0))
        engine.readings.record(case, Reading("runpod", "m", DONE, label=ScoredClass(by_code(code), 70),
                                             at=time.time(), elapsed_ms=40_000.0))
    add(engine.store, now - 100, latency_ms=3000.0)
    engine.readings.ask(engine.history.search()[0]["id"], "runpod", job_id=None)
    engine.readings.record(engine.history.search()[0]["id"],
                           Reading("runpod", "m", UNAVAILABLE, at=time.time(), elapsed_ms=300_000.0))

    at = page()
    assert not at.exception
    (double,) = [d.value for d in at.dataframe if "differ_risk" in d.value.columns]
    row = double.iloc[0]
    assert (row["provider"], row["asked"], row["read"], row["unavailable"], row["differ_risk"]) == (
        "RunPod", 4, 3, 1, 1)
    assert row["share_read"] == 0.75 and abs(row["agreement"] - 2 / 3) < 1e-9
    assert row["worker_s_per_case"] == (3 * 40 + 300) / 3
    assert "이중 판독" in [s.value for s in at.subheader]


def test_page_in_english_and_an_empty_window(engine_env):
    add(startup.get_engine().store, time.time() - 2 * 3600, latency_ms=4000.0)
    at = page()
    at.segmented_control(key="perf_window").set_value("week").run()
    at.session_state["lang"] = "en"  # as the sidebar's picker would set it
    at.run()
    assert not at.exception and not at.info
    assert at.segmented_control(key="perf_window").value == "week"  # the choice survives the language switch
    assert at.dataframe[0].value["kind"].tolist() == ["Text"] and at.metric[2].value == "4.0 s"
    assert "Targets: text 15 s, photos 30 s, success 95% or more." in shown(at)
    at.segmented_control(key="perf_window").set_value("hour").run()
    assert not at.exception and "No assessments were recorded in this period" in at.info[0].value
    assert at.segmented_control(key="perf_window").value == "hour"  # still there, to pick a wider window
