"""The figures of one provider over one set of cases (all of them, a subgroup, or those whose label is not a
confirmed answer): accuracy, the flag's sensitivity and specificity, each also by intention to diagnose, the
AUROC, and how precise each is at its n.

    core_figures(report.rows_for("runpod"))       # the dict qa.metrics places per provider and per subgroup
    subgroup_rows(rows)                           # {"fitzpatrick": {"V": [rows...]}, "age": {"65+": [...]}, ...}

Over answered cases (the usual figures) a failed call drops out of the denominator; "by intention to diagnose"
(`<key>_intention_to_diagnose`) keeps every case with an expected class and counts a failed call, or an answer
whose class could not be read, as wrong, as not flagged for a malignant case and as not cleared for a benign one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from domain.classes import CLASSES, Risk
from qa.batch_metrics import BatchRow
from qa.roc import malignancy_score, roc_curve
from qa.sample_size import stratum
from utils.stats import wilson_interval

CONFIDENCE = 0.95
MALIGNANT = tuple(c.code for c in CLASSES if c.risk is Risk.MALIGNANT)          # 1, 6, 8
PREMALIGNANT = tuple(c.code for c in CLASSES if c.risk is Risk.PREMALIGNANT)    # 0, 3
ITD = "_intention_to_diagnose"
# The columns a case may carry (qa.batch_input.BatchCase, when the cases file has them), in report order.
SUBGROUP_COLUMNS = ("fitzpatrick", "site", "age", "sex")
AGE_BANDS = ((40, "<40"), (65, "40-64"), (None, "65+"))
CONFIRMED_ANSWER = "confirmed_answer"


def share(successes: int, n: int) -> tuple[float | None, list[float] | None]:
    """successes / n with its Wilson interval as a list; (None, None) with nothing to divide."""
    interval = wilson_interval(successes, n, CONFIDENCE)
    return (successes / n if n else None), (list(interval) if interval else None)


def top3(row: BatchRow) -> bool:
    """Right at top-3: the expected class is the label or one of its two highest-scoring similar classes."""
    expected = row.case.expected.code if row.case.expected else None
    if row.predicted is not None and row.predicted.code == expected:
        return True
    # sorted() is stable: equal scores keep the order the model wrote them in.
    best_two = sorted(row.similar, key=lambda item: -item[1])[:2]
    return any(code == expected for code, _ in best_two)


def _expected_in(row: BatchRow, classes: set[int]) -> bool:
    return row.case.expected is not None and row.case.expected.code in classes


def detection(rows: Sequence[BatchRow], classes: set[int], flags: set[str]) -> dict:
    """Sensitivity and specificity of the card's flag (`row.risk` in `flags`) for expected classes in `classes`,
    over the answered rows (`rows` holds only those), with the counts behind them."""
    positives = [r for r in rows if _expected_in(r, classes)]
    negatives = [r for r in rows if r.case.expected and not _expected_in(r, classes)]
    flagged = sum(1 for r in positives if r.risk in flags)
    cleared = sum(1 for r in negatives if r.risk not in flags)
    sensitivity, sensitivity_ci = share(flagged, len(positives))
    specificity, specificity_ci = share(cleared, len(negatives))
    return {"sensitivity": sensitivity, "sensitivity_ci95": sensitivity_ci, "positives": len(positives),
            "flagged": flagged, "specificity": specificity, "specificity_ci95": specificity_ci,
            "negatives": len(negatives), "cleared": cleared}


def detection_itd(rows: Sequence[BatchRow], classes: set[int], flags: set[str]) -> dict:
    """The same over every row with an expected class: no answer is not flagged and not cleared."""
    labelled = [r for r in rows if r.case.expected is not None]
    positives = [r for r in labelled if _expected_in(r, classes)]
    negatives = [r for r in labelled if not _expected_in(r, classes)]
    flagged = sum(1 for r in positives if r.answered and r.risk in flags)
    cleared = sum(1 for r in negatives if r.answered and r.predicted is not None and r.risk not in flags)
    sensitivity, sensitivity_ci = share(flagged, len(positives))
    specificity, specificity_ci = share(cleared, len(negatives))
    return {f"sensitivity{ITD}": sensitivity, f"sensitivity{ITD}_ci95": sensitivity_ci,
            f"positives{ITD}": len(positives), f"flagged{ITD}": flagged,
            f"specificity{ITD}": specificity, f"specificity{ITD}_ci95": specificity_ci,
            f"negatives{ITD}": len(negatives), f"cleared{ITD}": cleared}


def core_figures(rows: Sequence[BatchRow]) -> dict:
    """One provider's figures over `rows` (its rows for some cases, answered or not)."""
    judged = [r for r in rows if r.correct is not None]
    labelled = [r for r in rows if r.case.expected is not None]
    n = len(judged)
    top1, top1_ci = share(sum(1 for r in judged if r.correct), n)
    top3_share, top3_ci = share(sum(1 for r in judged if top3(r)), n)
    top1_itd, top1_itd_ci = share(sum(1 for r in labelled if r.correct), len(labelled))
    top3_itd, top3_itd_ci = share(sum(1 for r in labelled if r.correct is not None and top3(r)), len(labelled))
    malignant = detection(judged, set(MALIGNANT), {Risk.MALIGNANT.value})
    malignant_itd = detection_itd(rows, set(MALIGNANT), {Risk.MALIGNANT.value})
    wider_classes, wider_flags = set(MALIGNANT + PREMALIGNANT), {Risk.MALIGNANT.value, Risk.PREMALIGNANT.value}
    roc = roc_curve((malignancy_score(r), _expected_in(r, set(MALIGNANT))) for r in judged)
    return {
        "n": n, "unanswered": sum(1 for r in labelled if not r.answered),
        "top1_accuracy": top1, "top1_ci95": top1_ci, "top3_accuracy": top3_share, "top3_ci95": top3_ci,
        **{f"malignant_{key}": value for key, value in malignant.items()},
        "malignant_or_premalignant": {**detection(judged, wider_classes, wider_flags),
                                      **detection_itd(rows, wider_classes, wider_flags)},
        f"n{ITD}": len(labelled),
        f"top1_accuracy{ITD}": top1_itd, f"top1_accuracy{ITD}_ci95": top1_itd_ci,
        f"top3_accuracy{ITD}": top3_itd, f"top3_accuracy{ITD}_ci95": top3_itd_ci,
        **{f"malignant_{key}": value for key, value in malignant_itd.items()},
        "malignant_auroc": roc.auroc, "malignant_auroc_ci95": list(roc.auroc_ci) if roc.auroc_ci else None,
        "sample_size": [
            stratum("all cases", sum(1 for r in judged if r.correct), n),
            stratum("malignant cases", malignant["flagged"], malignant["positives"]),
            stratum("benign cases", malignant["cleared"], malignant["negatives"]),
        ],
    }


