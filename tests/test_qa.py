"""Provider QA: comparing providers on one case, their agreement, reviews, and the QA page."""

from __future__ import annotations

import inspect
import io
import sys
import types
from dataclasses import replace

import pytest
import sqlalchemy as sa
from PIL import Image
from streamlit.testing.v1 import AppTest

import startup
from domain.errors import ProviderAuthError
from domain.result import Diagnosis
from qa.compare import agreement, compare
from storage.reviews import Reviews, ReviewStore
from storage.schema import assessments
from storage.store import new_id
from testkit.answers import BENIGN, TRUNCATED, VALID
from testkit.fake_llm import Reply
from tests.app_scripts import QA_SCRIPT
from tests.conftest import OPENAI_MODEL, RUNPOD_MODEL
from tests.page_text import alerts
from tests.page_text import shown as page_words


def answer_per_model(runpod: Reply | str, openai: Reply | str):
    """A FakeLLM responder that answers RunPod's model and OpenAI's model differently."""
    return lambda request: {RUNPOD_MODEL: runpod, OPENAI_MODEL: openai}.get(request.body["model"])


def _request(text: str = "pearly papule beside the nose", qa_case: str | None = None):
    return replace(startup.get_engine().make_request(text), qa_case=qa_case)


def _rows(qa_case: str) -> list[dict]:
    query = sa.select(assessments).where(assessments.c.qa_case == qa_case).order_by(assessments.c.provider)
    with startup.get_engine().store.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


