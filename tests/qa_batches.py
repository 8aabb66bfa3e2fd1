"""A fixed batch for the decision figures' tests (tests/test_qa_decision.py, tests/test_browser_qa_report.py).

20 cases, two providers; 5 malignant (melanoma, code 6):

    alpha: right on every malignant case but m5 (a nevus at 60, melanoma among the similar classes at 15);
           on the benign cases right except b1 and b2 (melanoma at 70: a false flag); b15 a failed call
    beta:  always "nevus" at 80 with melanoma similar at 30 (flagged), right on the benign, wrong on the malignant

Cases carry the cases file's optional columns (Fitzpatrick type, site, age, sex) and a label basis, as
qa.batch_input.BatchCase will; here a subclass adds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.classes import by_code
from qa.batch_input import BatchCase
from qa.batch_metrics import BatchReport, BatchRow

TITLES = {"alpha": "Alpha", "beta": "Beta"}


@dataclass(frozen=True)
class _Case(BatchCase):
    fitzpatrick: str | None = None
    site: str | None = None
    age: int | None = None
    sex: str | None = None
    label_basis: str | None = None


def _cases() -> list[_Case]:
    out = []
    for i in range(20):
        malignant = i < 5
        out.append(_Case(f"{'m' if malignant else 'b'}{i + 1 if malignant else i - 4}", i + 2, text="x",
                         expected=by_code(6 if malignant else 2),
                         fitzpatrick=("II", "V")[i % 2], site="back" if i < 10 else None,
                         age=(30, 50, 70, 45)[i % 4], sex=("female", "male")[i % 2],
                         label_basis="confirmed_answer" if i in (0, 5, 6) else "histology"))
    return out


def fixed_report() -> BatchReport:
    """The fixed batch above, as a run would report it."""
    cases = _cases()
    rows = []
    for case in cases:
        malignant = case.id.startswith("m")
        if case.id == "b15":
            rows.append(BatchRow(case=case, provider="alpha", model="a", error="ProviderTimeout: slow"))
        elif case.id == "m5":
            rows.append(BatchRow(case=case, provider="alpha", model="a", predicted=by_code(2), score=60,
                                 similar=((6, 15),), risk="benign"))
        elif malignant:
            rows.append(BatchRow(case=case, provider="alpha", model="a", predicted=by_code(6), score=90,
                                 risk="malignant"))
        elif case.id in ("b1", "b2"):
            rows.append(BatchRow(case=case, provider="alpha", model="a", predicted=by_code(6), score=70,
                                 risk="malignant"))
        else:
            rows.append(BatchRow(case=case, provider="alpha", model="a", predicted=by_code(2), score=85,
                                 similar=((6, 5),), risk="benign"))
        rows.append(BatchRow(case=case, provider="beta", model="b", predicted=by_code(2), score=80,
                             similar=((6, 30),), risk="malignant"))
    return BatchReport(run_id="fixed", providers=("alpha", "beta"), models={"alpha": "a", "beta": "b"},
                       cases=tuple(cases), rows=rows)
