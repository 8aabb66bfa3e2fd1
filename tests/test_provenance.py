"""Label provenance (issue 22): a review's basis, reviewer and note through the labelled set, the cases CSV, the batch
and results.csv; the same case twice counted once and a case labelled two ways left out; a refused review stays
said until the form changes."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from streamlit.testing.v1 import AppTest

import startup
from domain.provenance import ARBITRATED, CLINICIAN, CONFIRMED_ANSWER, HISTOLOGY, label_basis
from qa.batch import run_batch
from qa.batch_input import photos_from_zip, read_cases
from qa.case_screen import Conflict, Duplicate, screen, screen_lines
from qa.labelled_set import labelled_set
from qa.report import results_csv
from storage.history import History
from storage.readings import Readings
from storage.reviews import ReviewRefused, Reviews
from testkit.limits import MAX_CASES, PHOTO_LIMIT
from tests.app_scripts import QA_SCRIPT
from tests.cli_runs import run_cli
from tests.page_text import alerts

T0 = 1_700_000_000.0


def _answer(history: History, case: str, label: int, *, text: str = "pearly papule", at: float = T0) -> str:
    return history.record({"source": "qa", "qa_case": case, "kind": "text", "language": "en", "text": text,
                           "provider": "runpod", "complete": 1, "label_code": label, "created_at": at})


def test_a_label_that_only_repeats_the_answer_is_a_confirmed_answer():
    assert label_basis(None, None, 5) == CONFIRMED_ANSWER          # "correct", no class given
    assert label_basis(None, 5, 5) == CONFIRMED_ANSWER             # the answer's own class, named again
    assert label_basis(None, 6, 5) == CLINICIAN                    # another class: the reviewer's judgement
    assert label_basis(HISTOLOGY, None, 5) == HISTOLOGY            # a biopsy confirmed the answer
    assert label_basis(CLINICIAN, 5, 5) == CLINICIAN


def test_the_review_store_keeps_the_basis_and_refuses_what_it_cannot_use(store):
    history, reviews = History(store), Reviews(store)
    aid = _answer(history, "c", 1)
    reviews.add(aid, "correct", "biopsy: BCC", reviewer="dr.kim", basis=HISTOLOGY)
    (saved,) = reviews.for_assessment(aid)
    assert (saved["basis"], saved["note"], saved["reviewer"]) == (HISTOLOGY, "biopsy: BCC", "dr.kim")
    with pytest.raises(ReviewRefused) as refused:
        reviews.add(aid, "correct", basis="pathology")
    assert refused.value.code == "review.unknown_basis" and "histology, clinician" in str(refused.value)
    with pytest.raises(ReviewRefused) as refused:
        reviews.add(aid, "incorrect", basis=CLINICIAN)  # a basis for no class
    assert refused.value.code == "review.basis_without_class"
    with pytest.raises(ReviewRefused) as refused:
        reviews.add(aid, "correct", "n" * 501)
    assert refused.value.code == "review.note_too_long"
    assert len(reviews.for_assessment(aid)) == 1


def test_each_label_carries_its_basis_reviewer_and_note(store):
    history, reviews = History(store), Reviews(store)
    confirmed = _answer(history, "confirmed", 7)
    reviews.add(confirmed, "correct", reviewer="nurse.lee")
    repeated = _answer(history, "repeated", 7, at=T0 + 1)
    reviews.add(repeated, "correct", reviewer="nurse.lee", expected_code=7)
    biopsy = _answer(history, "biopsy", 6, at=T0 + 2)
    reviews.add(biopsy, "correct", "biopsy: melanoma", reviewer="dr.kim", basis=HISTOLOGY)
    judged = _answer(history, "judged", 7, at=T0 + 3)
    reviews.add(judged, "incorrect", "looks like a dermatofibroma", reviewer="dr.kim", expected_code=12)
    decided = _answer(history, "decided", 7, at=T0 + 4)
    readings = Readings(store)
    readings.arbitrate(decided, 8, "excised: melanoma in situ", by="dr.park")
    found = labelled_set(history, reviews, arbitrations=readings.arbitrated())
    got = {c.id: (c.expected.code, c.basis, c.reviewer, c.note) for c in found.cases}
    assert got == {
        "confirmed": (7, CONFIRMED_ANSWER, "nurse.lee", ""),
        "repeated": (7, CONFIRMED_ANSWER, "nurse.lee", ""),
        "biopsy": (6, HISTOLOGY, "dr.kim", "biopsy: melanoma"),
        "judged": (12, CLINICIAN, "dr.kim", "looks like a dermatofibroma"),
        "decided": (8, ARBITRATED, "dr.park", "excised: melanoma in situ"),
    }


def test_provenance_goes_from_the_review_through_the_batch_to_results_csv(engine_env):
    engine = startup.get_engine()
    history, reviews = startup.history(), startup.reviews()
    aid = _answer(history, "qa-1", 1, text="pearly papule beside the nose")
    reviews.add(aid, "correct", "biopsy:  nodular\nBCC", reviewer="dr.kim", basis=HISTOLOGY)
    other = _answer(history, "qa-2", 1, text="waxy nodule", at=T0 + 1)
    reviews.add(other, "correct", reviewer="nurse.lee")
    found = labelled_set(history, reviews)
    exported = next(csv.DictReader(io.StringIO(found.csv_bytes().decode("utf-8-sig"))))
    assert (exported["label_basis"], exported["label_reviewer"], exported["label_note"]) == \
        (HISTOLOGY, "dr.kim", "biopsy: nodular BCC")
    cases = read_cases(found.csv_bytes(), limit=MAX_CASES)
    assert [(c.label_basis, c.label_reviewer, c.label_note) for c in cases] == [
        (HISTOLOGY, "dr.kim", "biopsy: nodular BCC"), (CONFIRMED_ANSWER, "nurse.lee", None)]
    report = run_batch(engine, cases, {}, ["runpod"])
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(results_csv(report)))}
    assert (rows["qa-1"]["label_basis"], rows["qa-1"]["label_reviewer"], rows["qa-1"]["label_note"]) == \
        (HISTOLOGY, "dr.kim", "biopsy: nodular BCC")
    assert (rows["qa-2"]["label_basis"], rows["qa-2"]["label_note"]) == (CONFIRMED_ANSWER, "")
    # The export says where the labels come from: on the command line, and on the Labelled set tab.
    done = run_cli("qa", "export", "--out", "labelled")
    assert done.returncode == 0 and "label basis: 1 histology, 1 confirmed_answer" in done.stderr
    at = AppTest.from_string(QA_SCRIPT, default_timeout=20)
    at.session_state["lang"] = "en"
    at = at.run().button(key="qa_export_build").click().run()
    assert "Label basis: 1 histology, 1 only confirm a provider's answer." in " ".join(c.value for c in at.caption)
    assert any("1 of 2 labels only confirm a provider's own answer" in w for w in alerts(at, "warning"))


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


SCREENED = """id,text,image,expected
a,pearly papule,,1
a2,pearly  papule ,,1
a3,pearly papule,,
b,scaly patch,one.jpg,3
b2,scaly patch,copy.jpg,7
c,brown macule,one.jpg,14
c2,brown macule,other.jpg,14
d,red nodule,,2
"""


def test_the_same_case_runs_once_and_a_case_labelled_two_ways_not_at_all():
    # one.jpg and copy.jpg hold the same bytes; other.jpg is as long but differs.
    photos = photos_from_zip(_zip({"one.jpg": b"x" * 100, "copy.jpg": b"x" * 100, "other.jpg": b"y" * 100}),
                             max_entry_bytes=PHOTO_LIMIT)
    cases = read_cases(SCREENED, photos, limit=MAX_CASES)
    kept, duplicates, conflicts = screen(cases, photos)
    assert [c.id for c in kept] == ["a", "c", "c2", "d"]
    assert duplicates == [Duplicate("a", ("a2", "a3"))]
    assert conflicts == [Conflict(("b", "b2"), (3, 7))]
    assert screen_lines(duplicates, conflicts) == [
        "duplicate: a2, a3 are the same case as a (same text and photo): counted once",
        "conflict: b, b2 are one case labelled 3 and 7: left out"]
    # Photos in a folder (or any mapping) are compared by their bytes.
    same = {"one.jpg": b"x" * 100, "copy.jpg": b"x" * 100, "other.jpg": b"y" * 100}
    assert screen(read_cases(SCREENED, same, limit=MAX_CASES), same)[1:] == (duplicates, conflicts)


def test_the_batch_and_the_command_line_list_them_by_id(engine_env, tmp_path):
    cases_file = tmp_path / "cases.csv"
    cases_file.write_text("id,text,image,expected\na,pearly papule,,1\na2,pearly papule,,1\nb,scaly patch,,3\n"
                          "b2,scaly patch,,7\n", encoding="utf-8")
    report = run_batch(startup.get_engine(), read_cases(cases_file.read_bytes(), limit=MAX_CASES), {}, ["runpod"])
    assert [c.id for c in report.cases] == ["a"] and len(engine_env.chat_requests) == 1
    assert report.duplicates == [Duplicate("a", ("a2",))] and report.conflicts == [Conflict(("b", "b2"), (3, 7))]
    done = run_cli("batch", str(cases_file), "--providers", "runpod", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))["screened"] == {
        "duplicates": [{"kept": "a", "ids": ["a2"]}], "conflicts": [{"ids": ["b", "b2"], "labels": [3, 7]}]}
    assert "duplicate: a2 is the same case as a (same text and photo): counted once" in done.stdout
    assert "conflict: b, b2 are one case labelled 3 and 7: left out" in done.stdout
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")  # and the report says so, by id
    assert "Counted once: case a is repeated as a2" in page and "Left out: b, b2 are one case" in page


def test_a_refused_review_stays_said_until_the_form_changes(engine_env):
    at = AppTest.from_string(QA_SCRIPT, default_timeout=20)
    at.session_state["lang"] = "ko"  # AppTest formats a widget's options in Korean, the default, whatever the page
    at = at.run()
    at.text_area(key="qa_text").input("pearly papule beside the nose").run()
    at = at.button(key="qa_run").click().run()
    aid = at.session_state["qa_results"]["results"]["runpod"].assessment_id
    # A basis with an "incorrect" mark and no class: the store refuses it.
    at.radio(key=f"qa_verdict_{aid}").set_value("incorrect").run()
    at.selectbox(key=f"qa_basis_{aid}").set_value(HISTOLOGY).run()
    at = at.button(key=f"qa_save_{aid}").click().run()
    refusal = "근거에는 분류가 있어야 합니다"
    assert any(refusal in w for w in alerts(at, "warning"))
    # Another rerun (the reviewer scrolls to the other answer, a fragment reruns...): still said.
    at = at.run()
    assert any(refusal in w for w in alerts(at, "warning"))
    assert startup.reviews().for_assessment(aid) == []
    # The reviewer changes the form: the old refusal goes; then the review is saved with its basis.
    at.selectbox(key=f"qa_expected_{aid}").set_value(at.selectbox(key=f"qa_expected_{aid}").options[0]).run()
    assert not any(refusal in w for w in alerts(at, "warning"))
    at = at.button(key=f"qa_save_{aid}").click().run()
    assert not at.exception and not alerts(at, "warning")
    (saved,) = startup.reviews().for_assessment(aid)
    assert saved["basis"] == HISTOLOGY and saved["expected_code"] is not None
    assert "근거: 조직검사 (생검 또는 절제)" in " ".join(t.value for t in at.text)


def _panel_script():
    import startup
    from ui.batch_panel import batch_panel
    from ui.state import init_state

    init_state()
    batch_panel(startup.get_engine())


def test_the_batch_tab_lists_the_duplicates_and_conflicts_by_id(engine_env):
    at = AppTest.from_function(_panel_script, default_timeout=30)
    at.session_state["lang"] = "en"
    at.run()
    cases = "id,text,image,expected\na,pearly papule,,1\na2,pearly papule,,1\nb,scaly patch,,3\nb2,scaly patch,,7\n"
    at.file_uploader(key="batch_csv").set_value(("cases.csv", cases.encode(), "text/csv"))
    at.run()
    at.multiselect(key="batch_providers").set_value(["runpod"]).run()
    at.checkbox(key="batch_confirm").check().run()
    at.button(key="batch_run").click().run()
    assert not at.exception
    said = " ".join(t.value for t in at.text)
    assert "Counted once: case a is repeated as a2 (same text and photo)." in said
    assert "Left out: b, b2 are one case labelled with different classes (3, 7)" in said
    assert len(engine_env.chat_requests) == 1
