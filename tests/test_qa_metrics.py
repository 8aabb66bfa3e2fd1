"""metrics.json and the verdict: exact figures on a set computed by hand, the JSON shape, the wording.

The hand-computed set (three providers; `never` fails every call):

    case  expected  alpha: class score similar                risk           beta (always 6 at 80)
    c1    6         6  90  2:30                   ✓           malignant      ✓
    c2    6         2  60  6:25 14:10             ✗ top-3 ✓  malignant (6 ≥ 20)   ✓
    c3    1         7  55  10:30 11:19 1:19       ✗ top-3 ✗  benign (1 < 20)      ✗
    c4    0         0  70  —                      ✓           premalignant   ✗
    c5    7         7 100  —                      ✓           benign         ✗
    c6    7        14  40  7:40                   ✗ top-3 ✓  benign         ✗
    c7    2         2  30  —                      ✓           benign         ✗
    c8    —         2  50                         (no expected class: not counted)
    c9   14         call failed                   unanswered                   ✗

In c3 the expected class ties with the second similar class and comes after it in the answer, so it is
not among the two highest (the answer's order decides). In c6 the similar class ties with the label.
"""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from domain.classes import Risk, by_code
from domain.parser import parse_answer
from domain.result import Diagnosis
from qa.batch import run_batch
from qa.batch_input import BatchCase, read_cases
from qa.batch_metrics import BatchReport, BatchRow
from qa.metrics import MIN_N_FOR_INTERVALS, metrics_json, qa_metrics, verdict
from testkit.answers import xml_answer
from testkit.fake_llm import Reply
from testkit.limits import MAX_CASES
from utils.stats import wilson_interval

CASES = {f"c{i}": BatchCase(f"c{i}", i + 1, text=f"case {i}", expected=by_code(code) if code is not None else None)
         for i, code in enumerate((6, 6, 1, 0, 7, 7, 2, None, 14), start=1)}
ALPHA = {  # case: (class, score, similar, risk)
    "c1": (6, 90, ((2, 30),), "malignant"),
    "c2": (2, 60, ((6, 25), (14, 10)), "malignant"),
    "c3": (7, 55, ((10, 30), (11, 19), (1, 19)), "benign"),
    "c4": (0, 70, (), "premalignant"),
    "c5": (7, 100, (), "benign"),
    "c6": (14, 40, ((7, 40),), "benign"),
    "c7": (2, 30, (), "benign"),
    "c8": (2, 50, (), "benign"),
}
NAMES = {"alpha": "Alpha", "beta": "Beta", "never": "Never"}


def _answered(case: str, provider: str, code: int, score: float, similar=(), risk: str = "benign") -> BatchRow:
    return BatchRow(case=CASES[case], provider=provider, model=f"{provider}-model", predicted=by_code(code),
                    score=score, risk=risk, similar=tuple(similar), complete=True, latency_ms=100.0)


def _failed(case: str, provider: str) -> BatchRow:
    return BatchRow(case=CASES[case], provider=provider, model=f"{provider}-model", error="ProviderTimeout: slow")


def hand_report() -> BatchReport:
    rows = []
    for case in CASES:
        rows.append(_answered(case, "alpha", *ALPHA[case][:3], risk=ALPHA[case][3]) if case in ALPHA
                    else _failed(case, "alpha"))
        rows.append(_answered(case, "beta", 6, 80, risk="malignant"))
        rows.append(_failed(case, "never"))
    return BatchReport(run_id="batch-test", providers=("alpha", "beta", "never"),
                       models={p: f"{p}-model" for p in ("alpha", "beta", "never")}, cases=tuple(CASES.values()),
                       rows=rows)


def _ci(k: int, n: int) -> list[float]:
    return list(wilson_interval(k, n))


