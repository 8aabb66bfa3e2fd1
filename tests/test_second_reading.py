"""Double reading: the clinic's model reads every case a second time in the background, beside the first answer.

One engine in-process against the fake OpenAI-protocol server, which answers as two providers (by model name);
the second reading runs as a real background job on the SQLite job store.
"""

from __future__ import annotations

import pytest

import startup
from domain.readings import AGREE, DIFFER_RISK, DONE, PENDING, UNAVAILABLE, Reading, concordance
from storage.readings import ArbitrationRefused, Readings
from testkit.answers import BENIGN, VALID
from testkit.fake_llm import Reply
from tests.conftest import OPENAI_MODEL, RUNPOD_MODEL
from tests.waiting import wait_until


def _by_model(fake, **replies):
    """The fake answers each provider by its model name: openai=..., runpod=... (a str or a Reply)."""
    models = {"openai": OPENAI_MODEL, "runpod": RUNPOD_MODEL}
    table = {models[name]: reply for name, reply in replies.items()}
    fake.responder = lambda request: table.get(request.body.get("model"))


def _asked(fake, model):
    return [r for r in fake.chat_requests if r.body.get("model") == model and r.body.get("max_tokens") != 1]


def _settled(case):
    engine = startup.get_engine()
    return wait_until(lambda: (r := engine.second.reading_of(case)) is not None and r.status != PENDING and r)


@pytest.fixture
def two_readers(engine_env, reconfigure):
    """OpenAI answers first; RunPod (the clinic's model) is the second reader."""
    reconfigure(SECOND_READER="runpod", SKIN_DIAGNOSIS_PROVIDER="openai", PROVIDER_FALLBACKS=None)
    return engine_env


def test_a_planted_disagreement_on_risk_is_differ_risk_and_both_readings_are_kept_apart(two_readers):
    _by_model(two_readers, openai=VALID, runpod=BENIGN)  # basal cell carcinoma vs seborrheic keratosis
    first = startup.diagnose(text="코 옆의 진주빛 구진")
    assert first.provider == "openai" and first.assessment_id  # the first answer did not wait for the second
    second = _settled(first.assessment_id)
    assert second.status == DONE and second.provider == "runpod" and second.model == RUNPOD_MODEL
    assert second.label.lesion.code == 7 and first.label.lesion.code == 1  # never blended
    engine = startup.get_engine()
    assert engine.readings.concordances([first.assessment_id]) == {first.assessment_id: DIFFER_RISK}
    # The case's own row is the first reading, unchanged.
    assert startup.history().get(first.assessment_id)["label_code"] == 1
    # Counted just after the reading is stored (another thread): waited for, not raced.
    counted = 'skinai_second_readings_total{concordance="differ_risk",provider="runpod"} 1.0'
    assert wait_until(lambda: counted in engine.observer.exposition().decode())


def test_agreement_and_a_repeat_case_asks_no_one(two_readers):
    _by_model(two_readers, openai=VALID, runpod=VALID)
    first = startup.diagnose(text="팔의 갈색 반점 하나")
    _settled(first.assessment_id)
    assert startup.get_engine().readings.concordances([first.assessment_id])[first.assessment_id] == AGREE
    asked = len(_asked(two_readers, RUNPOD_MODEL))
    again = startup.diagnose(text="팔의 갈색 반점 하나")
    reading = _settled(again.assessment_id)
    assert reading.cached and len(_asked(two_readers, RUNPOD_MODEL)) == asked  # cached like any answer


def test_a_second_reader_over_its_budget_is_unavailable_with_why_and_the_first_answer_stands(two_readers,
                                                                                            reconfigure):
    reconfigure(SECOND_READER_BUDGET_SECONDS="1", LLM_MAX_RETRIES="0")
    _by_model(two_readers, openai=VALID, runpod=Reply(VALID, delay=5))
    first = startup.diagnose(text="등의 검은 점, 최근 커짐")
    reading = _settled(first.assessment_id)
    assert reading.status == UNAVAILABLE and reading.reason is not None
    assert "1" in str(reading.reason) and "RunPod" in str(reading.reason)
    assert startup.get_engine().readings.concordances([first.assessment_id])[first.assessment_id] == UNAVAILABLE
    assert startup.history().get(first.assessment_id)["label_code"] == 1


