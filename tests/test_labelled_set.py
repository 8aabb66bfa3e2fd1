"""From daily QA to a labelled set: reviewed QA cases as a cases CSV and a photo ZIP that the batch reads back."""

from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import sys
import zipfile

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from PIL import Image
from streamlit.testing.v1 import AppTest

import cli
import startup
from domain.classes import by_code
from domain.provenance import ARBITRATED
from domain.provenance import CLINICIAN as REVIEWER
from domain.provenance import CONFIRMED_ANSWER as CONFIRMED
from qa.batch_input import COLUMNS, photos_from_zip, read_cases
from qa.compare import compare
from qa.labelled_set import (
    CONTRADICTED,
    CSV_COLUMNS,
    NO_CLASS,
    NO_PHOTO,
    UNREADABLE,
    labelled_set,
)
from storage import reviews as reviews_module
from storage.audit import AuditFilters
from storage.history import History
from storage.readings import Readings
from storage.reviews import Reviews
from storage.schema import assessments
from testkit.answers import BENIGN, VALID
from testkit.limits import MAX_CASES, PHOTO_LIMIT
from tests.cli_runs import CliRun, run_cli
from tests.conftest import PROJECT_ROOT, RUNPOD_MODEL, Clock
from tests.page_text import alerts, shown
from utils.crypto import Sealer

CLI = str(PROJECT_ROOT / "cli.py")
PAGE = PROJECT_ROOT / "app_pages" / "qa.py"
SCRIPT = f"""
import runpy
from ui.state import init_state
init_state()
runpy.run_path({str(PAGE)!r}, run_name="__main__")
"""
T0 = 1_700_000_000.0
DAY = 86400.0