def test_figures_of_the_hand_computed_set():
    m = qa_metrics(hand_report(), NAMES)
    alpha = m["providers"]["alpha"]
    assert (alpha["title"], alpha["model"], alpha["n"], alpha["unanswered"]) == ("Alpha", "alpha-model", 7, 1)
    assert (alpha["top1_accuracy"], alpha["top1_ci95"]) == (4 / 7, _ci(4, 7))
    assert (alpha["top3_accuracy"], alpha["top3_ci95"]) == (6 / 7, _ci(6, 7))
    # Malignant (1, 6, 8): c1, c2 flagged (c2 by its similar melanoma at 25), c3 missed (BCC at 19).
    assert {k: alpha[f"malignant_{k}"] for k in ("positives", "flagged", "negatives", "cleared")} == {
        "positives": 3, "flagged": 2, "negatives": 4, "cleared": 4}
    assert (alpha["malignant_sensitivity"], alpha["malignant_sensitivity_ci95"]) == (2 / 3, _ci(2, 3))
    assert (alpha["malignant_specificity"], alpha["malignant_specificity_ci95"]) == (1.0, _ci(4, 4))
    # Adding the premalignant classes (0, 3): c4's actinic keratosis is a positive, and flagged.
    wider = alpha["malignant_or_premalignant"]
    assert {k: v for k, v in wider.items() if not k.endswith(("_intention_to_diagnose", "_ci95"))
            or k in ("sensitivity_ci95", "specificity_ci95")} == {
        "sensitivity": 3 / 4, "sensitivity_ci95": _ci(3, 4), "positives": 4, "flagged": 3,
        "specificity": 1.0, "specificity_ci95": _ci(3, 3), "negatives": 3, "cleared": 3}
    # By intention to diagnose c9 (a failed call, expected 14) is kept: not cleared.
    assert (wider["negatives_intention_to_diagnose"], wider["cleared_intention_to_diagnose"]) == (4, 3)
    assert (alpha["n_intention_to_diagnose"], alpha["top1_accuracy_intention_to_diagnose"]) == (8, 4 / 8)
    assert alpha["top1_accuracy_intention_to_diagnose_ci95"] == _ci(4, 8)
    assert (alpha["malignant_specificity_intention_to_diagnose"], alpha["malignant_negatives_intention_to_diagnose"],
            alpha["malignant_cleared_intention_to_diagnose"]) == (4 / 5, 5, 4)
    assert alpha["malignant_sensitivity_intention_to_diagnose"] == 2 / 3  # no malignant case failed
    # Confidences 0.9 ✓, 0.6 ✗, 0.55 ✗, 0.7 ✓, 1.0 ✓ (last bin), 0.4 ✗, 0.3 ✓ (on the edge: bin 3):
    # (0.7 + 0.4 + 0.55 + 0.6 + 0.3 + 2 × 0.05) / 7 = 2.65 / 7 = 53/140.
    assert alpha["ece"] == float(Fraction(53, 140))
    assert [(c["bin"], c["n"], c["confidence"], c["accuracy"]) for c in alpha["calibration"] if c["n"]] == [
        ([0.3, 0.4], 1, 0.3, 1.0), ([0.4, 0.5], 1, 0.4, 0.0), ([0.5, 0.6], 1, 0.55, 0.0),
        ([0.6, 0.7], 1, 0.6, 0.0), ([0.7, 0.8], 1, 0.7, 1.0), ([0.9, 1.0], 2, 0.95, 1.0)]
    assert alpha["calibration"][0] == {"bin": [0.0, 0.1], "n": 0, "confidence": None, "accuracy": None}
    # Classes that occur as expected or predicted, in code order; 3 (Bowen) occurs nowhere and is left out.
    assert [(c["code"], c["support"], c["predicted"], c["precision"], c["recall"]) for c in alpha["per_class"]] == [
        (0, 1, 1, 1.0, 1.0), (1, 1, 0, None, 0.0), (2, 1, 2, 0.5, 1.0), (6, 2, 1, 1.0, 0.5),
        (7, 2, 2, 0.5, 0.5), (14, 0, 1, 0.0, None)]
    assert alpha["per_class"][0]["name_en"] == "Actinic keratosis" and alpha["per_class"][0]["name_ko"] == "광선각화증"

    beta = m["providers"]["beta"]
    assert (beta["n"], beta["unanswered"], beta["top1_accuracy"], beta["top3_accuracy"]) == (8, 0, 2 / 8, 2 / 8)
    assert (beta["malignant_flagged"], beta["malignant_positives"], beta["malignant_cleared"],
            beta["malignant_negatives"]) == (3, 3, 0, 5)
    assert beta["malignant_specificity"] == 0.0 and beta["ece"] == pytest.approx(0.8 - 2 / 8)