@pytest.fixture
def engine_on_both(engine_env, database_url, monkeypatch):
    """`engine_env` with the store on `database_url`: the comparisons and reviews run on SQLite, then PostgreSQL."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    startup.reset_engine()
    return engine_env


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1200, 900), (150, 90, 80)).save(out, "JPEG", quality=90)
    return out.getvalue()


# -- compare() and agreement() ----------------------------------------------------------------

def test_two_providers_that_agree_are_asked_at_once_and_recorded_as_one_case(engine_on_both):
    # Each answer waits 0.5 s: both requests arriving well within that shows they ran side by side.
    engine_env = engine_on_both
    engine_env.responder = answer_per_model(Reply(VALID, delay=0.5), Reply(VALID, delay=0.5))
    request = _request()
    results = compare(startup.get_engine(), request, ["runpod", "openai"])

    assert list(results) == ["runpod", "openai"]
    assert all(isinstance(r, Diagnosis) for r in results.values())
    assert {n: r.provider for n, r in results.items()} == {"runpod": "runpod", "openai": "openai"}
    first, second = engine_env.chat_requests
    assert abs(second.at - first.at) < 0.4
    assert {r.body["model"] for r in (first, second)} == {RUNPOD_MODEL, OPENAI_MODEL}

    verdict = agreement(results)
    assert verdict.agree is True and verdict.lesion.code == 1 and verdict.unusable == ()

    rows = _rows(history_case(results))
    assert [r["provider"] for r in rows] == ["openai", "runpod"]
    assert all(r["source"] == "qa" and r["label_code"] == 1 for r in rows)


def history_case(results: dict) -> str:
    """The qa_case the results were recorded under (one, shared by all of them)."""
    history = startup.get_engine().history
    cases = {history.get(r.assessment_id)["qa_case"] for r in results.values() if isinstance(r, Diagnosis)}
    (case,) = cases
    return case


def test_providers_that_disagree(engine_on_both):
    engine_on_both.responder = answer_per_model(VALID, BENIGN)
    request = _request(qa_case="case-1")
    results = compare(startup.get_engine(), request, ["runpod", "openai"])
    verdict = agreement(results)
    assert verdict.agree is False and verdict.lesion is None
    assert {n: c.code for n, c in verdict.classes.items()} == {"runpod": 1, "openai": 7}
    assert len(_rows("case-1")) == 2  # the caller's case id is kept


def test_a_failing_provider_is_its_own_error_and_nobody_stands_in_for_it(engine_on_both, reconfigure):
    engine_env = engine_on_both
    # Fallback on: compare must still ask each provider alone, or OpenAI would answer for RunPod.
    reconfigure(PROVIDER_FALLBACKS="runpod,openai")
    engine_env.responder = answer_per_model(Reply.error(401), VALID)
    results = compare(startup.get_engine(), _request(qa_case="case-2"), ["runpod", "openai", "runpod"])

    assert list(results) == ["runpod", "openai"]  # a name given twice is asked once
    assert isinstance(results["runpod"], ProviderAuthError) and "RUNPOD_API_KEY" in str(results["runpod"])
    assert results["runpod"].__traceback__ is None
    assert isinstance(results["openai"], Diagnosis) and results["openai"].tried == ("openai",)
    assert [r.body["model"] for r in engine_env.chat_requests].count(OPENAI_MODEL) == 1
    verdict = agreement(results)
    assert verdict.agree is None and verdict.unusable == ("runpod",) and set(verdict.classes) == {"openai"}
    failed = [r for r in _rows("case-2") if r["provider"] == "runpod"]
    assert failed[0]["error"] == "ProviderAuthError" and failed[0]["source"] == "qa"


def test_an_incomplete_answer_does_not_count_towards_agreement(engine_env):
    engine_env.responder = answer_per_model(VALID, TRUNCATED)
    results = compare(startup.get_engine(), _request(), ["runpod", "openai"])
    assert results["openai"].complete is False
    verdict = agreement(results)
    assert verdict.agree is None and verdict.unusable == ("openai",)
    assert compare(startup.get_engine(), _request(), []) == {}


# -- reviews ----------------------------------------------------------------------------------

def test_reviews_are_saved_and_read_back(engine_on_both):
    engine = startup.get_engine()
    engine_on_both.responder = answer_per_model(VALID, BENIGN)
    results = compare(engine, _request(qa_case="case-3"), ["runpod", "openai"])
    runpod, openai = results["runpod"].assessment_id, results["openai"].assessment_id
    reviews = Reviews(engine.store)

    reviews.add(runpod, "incorrect", "  looks like SK  ", reviewer="dr.kim")
    reviews.add(runpod, "correct", "second look: BCC", reviewer="dr.lee")
    reviews.add(openai, "incorrect")

    newest = reviews.for_assessment(runpod)
    assert [(r["verdict"], r["note"], r["reviewer"]) for r in newest] == [
        ("correct", "second look: BCC", "dr.lee"), ("incorrect", "looks like SK", "dr.kim")]
    assert {(r["provider"], r["verdict"]) for r in reviews.for_case("case-3")} == {
        ("runpod", "correct"), ("runpod", "incorrect"), ("openai", "incorrect")}
    latest = reviews.latest([runpod, openai, "no-such-id"])
    assert {aid: r["verdict"] for aid, r in latest.items()} == {runpod: "correct", openai: "incorrect"}
    assert reviews.latest([]) == {} and set(reviews.latest()) == {runpod, openai}
    assert reviews.for_case("another-case") == []

    with pytest.raises(ValueError, match="verdict"):
        reviews.add(runpod, "maybe")
    with pytest.raises(ValueError, match="not in the history"):
        reviews.add(new_id(), "correct")
    # Forgetting a case takes its reviews with it.
    assert engine.forget(runpod)
    assert reviews.for_assessment(runpod) == [] and set(reviews.latest()) == {openai}


def test_reviews_offer_the_review_store_contract():
    wanted = {name: inspect.signature(member) for name, member in vars(ReviewStore).items()
              if callable(member) and not name.startswith("_")}
    assert set(wanted) == {"add", "for_assessment", "for_case", "latest"}
    assert {name: inspect.signature(getattr(Reviews, name)) for name in wanted} == wanted


# -- the page -----------------------------------------------------------------------------------

def _page(lang: str = "ko") -> AppTest:
    at = AppTest.from_string(QA_SCRIPT, default_timeout=20)
    at.session_state["lang"] = lang
    return at.run()


def _compare(at: AppTest, text: str) -> AppTest:
    at.text_area(key="qa_text").input(text).run()
    return at.button(key="qa_run").click().run()


def _shown(at: AppTest) -> str:
    return page_words(at)


def test_page_compares_shows_agreement_and_saves_a_review(engine_env):
    at = _page()
    assert not at.exception
    assert at.multiselect(key="qa_providers").value == ["runpod", "openai"]
    at.session_state["user"] = "dr.kim"
    at = _compare(at, "코 옆의 진주빛 구진")
    assert not at.exception
    assert "모든 제공자가 일치합니다: 기저세포암 (1)" in at.success[0].value
    shown = _shown(at)
    assert "OpenAI" in shown and "RunPod" in shown and shown.count("기저세포암 · Basal cell carcinoma") == 2
    assert "점수 78 / 100" in shown and "첫 토큰" in shown and "새 답변" in shown and "완전한 답변" in shown

    state = at.session_state["qa_results"]
    aid = state["results"]["runpod"].assessment_id
    # Saving without a verdict says so and stores nothing.
    at = at.button(key=f"qa_save_{aid}").click().run()
    assert any("판정" in w for w in alerts(at, "warning"))
    at.radio(key=f"qa_verdict_{aid}").set_value("incorrect").run()
    at.text_input(key=f"qa_note_{aid}").input("SK에 더 가까움").run()
    at = at.button(key=f"qa_save_{aid}").click().run()
    assert not at.exception
    assert "리뷰: 틀림 — SK에 더 가까움 (dr.kim)" in _shown(at)  # as typed: no stray backslash
    assert at.text_input(key=f"qa_note_{aid}").value == ""  # ready for the next review
    (saved,) = Reviews(startup.get_engine().store).for_case(state["case"])
    assert (saved["assessment_id"], saved["verdict"], saved["reviewer"]) == (aid, "incorrect", "dr.kim")
    # The results stay while the reviewer works, and a re-run asks again.
    assert at.session_state["qa_results"]["case"] == state["case"]
    assert len(engine_env.chat_requests) == 2


def test_page_shows_disagreement_and_an_error_beside_an_answer(engine_env, reconfigure):
    reconfigure(LOCAL_BASE_URL=engine_env.url, LOCAL_MODEL="local-derm")
    engine_env.responder = lambda r: {RUNPOD_MODEL: Reply.error(401), "local-derm": BENIGN}.get(r.body["model"])
    at = _page("en")
    assert at.multiselect(key="qa_providers").value == ["runpod", "openai", "local"]
    at = _compare(at, "pearly papule")
    assert not at.exception
    assert at.warning[0].value.startswith("Providers disagree: OpenAI: Basal cell carcinoma (1) · "
                                          "Local server: Seborrheic keratosis (7)")
    assert "no usable answer from RunPod" in at.warning[0].value
    (message,) = alerts(at, "error")
    assert "tell your administrator" in message and "RUNPOD_API_KEY" not in message and "rpa-test" not in message
    shown = _shown(at)
    assert "Basal cell carcinoma · 기저세포암" in shown and "Seborrheic keratosis · 지루각화증" in shown
    # No review form for the provider that did not answer: there is nothing to review.
    results = at.session_state["qa_results"]["results"]
    assert len([b for b in at.button if b.key.startswith("qa_save_")]) == 2
    assert results["local"].assessment_id in {b.key.removeprefix("qa_save_") for b in at.button}


def test_page_sends_the_photo_to_each_provider_and_refuses_an_empty_case(engine_env):
    at = _page()
    at = at.button(key="qa_run").click().run()
    assert any("사진이나 병변 설명" in e.value for e in at.error) and engine_env.requests == []
    at.multiselect(key="qa_providers").set_value(["runpod"]).run()
    at.file_uploader(key="qa_photo_upload").set_value(("lesion.jpg", _jpeg(), "image/jpeg")).run()
    assert at.session_state["photo"] is None  # the diagnose page's photo is its own
    at = at.button(key="qa_run").click().run()
    assert not at.exception
    (sent,) = engine_env.chat_requests
    assert any(part.get("type") == "image_url" for part in sent.body["messages"][1]["content"])
    assert "사용할 수 있는 답변" in at.info[0].value  # one provider: nothing to compare


def test_batch_tab_is_the_batch_panel(engine_env, monkeypatch):
    panel = types.ModuleType("ui.batch_panel")
    panel.batch_panel = lambda engine: __import__("streamlit").markdown(f"batch panel for {len(engine.providers)}")
    monkeypatch.setitem(sys.modules, "ui.batch_panel", panel)
    at = _page()
    assert not at.exception and "batch panel for 3" in _shown(at)
    assert [t.label for t in at.tabs] == ["비교", "일괄", "라벨 세트"]