def test_the_second_reader_may_take_longer_than_one_attempts_request_timeout(two_readers, reconfigure):
    # A cold worker's boot outlasts REQUEST_TIMEOUT; the second reading's one attempt may take its whole budget.
    reconfigure(REQUEST_TIMEOUT="0.5", LLM_MAX_RETRIES="0")
    _by_model(two_readers, openai=VALID, runpod=Reply(BENIGN, delay=1.5))
    first = startup.diagnose(text="정강이의 단단한 결절")
    assert _settled(first.assessment_id).status == DONE


def test_when_the_second_reader_answered_first_there_is_one_reading(two_readers, reconfigure):
    reconfigure(OPENAI_API_KEY=None)  # the clinic's model alone: it answers first, and nothing more is asked
    _by_model(two_readers, runpod=VALID)
    first = startup.diagnose(text="손등의 사마귀")
    assert first.provider == "runpod"
    assert startup.get_engine().second.reading_of(first.assessment_id) is None
    assert len(_asked(two_readers, RUNPOD_MODEL)) == 1


def test_a_restart_mid_reading_says_interrupted_and_the_first_answer_stands(two_readers):
    _by_model(two_readers, openai=VALID, runpod=Reply(VALID, hang=True))
    first = startup.diagnose(text="두피의 붉은 판")
    wait_until(lambda: _asked(two_readers, RUNPOD_MODEL))
    assert startup.get_engine().second.reading_of(first.assessment_id).status == PENDING
    startup.reset_engine()  # the process stops while the second reader works; the next one starts
    reading = startup.get_engine().second.reading_of(first.assessment_id)
    assert reading.status == UNAVAILABLE and reading.reason is not None
    assert startup.history().get(first.assessment_id)["label_code"] == 1


def test_concordance_rules():
    from domain.answer import ScoredClass
    from domain.classes import by_code

    def reading(code):
        return Reading("p", "m", DONE, label=ScoredClass(by_code(code), 70))

    assert concordance(reading(1), None) is None
    assert concordance(reading(1), reading(1)) == "agree"
    assert concordance(reading(1), reading(8)) == "differ"  # BCC and SCC: both malignant
    assert concordance(reading(1), reading(7)) == "differ_risk"
    assert concordance(reading(0), reading(3)) == "differ"  # both premalignant
    assert concordance(reading(1), Reading("p", "m", PENDING)) == "pending"
    assert concordance(reading(1), Reading("p", "m", UNAVAILABLE)) == "unavailable"


def test_readings_and_arbitration_on_both_databases(store):
    from storage.history import History

    store.migrate()
    case = History(store).record({"kind": "text", "language": "ko", "text": "사례", "provider": "openai",
                                  "model": "m", "complete": 1, "label_code": 1, "label_score": 78.0})
    readings = Readings(store)
    assert readings.of(case) is None
    readings.ask(case, "runpod", job_id="j1")
    assert readings.of(case).status == PENDING and readings.pending_job(case) == "j1"
    assert readings.concordances([case, "nope"]) == {case: PENDING}
    from domain.answer import ScoredClass
    from domain.classes import by_code
    done = Reading("runpod", "derm", DONE, label=ScoredClass(by_code(14), 61), summary="흑색점 소견", at=1.0)
    assert readings.record(case, done) == DIFFER_RISK
    got = readings.of(case)
    assert (got.status, got.label.lesion.code, got.summary) == (DONE, 14, "흑색점 소견")
    assert readings.pending_job(case) is None
    decided = readings.arbitrate(case, 6, "  biopsy: melanoma ", by="dr.kim")
    assert readings.arbitration_of(case) == decided and decided.note == "biopsy: melanoma"
    assert [a["code"] for a in readings.arbitrated()] == [6]
    with pytest.raises(ArbitrationRefused):
        readings.arbitrate(case, 15, "", by="dr.kim")
    with pytest.raises(ArbitrationRefused):
        readings.arbitrate("missing-case", 1, "", by="dr.kim")
    from storage.history import Filters
    other = History(store).record({"kind": "text", "language": "ko", "text": "다른 사례", "complete": 1})
    assert [r["id"] for r in History(store).search(Filters(concordance=DIFFER_RISK))] == [case]
    assert History(store).search(Filters(concordance=AGREE)) == [] and other
    History(store).delete(case)
    assert readings.of(case) is None and readings.arbitration_of(case) is None  # they go with the case