def test_a_provider_that_never_answers_has_nulls_and_no_pair():
    m = qa_metrics(hand_report(), NAMES)
    never = m["providers"]["never"]
    assert (never["n"], never["unanswered"]) == (0, 8)  # c8 has no expected class: not counted either way
    for key in ("top1_accuracy", "top1_ci95", "top3_accuracy", "top3_ci95", "malignant_sensitivity",
                "malignant_sensitivity_ci95", "malignant_specificity", "malignant_specificity_ci95", "ece"):
        assert never[key] is None, key
    assert never["malignant_positives"] == never["malignant_flagged"] == 0
    assert all(b["n"] == 0 and b["confidence"] is None for b in never["calibration"])
    assert never["per_class"] == []
    assert [(p["a"], p["b"], p["n"], p["mcnemar_p"]) for p in m["pairs"][1:]] == [
        ("alpha", "never", 0, None), ("beta", "never", 0, None)]


def test_pairs_are_over_the_cases_both_answered():
    [pair, *_] = qa_metrics(hand_report(), NAMES)["pairs"]
    # c1-c7 (alpha failed c9): both right c1; alpha alone c4, c5, c7; beta alone c2; both wrong c3, c6.
    assert {k: pair[k] for k in ("a", "b", "n", "both_right", "only_a", "only_b", "both_wrong", "mcnemar_p")} == {
        "a": "alpha", "b": "beta", "n": 7, "both_right": 1, "only_a": 3, "only_b": 1, "both_wrong": 2,
        "mcnemar_p": 10 / 16}
    assert pair["top1_difference"] == pytest.approx(4 / 7 - 2 / 7)
    # Sensitivity over c1-c3: both flagged c1, c2; beta alone c3. Specificity over c4-c7: alpha alone cleared all.
    assert {k: pair["malignant_sensitivity"][k] for k in ("n", "both", "only_a", "only_b", "neither")} == {
        "n": 3, "both": 2, "only_a": 0, "only_b": 1, "neither": 0}
    assert {k: pair["malignant_specificity"][k] for k in ("n", "both", "only_a", "only_b", "neither")} == {
        "n": 4, "both": 0, "only_a": 4, "only_b": 0, "neither": 0}
    assert pair["malignant_specificity"]["mcnemar_p"] == 2 / 16 and pair["malignant_specificity"]["difference"] == 1.0
    # Beta always answers 6 and always flags: kappa 0 on both (no agreement beyond chance).
    assert (pair["kappa"], pair["kappa_n"], pair["flag_kappa"]) == (0.0, 8, 0.0)


def test_the_verdict_wording():
    m = qa_metrics(hand_report(), NAMES)
    lines = verdict(m, NAMES)
    assert lines[0] == ("The set holds 8 cases with an expected class, 3 of them malignant (38%). Predictive values "
                        "below are at the set's own prevalence (37.5%); a clinic usually sees far fewer malignant "
                        "lesions, so give its own.")
    assert lines[1].startswith(
        "Alpha flagged 2 of 3 malignant cases, Beta 3 of 3; the difference in top-1 accuracy is not significant "
        "(exact McNemar p = 0.62, n = 7). Top-1 accuracy, Alpha minus Beta: +28.6 points (95% interval ")
    assert "Not significant does not mean equivalent: a difference of up to" in lines[1]
    assert "Malignant sensitivity, Alpha minus Beta: −33.3 points" in lines[1] and "kappa 0.00" in lines[1]
    assert "equivalent." not in " ".join(lines) and "are equivalent" not in " ".join(lines)
    assert lines[2:4] == [
        "Alpha flagged 2 of 3 malignant cases, Never 0 of 0; Alpha and Never answered no case with an expected class "
        "in common, so their top-1 accuracy cannot be compared.",
        "Beta flagged 3 of 3 malignant cases, Never 0 of 0; Beta and Never answered no case with an expected class "
        "in common, so their top-1 accuracy cannot be compared.",
    ]
    # The flag at the set's own prevalence (3 of 8), with intervals.
    assert lines[4].startswith("At a prevalence of 37.5%: Alpha's flag is right 100% (")
    # Every unanswered case is named, with what it does to the figures.
    assert lines[5] == ("Alpha gave no answer for 1 of 8 cases with an expected class; counting those as wrong, its "
                        "top-1 accuracy is 50%. Counting them as not flagged, its malignant sensitivity is 67% (over "
                        "answered cases: 67%).")
    assert lines[6].startswith("Never gave no answer for 8 of 8 cases")
    assert lines[7] == (
        "Too few cases for the intervals to mean much: Alpha n = 7, Beta n = 8, Never n = 0 (answered cases with an "
        "expected class; at least 30 are needed). Even with 30 cases a 95% interval around 50% runs from 33% to 67%, "
        "and a real difference between providers can go undetected. Add labelled cases before deciding.")
    # The small strata: 3 malignant cases are warned about however the totals look.
    assert lines[8].startswith("Small groups, whose figures are uncertain: Alpha, malignant cases: n = 3, 95% interval "
                               "21% to 94%; ±5 points needs n = 339;")
    # A name missing from `names` keeps the title in the metrics.
    assert verdict(m, {})[1].startswith("Alpha flagged 2 of 3 malignant cases, Beta 3 of 3;")