def age_band(age: object) -> str | None:
    """"<40", "40-64" or "65+" for an age in whole years; None when there is none."""
    if not isinstance(age, int) or isinstance(age, bool):
        return None
    return next(label for limit, label in AGE_BANDS if limit is None or age < limit)


def _value(row: BatchRow, column: str) -> str | None:
    value = getattr(row.case, column, None)  # the cases file's optional columns, when it has them
    if column == "age":
        return age_band(value)
    text = str(value).strip() if value is not None else ""
    return text or None


def subgroup_rows(rows: Sequence[BatchRow]) -> dict[str, dict[str, list[BatchRow]]]:
    """The rows per subgroup column and value, for the columns some case has a value in (sorted values)."""
    out: dict[str, dict[str, list[BatchRow]]] = {}
    for column in SUBGROUP_COLUMNS:
        groups: dict[str, list[BatchRow]] = {}
        for row in rows:
            value = _value(row, column)
            if value is not None:
                groups.setdefault(value, []).append(row)
        if groups:
            out[column] = {value: groups[value] for value in sorted(groups, key=_order(column))}
    return out


def _order(column: str) -> Callable[[str], tuple[int, str]]:
    """Age bands youngest first; any other column's values in text order."""
    bands = [label for _, label in AGE_BANDS]
    return lambda v: (bands.index(v) if column == "age" and v in bands else 0, v)


def not_confirmed_answer(rows: Sequence[BatchRow]) -> list[BatchRow]:
    """The rows whose label is not only a provider's own answer confirmed (`label_basis`)."""
    return [r for r in rows if getattr(r.case, "label_basis", None) != CONFIRMED_ANSWER]
