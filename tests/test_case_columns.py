"""The cases CSV's optional columns (issue 22): subgroups (fitzpatrick, site, age, sex) and the label's provenance
(label_basis, label_reviewer, label_note), each checked, normalised, and carried to results.csv."""

from __future__ import annotations

import csv
import io

import pytest

from qa.batch_input import read_cases
from qa.batch_metrics import BatchReport, BatchRow
from qa.case_columns import OPTIONAL_COLUMNS
from qa.report import RESULT_COLUMNS, read_results, results_csv
from testkit.limits import MAX_CASES

HEADER = "id,text,image,expected," + ",".join(OPTIONAL_COLUMNS)


def _one(**values: str):
    row = {"id": "a", "text": "pearly papule", "image": "", "expected": "1", **values}
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER.split(","))
    writer.writeheader()
    writer.writerow(row)
    return read_cases(out.getvalue(), limit=MAX_CASES)[0]


@pytest.mark.parametrize(("column", "written", "kept"), [
    ("fitzpatrick", "III", "III"), ("fitzpatrick", "4", "IV"), ("fitzpatrick", "vi", "VI"),
    ("fitzpatrick", "2.0", "II"), ("fitzpatrick", "type 5", "V"),
    ("site", "  left   forearm ", "left forearm"), ("site", "등", "등"),
    ("age", "54", 54), ("age", "0", 0), ("age", "120", 120), ("age", "61.0", 61),
    ("sex", "female", "female"), ("sex", "M", "male"), ("sex", "f", "female"), ("sex", "Other", "other"),
    ("label_basis", "histology", "histology"), ("label_basis", "Confirmed answer", "confirmed_answer"),
    ("label_basis", "clinician", "clinician"), ("label_basis", "arbitrated", "arbitrated"),
    ("label_reviewer", "dr.kim", "dr.kim"), ("label_note", "biopsy: melanoma", "biopsy: melanoma"),
])
def test_a_good_value_is_kept_in_its_normal_form(column, written, kept):
    case = _one(**{column: written})
    assert case.valid and getattr(case, column) == kept


@pytest.mark.parametrize(("column", "written", "said"), [
    ("fitzpatrick", "VII", "bad fitzpatrick value 'VII': use I, II, III, IV, V or VI (or 1-6)"),
    ("fitzpatrick", "0", "bad fitzpatrick value '0'"), ("fitzpatrick", "pale", "bad fitzpatrick value 'pale'"),
    ("site", "x" * 81, "site is too long (81 characters): at most 80"),
    ("age", "121", "bad age '121': use whole years from 0 to 120"), ("age", "-1", "bad age '-1'"),
    ("age", "54.5", "bad age '54.5'"), ("age", "fifty", "bad age 'fifty'"),
    ("sex", "unknown", "bad sex value 'unknown': use female, male or other (or f, m)"),
    ("label_basis", "biopsy", "bad label_basis 'biopsy': use histology, clinician, arbitrated or confirmed_answer"),
    ("label_reviewer", "r" * 81, "label_reviewer is too long (81 characters): at most 80"),
    ("label_note", "n" * 501, "label_note is too long (501 characters): at most 500"),
])
def test_a_bad_value_is_a_row_problem_that_says_what_to_write(column, written, said):
    case = _one(**{column: written})
    assert not case.valid
    assert case.problem.startswith("line 2 (id a): ") and said in case.problem
    assert [m.code for m in case.problem_messages] == [f"batch.row_bad_{column}"]
    assert getattr(case, column) is None


def test_the_columns_are_optional_and_empty_cells_are_none():
    case = read_cases("id,text,image,expected\na,papule,,1\n", limit=MAX_CASES)[0]
    assert case.valid and all(getattr(case, c) is None for c in OPTIONAL_COLUMNS)
    case = _one()
    assert case.valid and all(getattr(case, c) is None for c in OPTIONAL_COLUMNS)


def test_a_row_with_several_bad_values_names_each():
    case = _one(age="200", sex="x", fitzpatrick="9")
    assert [m.code for m in case.problem_messages] == ["batch.row_bad_fitzpatrick", "batch.row_bad_age",
                                                       "batch.row_bad_sex"]


def test_the_values_go_to_results_csv_and_come_back_on_resume(tmp_path):
    case = _one(fitzpatrick="5", site="scalp", age="70", sex="m", label_basis="histology", label_reviewer="dr.kim",
                label_note="biopsy: BCC, nodular")
    report = BatchReport(run_id="r", providers=("runpod",), models={"runpod": "m"}, cases=(case,))
    report.rows = [BatchRow(case=case, provider="runpod", model="m", score=80.0, risk="benign", complete=True)]
    text = results_csv(report)
    row = next(csv.DictReader(io.StringIO(text)))
    assert tuple(row) == RESULT_COLUMNS
    assert {c: row[c] for c in OPTIONAL_COLUMNS} == {
        "fitzpatrick": "V", "site": "scalp", "age": "70", "sex": "male", "label_basis": "histology",
        "label_reviewer": "dr.kim", "label_note": "biopsy: BCC, nodular"}
    (tmp_path / "results.csv").write_text(text, encoding="utf-8")
    done = read_results(tmp_path / "results.csv", [case], ["runpod"])
    assert done[("a", "runpod")].case.fitzpatrick == "V"