def test_the_verdict_in_korean():
    lines = verdict(qa_metrics(hand_report(), NAMES), NAMES, "ko")
    assert lines[0].startswith("이 세트에는 정답 분류가 있는 증례가 8건이며, 그중 3건이 악성입니다(38%).")
    assert "유의하지 않다는 것이 동등하다는 뜻은 아닙니다" in lines[1]
    assert lines[4].startswith("유병률 37.5%에서: Alpha의 악성 표시는")
    assert lines[5].startswith("Alpha는(은) 정답이 있는 증례 8건 중 1건에 답하지 못했습니다.")
    assert verdict(qa_metrics(hand_report(), NAMES), NAMES, "xx")[0].startswith("The set holds")  # unknown: English


def _single_class(n: int, a_right: int, b_right: int) -> BatchReport:
    """n melanomas; A right on the first `a_right`, B on the first `b_right`; a wrong answer is a benign nevus."""
    cases = [BatchCase(f"m{i}", i + 2, text="x", expected=by_code(6)) for i in range(n)]
    rows = []
    for i, case in enumerate(cases):
        for name, right in (("a", a_right), ("b", b_right)):
            hit = i < right
            rows.append(BatchRow(case=case, provider=name, model=name, predicted=by_code(6 if hit else 2),
                                 score=90 if hit else 60, risk="malignant" if hit else "benign"))
    return BatchReport(run_id="r", providers=("a", "b"), models={"a": "a", "b": "b"}, cases=tuple(cases), rows=rows)


def test_a_single_class_and_a_significant_difference():
    m = qa_metrics(_single_class(10, 10, 0), {"a": "A", "b": "B"})
    a = m["providers"]["a"]
    assert [c["code"] for c in a["per_class"]] == [6] and a["per_class"][0]["precision"] == 1.0
    assert a["malignant_negatives"] == 0 and a["malignant_specificity"] is None  # nothing to divide
    assert a["malignant_specificity_ci95"] is None and a["malignant_sensitivity"] == 1.0
    b = m["providers"]["b"]
    assert [(c["code"], c["support"], c["predicted"], c["precision"], c["recall"]) for c in b["per_class"]] == [
        (2, 0, 10, 0.0, None), (6, 10, 0, None, 0.0)]
    assert m["pairs"][0]["mcnemar_p"] == 2 / 1024
    paragraphs = verdict(m, {"a": "A", "b": "B"})
    assert paragraphs[0] == "The set holds 10 cases with an expected class, 10 of them malignant (100%)."
    assert paragraphs[1].startswith("A flagged 10 of 10 malignant cases, B 0 of 10; A's top-1 accuracy is higher and "
                                    "the difference is significant (exact McNemar p = 0.002, n = 10; only A was right "
                                    "on 10 cases, only B on 0). Top-1 accuracy, A minus B: +100.0 points (95% "
                                    "interval +")
    assert "equivalent" not in paragraphs[1].split("Malignant sensitivity")[0]  # significant: nothing to caution
    # The better provider named second is still the one called higher.
    flipped = verdict(qa_metrics(_single_class(10, 0, 10), {"a": "A", "b": "B"}), {"a": "A", "b": "B"})
    assert flipped[1].startswith("A flagged 0 of 10 malignant cases, B 10 of 10; B's top-1 accuracy is higher")