def test_double_reading_figures_count_what_was_read_how_late_and_how_often_it_agreed():
    from qa.double_reading import double_reading_figures

    rows = [{"provider": "runpod", "status": DONE, "concordance": AGREE, "asked_at": 0, "at": 4, "elapsed_ms": 4000,
             "cached": 0},
            {"provider": "runpod", "status": DONE, "concordance": DIFFER_RISK, "asked_at": 10, "at": 90,
             "elapsed_ms": 80000, "cached": 0},
            {"provider": "runpod", "status": DONE, "concordance": AGREE, "asked_at": 20, "at": 20.1, "elapsed_ms": 5,
             "cached": 1},
            {"provider": "runpod", "status": UNAVAILABLE, "concordance": UNAVAILABLE, "asked_at": 30, "at": 330,
             "elapsed_ms": 300000, "cached": 0},
            {"provider": "runpod", "status": PENDING, "concordance": PENDING, "asked_at": 40, "at": None,
             "elapsed_ms": None, "cached": 0}]
    (f,) = double_reading_figures(rows)
    assert (f.asked, f.read, f.pending, f.unavailable, f.agree, f.differ_risk) == (5, 3, 1, 1, 2, 1)
    assert f.share_read == 3 / 4 and f.agreement == 2 / 3
    assert f.worker_seconds == 384.0  # a cached reading cost no worker time; one over its budget did
    assert f.delay_p50_s == 4 and 0 < f.agreement_ci95[0] < 2 / 3 < f.agreement_ci95[1] < 1


def test_a_reading_is_recorded_when_the_history_is_written_between_its_read_and_its_write(tmp_path, monkeypatch):
    # SQLite: a transaction that has read fails at once ("database is locked") when another connection writes
    # before it does; the reading must take its write lock first, so the other writer waits instead.
    import sqlite3

    import storage.readings
    from domain.answer import ScoredClass
    from domain.classes import by_code
    from storage.history import History
    from storage.store import Store

    store = Store(tmp_path / "app.db")
    history = History(store)
    row = {"kind": "text", "language": "ko", "text": "사례", "provider": "openai", "model": "m", "complete": 1,
           "label_code": 1, "label_score": 78.0}
    case = history.record(row)
    readings = Readings(store)
    readings.ask(case, "runpod", job_id=None)
    writes = []

    def another_case_recorded_meanwhile(first, second):
        other = sqlite3.connect(tmp_path / "app.db", timeout=0.05)
        try:
            with other:
                other.execute("UPDATE assessments SET label_score = 80 WHERE id = ?", (case,))
            writes.append("done")
        except sqlite3.OperationalError:
            writes.append("waited")  # the reading holds the write lock: the other writer waits its turn
        finally:
            other.close()
        return concordance(first, second)

    monkeypatch.setattr(storage.readings, "concordance", another_case_recorded_meanwhile)
    done = Reading("runpod", "derm", DONE, label=ScoredClass(by_code(1), 70), at=1.0)
    assert readings.record(case, done) == AGREE
    assert readings.of(case).status == DONE and writes == ["waited"]
    store.dispose()


def test_a_reading_whose_write_was_lost_is_taken_from_its_finished_job(two_readers, monkeypatch):
    _by_model(two_readers, openai=VALID, runpod=BENIGN)
    engine = startup.get_engine()
    monkeypatch.setattr(engine.readings, "record", lambda case, reading: None)  # the database dropped the write
    first = startup.diagnose(text="발바닥의 검은 반점, 기록 유실")
    reading = _settled(first.assessment_id)
    assert reading.status == DONE and reading.label.lesion.code == 7 and reading.provider == "runpod"


def test_a_clinician_who_chose_the_clinic_model_gets_its_answer_first_and_one_reading(two_readers):
    _by_model(two_readers, openai=VALID, runpod=BENIGN)
    engine = startup.get_engine()
    request = engine.make_request("손목의 갈색 구진", provider="runpod", source="page")
    first = engine.diagnose(request)
    assert first.provider == "runpod" and engine.second.reading_of(first.assessment_id) is None