def _jpeg(colour: tuple[int, int, int] = (150, 90, 80), side: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(out, "JPEG", quality=85)
    return out.getvalue()


def answer(history: History, case: str, provider: str, label: int | None, *, at: float = T0, kind: str = "text",
           text: str = "pearly papule", photo: bytes | None = None, user: str | None = None) -> str:
    """One recorded answer of QA case `case`."""
    row = {"source": "qa", "qa_case": case, "kind": kind, "language": "en", "text": text, "provider": provider,
           "complete": 1, "label_code": label, "created_at": at, "user": user}
    if photo is not None:
        row["photo"] = photo
    return history.record(row)


@pytest.fixture
def review_clock(monkeypatch) -> Clock:
    """Reviews stamped by a hand-moved clock, so which one is the latest is the test's choice."""
    clock = Clock(T0 + 3600)
    monkeypatch.setattr(reviews_module, "now", clock)
    return clock


def review(reviews: Reviews, clock: Clock, assessment_id: str, verdict: str, expected: int | None = None) -> None:
    clock.now += 60
    reviews.add(assessment_id, verdict, expected_code=expected)


@pytest.fixture
def reviewed(store, review_clock):
    """A history of reviewed QA cases on both databases: (history, reviews, PHOTO)."""
    history, reviews, photo = History(store, keep_images=True), Reviews(store), _jpeg()
    # A: a correct mark confirms the answer's class.
    a_run = answer(history, "case-a", "runpod", 1, text="pearly papule, 5 mm")
    answer(history, "case-a", "openai", 7, text="pearly papule, 5 mm")
    review(reviews, review_clock, a_run, "correct")
    # B: an incorrect mark with the reviewer's expected class.
    b_run = answer(history, "case-b", "runpod", 7, at=T0 + 1, text="waxy plaque")
    review(reviews, review_clock, b_run, "incorrect", expected=3)
    # C: two answers both marked correct, with different classes: the latest review wins.
    c_run = answer(history, "case-c", "runpod", 1, at=T0 + 2, text="scaly patch")
    c_oai = answer(history, "case-c", "openai", 7, at=T0 + 2, text="scaly patch")
    review(reviews, review_clock, c_run, "correct")
    review(reviews, review_clock, c_oai, "correct")
    # D: only an incorrect mark, no expected class: no class can be given.
    d_run = answer(history, "case-d", "runpod", 4, at=T0 + 3)
    review(reviews, review_clock, d_run, "incorrect")
    # E: a later incorrect mark on the same class another answer was confirmed with.
    e_run = answer(history, "case-e", "runpod", 6, at=T0 + 4)
    e_oai = answer(history, "case-e", "openai", 6, at=T0 + 4)
    review(reviews, review_clock, e_run, "correct")
    review(reviews, review_clock, e_oai, "incorrect")
    # F: a photo case with its kept photo; G: a photo case whose photo was not kept.
    f_run = answer(history, "case-f", "runpod", 8, at=T0 + 5, kind="image", text="", photo=photo)
    review(reviews, review_clock, f_run, "correct")
    g_run = answer(history, "case-g", "runpod", 8, at=T0 + 6, kind="image", text="")
    review(reviews, review_clock, g_run, "correct")
    # H: one answer re-reviewed: its own latest review counts (correct, then incorrect with a class).
    h_run = answer(history, "case-h", "runpod", 2, at=T0 + 7, text="red nodule")
    review(reviews, review_clock, h_run, "correct")
    review(reviews, review_clock, h_run, "incorrect", expected=13)
    # I: never reviewed: neither in the set nor counted.
    answer(history, "case-i", "runpod", 5, at=T0 + 8)
    return history, reviews, photo


def test_an_arbitration_between_two_readings_labels_its_case_over_any_review(reviewed, store):
    history, reviews, _ = reviewed
    page_case = history.record({"source": "page", "kind": "text", "language": "ko", "text": "등의 검은 점",
                                "provider": "openai", "complete": 1, "label_code": 7, "created_at": T0 + 9})
    readings = Readings(store)
    readings.arbitrate(page_case, 6, "biopsy: melanoma", by="dr.kim")  # never reviewed: arbitrated alone
    a_run = history.search()[-1]["id"]  # case-a's first answer, confirmed as class 1 by a review
    readings.arbitrate(a_run, 8, "", by="dr.kim")
    found = labelled_set(history, reviews, arbitrations=readings.arbitrated())
    got = {c.id: (c.expected.code, c.basis) for c in found.cases}
    assert got[page_case] == (6, ARBITRATED) and got["case-a"] == (8, ARBITRATED)
    assert got["case-b"] == (3, REVIEWER)  # the others as before


def test_expected_classes_come_from_correct_marks_and_reviewer_classes_and_the_latest_wins(reviewed):
    history, reviews, photo = reviewed
    found = labelled_set(history, reviews)

    got = {c.id: (c.expected.code, c.basis, c.image) for c in found.cases}
    assert got == {"case-a": (1, CONFIRMED, ""), "case-b": (3, REVIEWER, ""), "case-c": (7, CONFIRMED, ""),
                   "case-f": (8, CONFIRMED, "case-f.jpg"), "case-h": (13, REVIEWER, "")}
    assert [c.id for c in found.cases] == ["case-a", "case-b", "case-c", "case-f", "case-h"]  # oldest first
    assert found.left_out == {NO_CLASS: ("case-d",), CONTRADICTED: ("case-e",), NO_PHOTO: ("case-g",)}
    assert found.left_out_count == 3 and found.photos == 1
    assert next(c for c in found.cases if c.id == "case-f").photo == photo
    assert next(c for c in found.cases if c.id == "case-a").text == "pearly papule, 5 mm"


def test_since_and_user_narrow_the_set(store, review_clock):
    history, reviews = History(store), Reviews(store)
    old = answer(history, "old", "runpod", 1, at=T0 - 10 * DAY, user="dr.kim")
    mine = answer(history, "mine", "runpod", 7, at=T0, user="dr.kim")
    theirs = answer(history, "theirs", "runpod", 7, at=T0, user="dr.lee")
    for aid in (old, mine, theirs):
        review(reviews, review_clock, aid, "correct")
    assert [c.id for c in labelled_set(history, reviews).cases] == ["old", "mine", "theirs"]
    assert [c.id for c in labelled_set(history, reviews, since=T0 - DAY).cases] == ["mine", "theirs"]
    assert [c.id for c in labelled_set(history, reviews, user="dr.kim").cases] == ["old", "mine"]


def test_the_csv_and_zip_read_back_as_a_batch_with_the_right_classes_and_photos(reviewed):
    history, reviews, photo = reviewed
    found = labelled_set(history, reviews)
    data, archive = found.csv_bytes(), found.zip_bytes()

    assert data.startswith(b"\xef\xbb\xbf")  # Excel's BOM: Korean text opens right
    header = next(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(header) == CSV_COLUMNS and tuple(header[:4]) == COLUMNS
    cases = read_cases(data, photos_from_zip(archive, max_entry_bytes=PHOTO_LIMIT), limit=MAX_CASES)
    assert all(c.valid for c in cases), [c.problem for c in cases if not c.valid]
    assert {c.id: c.expected.code for c in cases} == {c.id: c.expected.code for c in found.cases}
    photos = photos_from_zip(archive, max_entry_bytes=PHOTO_LIMIT)
    (with_photo,) = [c for c in cases if c.image]
    assert with_photo.id == "case-f" and photos[with_photo.photo_key] == photo
    assert list(photos) == ["case-f.jpg"]
    assert {c.id: c.text for c in cases}["case-b"] == "waxy plaque"


def test_text_that_looks_like_a_formula_is_written_as_it_was_asked(store, review_clock):
    # The batch sends the text to the models as written: an apostrophe guard would change the case.
    history, reviews = History(store), Reviews(store)
    aid = answer(history, "case", "runpod", 1, text='-3 mm, "raised", 여러 줄\n두 번째 줄')
    review(reviews, review_clock, aid, "correct")
    (case,) = read_cases(labelled_set(history, reviews).csv_bytes(), limit=MAX_CASES)
    assert case.text == '-3 mm, "raised", 여러 줄\n두 번째 줄' and case.expected == by_code(1)


def test_an_empty_set_has_a_header_only_and_an_empty_zip(store):
    found = labelled_set(History(store), Reviews(store))
    assert found.cases == () and found.left_out == {}
    assert found.csv_bytes().decode("utf-8-sig").splitlines() == [",".join(CSV_COLUMNS)]
    assert zipfile.ZipFile(io.BytesIO(found.zip_bytes())).namelist() == []


def test_a_case_sealed_with_another_key_is_left_out_as_unreadable(store, review_clock):
    sealed = History(store, sealer=Sealer(Fernet.generate_key().decode()), keep_images=True)
    aid = answer(sealed, "sealed", "runpod", 1, kind="image", photo=_jpeg())
    reviews = Reviews(store)
    review(reviews, review_clock, aid, "correct")
    assert labelled_set(sealed, reviews).cases[0].id == "sealed"
    other = History(store, sealer=Sealer(Fernet.generate_key().decode()), keep_images=True)
    found = labelled_set(other, reviews)
    assert found.cases == () and found.left_out == {UNREADABLE: ("sealed",)}
    assert other.photo(aid) is None  # never a sealed token in place of a photo


# -- reviews: the expected class --------------------------------------------------------------------


def test_a_review_keeps_the_expected_class_and_refuses_what_is_no_class(store):
    history, reviews = History(store), Reviews(store)
    aid = answer(history, "case", "runpod", 7)
    reviews.add(aid, "incorrect", "closer to BCC", expected_code=1)
    reviews.add(aid, "correct")
    assert [r["expected_code"] for r in reviews.for_assessment(aid)] == [None, 1]
    for wrong in (15, -1, True, "1", 1.0):
        with pytest.raises(ValueError, match="expected class"):
            reviews.add(aid, "incorrect", expected_code=wrong)
    assert len(reviews.for_assessment(aid)) == 2


# -- the photo the history keeps --------------------------------------------------------------------


def _photo_column(assessment_id: str) -> bytes | None:
    with startup.get_engine().store.connect() as conn:
        return conn.execute(sa.select(assessments.c.photo).where(assessments.c.id == assessment_id)).scalar()


def _compare_photo(text: str = "") -> dict:
    engine = startup.get_engine()
    request = engine.make_request(text, _jpeg(side=900))
    return {"request": request, "results": compare(engine, request, ["runpod", "openai"])}


def test_a_qa_photo_is_kept_only_when_the_clinic_opted_in(engine_env, reconfigure):
    engine_env.responder = lambda r: VALID
    off = _compare_photo()
    for result in off["results"].values():
        assert _photo_column(result.assessment_id) is None  # HISTORY_KEEP_IMAGES is off by default
        assert startup.get_engine().history.photo(result.assessment_id) is None

    reconfigure(HISTORY_KEEP_IMAGES="true")
    on = _compare_photo()
    history = startup.get_engine().history
    shrunk = on["request"].image.jpeg
    ids = [r.assessment_id for r in on["results"].values()]
    assert [history.photo(aid) for aid in ids] == [shrunk, shrunk]  # the shrunk photo the providers were sent
    assert Image.open(io.BytesIO(shrunk)).size[0] <= startup.get_engine().settings.image_max_side
    assert "photo" not in history.get(ids[0])  # the pages' reads never carry it
    # A photo assessed on the diagnose page keeps its thumbnail only, never the photo.
    page = startup.diagnose(image=_jpeg(side=900))
    assert _photo_column(page.assessment_id) is None and history.get(page.assessment_id)["thumbnail"]
    # Deleting the case takes its photo with it.
    assert startup.get_engine().forget(ids[0])
    assert history.photo(ids[0]) is None and history.photo(ids[1]) == shrunk


def test_a_kept_qa_photo_is_sealed_at_rest_and_goes_with_the_retention_purge(engine_env, reconfigure):
    engine_env.responder = lambda r: VALID
    reconfigure(HISTORY_KEEP_IMAGES="true", DATA_ENCRYPTION_KEY=Fernet.generate_key().decode())
    done = _compare_photo()
    aid = done["results"]["runpod"].assessment_id
    stored = _photo_column(aid)
    assert stored and Sealer.is_sealed(stored) and done["request"].image.jpeg not in stored
    history = startup.get_engine().history
    assert history.photo(aid) == done["request"].image.jpeg
    assert history.purge(older_than_days=0) == 2
    assert _photo_column(aid) is None


# -- the command line -------------------------------------------------------------------------------


def run_export(*args: str) -> CliRun:
    return run_cli("qa", "export", *args)


def test_cli_exports_cases_and_photos_that_the_batch_runs(engine_env, reconfigure, tmp_path, capsys):
    reconfigure(HISTORY_KEEP_IMAGES="true")
    engine_env.responder = lambda r: BENIGN if r.body["model"] == RUNPOD_MODEL else VALID
    engine = startup.get_engine()
    reviews = Reviews(engine.store)
    text_case = compare(engine, engine.make_request("waxy stuck-on plaque"), ["runpod", "openai"])
    reviews.add(text_case["runpod"].assessment_id, "correct")  # BENIGN: seborrheic keratosis (7)
    photo_case = _compare_photo("pearly papule")
    reviews.add(photo_case["results"]["openai"].assessment_id, "incorrect", expected_code=6)
    unlabelled = compare(engine, engine.make_request("scaly patch"), ["runpod"])
    reviews.add(unlabelled["runpod"].assessment_id, "incorrect")

    out = tmp_path / "labelled"
    # The qa commands' one run as a real process: `python cli.py qa export`.
    done = subprocess.run([sys.executable, CLI, "qa", "export", "--out", str(out)], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "2 labelled cases, 1 with a photo" in done.stderr
    assert "left out 1: only 'incorrect' marks without an expected class" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["cases.csv", "photos.zip"]
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    photos = photos_from_zip((out / "photos.zip").read_bytes(), max_entry_bytes=PHOTO_LIMIT)
    cases = read_cases((out / "cases.csv").read_bytes(), photos, limit=MAX_CASES)
    assert sorted((c.expected.code, bool(c.image)) for c in cases) == [(6, True), (7, False)]

    # The clinic re-runs its labelled set as a batch, the ZIP given as it was written.
    report = tmp_path / "report"
    code = cli.main(["batch", str(out / "cases.csv"), "--images", str(out / "photos.zip"), "--providers", "runpod",
                     "--out", str(report)])
    assert code == 0, capsys.readouterr().err
    with (report / "results.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(not r["error"] for r in rows)
    assert sorted(r["expected"] for r in rows) == ["6", "7"]
    startup.close_audit()  # the export (the other process's) and the report are audit events
    exported = startup.audit_log().events(AuditFilters(action="labelled_set.exported"))
    assert len(exported) == 1 and exported[0].detail["count"] == 2 and len(exported[0].cases) == 2
    (made,) = startup.audit_log().events(AuditFilters(action="qa_report.exported"))
    assert made.detail == {"via": "cli", "format": "report", "count": 2}

    assert run_export("--out", str(out), "--since", "tomorrow").returncode == 2
    later = run_export("--out", str(tmp_path / "none"), "--since", "2999-01-01")
    assert later.returncode == 0 and "nothing to export" in later.stderr
    assert not (tmp_path / "none" / "cases.csv").exists()
    reconfigure(HISTORY_ENABLED="false")
    off = run_export("--out", str(out))
    assert off.returncode == 2 and "HISTORY_ENABLED=false" in off.stderr


# -- the page ---------------------------------------------------------------------------------------


def _page(lang: str = "ko") -> AppTest:
    at = AppTest.from_string(SCRIPT, default_timeout=30)
    at.session_state["lang"] = lang
    return at.run()


def test_page_review_gives_an_expected_class_and_the_labelled_set_downloads(engine_env):
    engine_env.responder = lambda r: BENIGN if r.body["model"] == RUNPOD_MODEL else VALID
    at = _page()
    at.session_state["user"] = "dr.kim"
    at.text_area(key="qa_text").input("waxy plaque").run()
    at = at.button(key="qa_run").click().run()
    assert not at.exception
    results = at.session_state["qa_results"]["results"]
    runpod, openai = results["runpod"].assessment_id, results["openai"].assessment_id

    # "Correct" with another class than the answer's is refused: it would make two labels of one mark.
    at.radio(key=f"qa_verdict_{openai}").set_value("correct").run()
    at.selectbox(key=f"qa_expected_{openai}").set_value(by_code(7)).run()
    at = at.button(key=f"qa_save_{openai}").click().run()
    assert any("'맞음'은 답변의 분류(기저세포암 (1))를 확인합니다" in w for w in alerts(at, "warning"))
    assert Reviews(startup.get_engine().store).for_assessment(openai) == []
    # "Incorrect" with the class it should have been is saved with it, and shown.
    at.radio(key=f"qa_verdict_{openai}").set_value("incorrect").run()
    at = at.button(key=f"qa_save_{openai}").click().run()
    assert not at.exception
    (saved,) = Reviews(startup.get_engine().store).for_assessment(openai)
    assert (saved["verdict"], saved["expected_code"]) == ("incorrect", 7)
    assert at.selectbox(key=f"qa_expected_{openai}").value is None  # ready for the next review
    assert "리뷰: 틀림 → 예상 분류 지루각화증 (7)" in shown(at)
    at.radio(key=f"qa_verdict_{runpod}").set_value("correct").run()
    at = at.button(key=f"qa_save_{runpod}").click().run()

    # Another user's reviewed case is not this user's to export.
    engine = startup.get_engine()
    other = compare(engine, engine.make_request("red nodule"), ["runpod"])
    Reviews(engine.store).add(other["runpod"].assessment_id, "correct")

    assert [t.label for t in at.tabs][2] == "라벨 세트"
    assert "HISTORY_KEEP_IMAGES가 꺼져 있어 환자 사진을 보관하지 않습니다" in " ".join(c.value for c in at.caption)
    assert "내가 기록한 사례만 내보냅니다." in " ".join(c.value for c in at.caption)
    at = at.button(key="qa_export_build").click().run()
    assert not at.exception
    assert at.success[-1].value == "라벨된 사례 1건, 그중 사진 0건"
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["사례 CSV 받기", "사진 ZIP 받기"]
    at.download_button(key="qa_export_csv").click().run()
    startup.close_audit()
    made = [(e.action.value, e.cases, e.detail.get("verdict"), e.detail.get("format"))
            for e in startup.audit_log().events(AuditFilters(user="dr.kim", newest_first=False))]
    assert made == [("review.recorded", (openai,), "incorrect", None), ("review.recorded", (runpod,), "correct", None),
                    ("labelled_set.exported", (), None, "csv")]  # the refused save made none
    cases, _photos, _left, data, archive = at.session_state["qa_labelled"]
    (case,) = read_cases(data, photos_from_zip(archive, max_entry_bytes=PHOTO_LIMIT), limit=MAX_CASES)
    assert case.expected == by_code(7) and case.text == "waxy plaque"


def test_page_says_when_nothing_can_be_exported(engine_env):
    at = _page()
    at = at.button(key="qa_export_build").click().run()
    assert not at.exception
    assert "예상 분류를 정할 수 있는 리뷰된 사례가 없습니다." in at.warning[-1].value
    assert at.get("download_button") == []