def test_enough_cases_give_no_warning_and_one_provider_one_paragraph():
    m = qa_metrics(_single_class(MIN_N_FOR_INTERVALS, MIN_N_FOR_INTERVALS, 24), {})
    said = verdict(m, {"a": "A", "b": "B"})
    assert len(said) == 2  # n = 30 for both: no warning, after the set's paragraph and the pair's
    assert said[1].startswith(
        "A flagged 30 of 30 malignant cases, B 24 of 30; A's top-1 accuracy is higher and the difference is "
        "significant (exact McNemar p = 0.031, n = 30; only A was right on 6 cases, only B on 0).")
    report = _single_class(12, 9, 0)
    report.providers = ("a",)
    one = qa_metrics(report, {"a": "A"})
    assert one["pairs"] == []
    lo, hi = one["providers"]["a"]["top1_ci95"]
    assert verdict(one, {"a": "A"})[1] == (f"A flagged 9 of 12 malignant cases; its top-1 accuracy is 75% (95% "
                                           f"interval {lo:.0%} to {hi:.0%}, n = 12). Choose a second provider to "
                                           "compare.") == ("A flagged 9 of 12 malignant cases; its top-1 accuracy is "
                                                           "75% (95% interval 47% to 91%, n = 12). Choose a second "
                                                           "provider to compare.")
    assert verdict(one, {"a": "A"})[2].startswith("Too few cases for the intervals to mean much: A n = 12 (")


def test_no_malignant_case_and_no_answers():
    report = BatchReport(run_id="r", providers=("a", "b"), models={}, cases=(CASES["c5"],),
                         rows=[_answered("c5", "a", 7, 80), _failed("c5", "b")])
    m = qa_metrics(report)
    assert m["providers"]["a"]["title"] == "a" and m["providers"]["a"]["model"] == ""
    assert verdict(m, {})[0] == "The set holds 1 case with an expected class, 0 of them malignant (0%)."
    assert verdict(m, {})[1] == ("a and b had no malignant case to flag; a and b answered no case with an expected "
                                 "class in common, so their top-1 accuracy cannot be compared.")
    empty = qa_metrics(BatchReport(run_id="r", providers=("a",), models={}, cases=()))
    assert empty["providers"]["a"]["n"] == 0 and verdict(empty, {})[0] == (
        "a answered no case with an expected class: there is nothing to judge.")


# -- the JSON shape ------------------------------------------------------------------------------------------------

SHARE = (float, type(None))
NUMBER = (float, type(None))
INTERVAL = (list, type(None))
OBJECT = (dict, type(None))
ITD = "_intention_to_diagnose"
DETECTION = {"sensitivity": SHARE, "sensitivity_ci95": INTERVAL, "positives": int, "flagged": int,
             "specificity": SHARE, "specificity_ci95": INTERVAL, "negatives": int, "cleared": int,
             f"sensitivity{ITD}": SHARE, f"sensitivity{ITD}_ci95": INTERVAL, f"positives{ITD}": int,
             f"flagged{ITD}": int, f"specificity{ITD}": SHARE, f"specificity{ITD}_ci95": INTERVAL,
             f"negatives{ITD}": int, f"cleared{ITD}": int}
CORE = {  # the figures of a provider, and of each of its subgroups and of its cases without confirmed answers
    "n": int, "unanswered": int,
    "top1_accuracy": SHARE, "top1_ci95": INTERVAL, "top3_accuracy": SHARE, "top3_ci95": INTERVAL,
    "malignant_sensitivity": SHARE, "malignant_sensitivity_ci95": INTERVAL, "malignant_positives": int,
    "malignant_flagged": int, "malignant_specificity": SHARE, "malignant_specificity_ci95": INTERVAL,
    "malignant_negatives": int, "malignant_cleared": int, "malignant_or_premalignant": dict,
    f"n{ITD}": int, f"top1_accuracy{ITD}": SHARE, f"top1_accuracy{ITD}_ci95": INTERVAL,
    f"top3_accuracy{ITD}": SHARE, f"top3_accuracy{ITD}_ci95": INTERVAL,
    f"malignant_sensitivity{ITD}": SHARE, f"malignant_sensitivity{ITD}_ci95": INTERVAL,
    f"malignant_positives{ITD}": int, f"malignant_flagged{ITD}": int,
    f"malignant_specificity{ITD}": SHARE, f"malignant_specificity{ITD}_ci95": INTERVAL,
    f"malignant_negatives{ITD}": int, f"malignant_cleared{ITD}": int,
    "malignant_auroc": SHARE, "malignant_auroc_ci95": INTERVAL, "sample_size": list,
}
PREVALENCE = {key: kind for name in ("ppv", "npv") for key, kind in ((name, SHARE), (f"{name}_ci95", INTERVAL))}
RATIOS = {key: kind for name in ("lr_positive", "lr_negative", "flags_per_1000", "missed_per_1000")
          for key, kind in ((name, NUMBER), (f"{name}_ci95", (list, type(None))))}
PROVIDER = {
    "title": str, "model": str, **CORE, **PREVALENCE, **RATIOS,
    "malignant_roc": list, "malignant_roc_flag": dict, "specificity_at_90_sensitivity": OBJECT,
    "specificity_at_95_sensitivity": OBJECT, "ece": SHARE, "ece_noise_reference": OBJECT, "brier": SHARE,
    "calibration": list, "per_class": list, "subgroups": dict, "excluding_confirmed_answer": dict,
}
PAIRED = {"n": int, "both": int, "only_a": int, "only_b": int, "neither": int, "mcnemar_p": SHARE,
          "difference": NUMBER, "difference_ci95": (list, type(None))}
PAIR = {"a": str, "b": str, "n": int, "both_right": int, "only_a": int, "only_b": int, "both_wrong": int,
        "mcnemar_p": SHARE, "top1_difference": NUMBER, "top1_difference_ci95": (list, type(None)),
        "malignant_sensitivity": dict, "malignant_specificity": dict,
        "kappa": NUMBER, "kappa_ci95": (list, type(None)), "kappa_n": int, "kappa_agreement": SHARE,
        "flag_kappa": NUMBER, "flag_kappa_ci95": (list, type(None)), "flag_kappa_n": int,
        "flag_kappa_agreement": SHARE}
STRATUM = {"stratum": str, "n": int, "hits": int, "rate": SHARE, "ci95": INTERVAL, "width": SHARE,
           "n_for_5_points": int, "small": bool}


def _check(value: dict, shape: dict) -> None:
    assert set(value) == set(shape)
    for key, kind in shape.items():
        assert isinstance(value[key], kind), (key, value[key])
        assert kind is bool or not isinstance(value[key], bool), (key, value[key])
        if kind is INTERVAL and value[key] is not None:
            lo, hi = value[key]
            assert isinstance(lo, float) and isinstance(hi, float) and 0.0 <= lo <= hi <= 1.0


def test_the_json_shape():
    text = metrics_json(qa_metrics(hand_report(), NAMES))
    assert "광선각화증" in text and "NaN" not in text  # UTF-8 as it is; nulls, never NaN
    m = json.loads(text)
    assert set(m) == {"method", "set", "prevalence", "providers", "pairs"}
    assert m["set"] == {"cases": 8, "malignant": 3, "prevalence": 3 / 8, "prevalence_ci95": _ci(3, 8),
                        "confirmed_answer_labels": 0}
    assert m["prevalence"] == {"value": 3 / 8, "source": "set"}
    method = m["method"]
    assert {k: method[k] for k in ("interval", "confidence", "ece_bins", "malignant_classes", "premalignant_classes",
                                   "min_n_for_intervals", "alpha")} == {
        "interval": "wilson", "confidence": 0.95, "ece_bins": 10, "malignant_classes": [1, 6, 8],
        "premalignant_classes": [0, 3], "min_n_for_intervals": 30, "alpha": 0.05}
    assert "20 or more" in method["flag_rule"] and all(isinstance(method[k], str) for k in (
        "flag_rule", "top3_rule", "ece_confidence", "pair_test", "unanswered", "auroc", "pair_difference", "kappa",
        "prevalence", "intention_to_diagnose", "ece_noise", "brier", "sample_size", "excluding_confirmed_answer"))
    assert "DeLong" in method["auroc"] and "method 10" in method["pair_difference"] and "seeded" in method["ece_noise"]
    assert list(m["providers"]) == ["alpha", "beta", "never"]
    for provider in m["providers"].values():
        _check(provider, PROVIDER)
        _check(provider["malignant_or_premalignant"], DETECTION)
        _check(provider["excluding_confirmed_answer"], CORE)
        for part in provider["sample_size"]:
            _check(part, STRATUM)
        for point in provider["malignant_roc"]:
            _check(point, {"threshold": NUMBER, "sensitivity": float, "specificity": float, "true_positives": int,
                           "false_positives": int})
        assert len(provider["calibration"]) == 10
        for b in provider["calibration"]:
            _check(b, {"bin": list, "n": int, "confidence": SHARE, "accuracy": SHARE})
        for c in provider["per_class"]:
            _check(c, {"code": int, "name_en": str, "name_ko": str, "support": int, "predicted": int,
                       "precision": SHARE, "recall": SHARE})
    assert [(p["a"], p["b"]) for p in m["pairs"]] == [("alpha", "beta"), ("alpha", "never"), ("beta", "never")]
    for pair in m["pairs"]:
        _check(pair, PAIR)
        _check(pair["malignant_sensitivity"], PAIRED)
        _check(pair["malignant_specificity"], PAIRED)
    # The method is the report's own copy: changing one report's does not change the next one's.
    m2 = qa_metrics(hand_report(), NAMES)
    m2["method"]["malignant_classes"].append(99)
    assert qa_metrics(hand_report(), NAMES)["method"]["malignant_classes"] == [1, 6, 8]


# -- the card's flag, through the app's own path -------------------------------------------------------------------

def test_a_malignant_similar_class_at_20_raises_the_flag(engine_env):
    import startup
    answers = {  # seborrheic keratosis chosen; melanoma as a similar class at 20 (flag) or 19.5 (no flag)
        "twenty": xml_answer(7, 60, "지루각화증", "갈색 병변.", [(6, 20, "악성흑색종"), (14, 20, "흑색점")]),
        "under": xml_answer(7, 60, "지루각화증", "갈색 병변.", [(14, 30, "흑색점"), (6, 19.5, "악성흑색종")]),
    }
    engine_env.responder = lambda request: Reply(answers["twenty" if "twenty" in request.text() else "under"])
    cases = read_cases(b"id,text,image,expected\nm1,twenty papule,,6\nm2,under papule,,6\n", limit=MAX_CASES)
    report = run_batch(startup.get_engine(), cases, {}, ["runpod"])
    assert [(r.risk, r.similar) for r in report.rows] == [("malignant", ((6, 20.0), (14, 20.0))),
                                                          ("benign", ((14, 30.0), (6, 19.5)))]
    runpod = qa_metrics(report)["providers"]["runpod"]
    assert (runpod["malignant_flagged"], runpod["malignant_positives"]) == (1, 2)
    assert runpod["top1_accuracy"] == 0.0 and runpod["top3_accuracy"] == 1.0  # melanoma is in both top-3s


def test_the_flag_says_which_class_raised_it_and_at_what_score():
    def reason(xml: str):
        found = Diagnosis(answer=parse_answer(xml), provider="runpod", model="m", raw=xml, elapsed_ms=0).flag_reason
        return found and (found.risk, found.item.lesion.code, found.item.score, found.chosen)

    # A benign class chosen: the highest-scoring malignant similar class at 20 or more, before a premalignant one.
    similar = [(0, 40, "광선각화증"), (6, 20, "악성흑색종"), (8, 21, "편평세포암")]
    assert reason(xml_answer(14, 60, "흑색점", "갈색 반점.", similar)) == (Risk.MALIGNANT, 8, 21.0, False)
    assert reason(xml_answer(14, 60, "흑색점", "갈색 반점.", [(0, 30, "광선각화증"), (8, 19, "편평세포암")])) == (
        Risk.PREMALIGNANT, 0, 30.0, False)
    # The chosen class raises it itself when it is of the highest risk found.
    chosen = xml_answer(1, 55, "기저세포암", "진주빛 구진.", [(8, 30, "편평세포암")])
    assert reason(chosen) == (Risk.MALIGNANT, 1, 55.0, True)
    assert reason(xml_answer(14, 60, "흑색점", "갈색 반점.", [(8, 19.5, "편평세포암")])) is None
