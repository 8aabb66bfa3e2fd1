"""The decision statistics of batch QA, each against a published worked example or an independent library.

    AUROC, ROC points      scikit-learn's roc_auc_score and roc_curve; Hanley & McNeil (1982)'s CT ratings
    DeLong's variance      an independent midrank computation (Sun & Xu 2014's fast DeLong)
    Newcombe method 10     Fagerland, Lydersen & Laake (2017) ch. 8: Cavo et al. (2012), -0.0621 (-0.1186 to -0.0046)
    Cohen's kappa, ASE     SAS PROC FREQ's two dermatologists (88 patients): 0.3449, ASE 0.0724, 0.2030 to 0.4868;
                           the point estimate also against scikit-learn's cohen_kappa_score
    exact McNemar          SciPy's binomtest
    Wilson, n for ±5       SciPy's binomtest(...).proportion_ci(method="wilson")
    Brier, ECE             scikit-learn's brier_score_loss; utils.stats.expected_calibration_error
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import brier_score_loss, cohen_kappa_score, roc_auc_score, roc_curve

from domain.classes import by_code
from qa.batch_input import BatchCase
from qa.batch_metrics import BatchRow
from qa.paired import cohen_kappa, paired_difference
from qa.prevalence import at_prevalence
from qa.roc import auroc_delong, malignancy_score
from qa.roc import roc_curve as our_roc
from qa.sample_size import NOISE_SEED, brier, ece_noise, n_for_half_width, stratum
from utils.stats import expected_calibration_error, mcnemar_exact_p

# Hanley & McNeil (1982), Radiology 143:29, table 1: CT ratings 1 (definitely normal) to 5 (definitely abnormal).
NORMAL = [1] * 33 + [2] * 6 + [3] * 6 + [4] * 11 + [5] * 2
ABNORMAL = [1] * 3 + [2] * 2 + [3] * 2 + [4] * 11 + [5] * 33

SEEDED = random.Random(7)
SCORES = [round(SEEDED.uniform(0, 100)) for _ in range(120)]
LABELS = [SEEDED.random() < 0.2 + 0.6 * s / 100 for s in SCORES]


def _midrank_delong(positive: list[float], negative: list[float]) -> tuple[float, float]:
    """AUROC and DeLong's variance from midranks (Sun & Xu 2014), written independently of qa.roc."""
    m, n = len(positive), len(negative)
    x, y = np.array(positive, float), np.array(negative, float)
    both = np.concatenate([x, y])
    tz, tx, ty = (scipy_stats.rankdata(v) for v in (both, x, y))
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v01 = (tz[:m] - tx) / n
    v10 = 1 - (tz[m:] - ty) / m
    return auc, np.var(v01, ddof=1) / m + np.var(v10, ddof=1) / n


def test_auroc_matches_scikit_learn_and_hanley_mcneil():
    auc, _, _ = auroc_delong([float(s) for s in ABNORMAL], [float(s) for s in NORMAL])
    truth = [True] * len(ABNORMAL) + [False] * len(NORMAL)
    assert auc == pytest.approx(roc_auc_score(truth, ABNORMAL + NORMAL), abs=1e-12)
    assert round(auc, 3) == 0.893  # Hanley & McNeil's published area
    positive = [s for s, m in zip(SCORES, LABELS, strict=True) if m]
    negative = [s for s, m in zip(SCORES, LABELS, strict=True) if not m]
    assert auroc_delong(positive, negative)[0] == pytest.approx(roc_auc_score(LABELS, SCORES), abs=1e-12)


def test_delong_variance_matches_the_midrank_computation():
    for positive, negative in ((ABNORMAL, NORMAL),
                               ([s for s, m in zip(SCORES, LABELS, strict=True) if m],
                                [s for s, m in zip(SCORES, LABELS, strict=True) if not m])):
        auc, se, (lo, hi) = auroc_delong([float(v) for v in positive], [float(v) for v in negative])
        expected_auc, variance = _midrank_delong(positive, negative)
        assert auc == pytest.approx(expected_auc, abs=1e-12)
        assert se == pytest.approx(math.sqrt(variance), rel=1e-9)
        assert (lo, hi) == pytest.approx((auc - 1.959964 * se, min(1.0, auc + 1.959964 * se)), abs=1e-6)
    assert auroc_delong([], [1.0]) is None and auroc_delong([1.0], []) is None


def test_roc_points_match_scikit_learn():
    ours = our_roc(zip(SCORES, LABELS, strict=True))
    fpr, tpr, thresholds = roc_curve(LABELS, SCORES, drop_intermediate=False)
    theirs = {float(t): (f, s) for f, s, t in zip(fpr, tpr, thresholds, strict=True) if math.isfinite(t)}
    mine = {p.threshold: (1 - p.specificity, p.sensitivity) for p in ours.points if math.isfinite(p.threshold)}
    assert mine.keys() == theirs.keys()
    for threshold, (f, s) in theirs.items():
        assert mine[threshold] == pytest.approx((f, s), abs=1e-12)
    assert (ours.points[0].sensitivity, ours.points[0].specificity) == (0.0, 1.0)
    assert ours.auroc == pytest.approx(roc_auc_score(LABELS, SCORES))


def test_specificity_at_a_sensitivity_is_the_best_cut_off_that_reaches_it():
    # Malignant scores 90, 80, 70, 10; others 85, 20, 5, 0: 75% sensitivity at cut-off 70 keeps 3 of 4 cleared,
    # 100% needs cut-off 10, which clears 2 of 4.
    curve = our_roc([(90, True), (80, True), (70, True), (10, True), (85, False), (20, False), (5, False),
                     (0, False)])
    at_75 = curve.specificity_at(0.75)
    assert (at_75.threshold, at_75.sensitivity, at_75.specificity) == (70, 0.75, 0.75)
    at_90 = curve.specificity_at(0.90)
    assert (at_90.threshold, at_90.sensitivity, at_90.specificity) == (10, 1.0, 0.5)
    assert our_roc([(50, True)]).specificity_at(0.9) is None  # no other case: no specificity


def test_malignancy_score_is_the_highest_malignant_score_in_the_answer():
    case = BatchCase("c", 2, text="x", expected=by_code(6))

    def row(code: int | None, score: float | None, similar=()) -> BatchRow:
        return BatchRow(case=case, provider="p", predicted=by_code(code) if code is not None else None, score=score,
                        similar=tuple(similar))

    assert malignancy_score(row(6, 70, [(1, 40)])) == 70          # the label itself
    assert malignancy_score(row(7, 60, [(14, 30), (8, 25), (1, 19.5)])) == 25  # a similar class, below the flag too
    assert malignancy_score(row(7, 90, [(14, 10)])) == 0          # no malignant class named
    assert malignancy_score(row(None, None)) == 0


def test_newcombe_paired_interval_matches_the_published_example():
    # Cavo et al. (2012): complete response before and after consolidation, 161 patients.
    found = paired_difference(both=59, only_a=6, only_b=16, neither=80)
    assert round(found.difference, 4) == -0.0621
    assert (round(found.interval[0], 4), round(found.interval[1], 4)) == (-0.1186, -0.0046)
    # Symmetric: swapping A and B mirrors the interval; no case: nothing to say.
    swapped = paired_difference(both=59, only_a=16, only_b=6, neither=80)
    assert swapped.interval == pytest.approx((-found.interval[1], -found.interval[0]))
    assert paired_difference(0, 0, 0, 0).interval is None
    assert paired_difference(10, 0, 0, 0).interval[0] <= 0 <= paired_difference(10, 0, 0, 0).interval[1]


def test_mcnemar_exact_matches_scipy():
    for only_a, only_b in ((1, 7), (10, 0), (3, 1), (12, 9), (0, 0)):
        expected = scipy_stats.binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
        assert mcnemar_exact_p(only_a, only_b) == pytest.approx(expected, rel=1e-9)


def test_cohen_kappa_matches_sas_and_scikit_learn():
    # SAS/STAT PROC FREQ, "Cohen's kappa": two dermatologists grade 88 patients' skin condition.
    table = [[10, 4, 1, 0], [5, 10, 12, 2], [2, 4, 12, 5], [0, 2, 6, 13]]
    grades = ("terrible", "poor", "marginal", "clear")
    pairs = [(grades[i], grades[j]) for i, row in enumerate(table) for j, count in enumerate(row)
             for _ in range(count)]
    found = cohen_kappa(pairs)
    assert (found.n, round(found.kappa, 4), round(found.se, 4)) == (88, 0.3449, 0.0724)
    assert (round(found.interval[0], 4), round(found.interval[1], 4)) == (0.2030, 0.4868)
    assert found.kappa == pytest.approx(cohen_kappa_score([a for a, _ in pairs], [b for _, b in pairs]))
    flags = [(s > 50, s > 40) for s in SCORES]
    assert cohen_kappa(flags).kappa == pytest.approx(cohen_kappa_score(*zip(*flags, strict=True)))
    assert cohen_kappa([]).kappa is None and cohen_kappa([(1, 1), (1, 1)]).kappa is None  # no chance to disagree


def test_predictive_values_follow_bayes_rule_at_the_prevalence():
    # 90 of 100 malignant flagged, 160 of 200 others cleared; a clinic at 5%: count 100,000 patients.
    found = at_prevalence(flagged=90, positives=100, cleared=160, negatives=200, prevalence=0.05)
    sick, well = Fraction(5000), Fraction(95000)
    true_pos, false_pos = sick * Fraction(90, 100), well * Fraction(40, 200)
    assert found["ppv"] == pytest.approx(float(true_pos / (true_pos + false_pos)))
    assert found["npv"] == pytest.approx(float(well * Fraction(160, 200) / (well * Fraction(160, 200)
                                                                            + sick * Fraction(10, 100))))
    assert found["flags_per_1000"] == pytest.approx(float((true_pos + false_pos) / 100))
    assert found["missed_per_1000"] == pytest.approx(5.0)
    for key in ("ppv", "npv", "flags_per_1000", "missed_per_1000", "lr_positive", "lr_negative"):
        lo, hi = found[f"{key}_ci95"]
        assert lo < found[key] < hi, key
    # Likelihood ratios: sens / (1 - spec) = 4.5 and (1 - sens) / spec = 0.125, log-method intervals by hand.
    assert found["lr_positive"] == pytest.approx(4.5) and found["lr_negative"] == pytest.approx(0.125)
    se = math.sqrt(1 / 90 - 1 / 100 + 1 / 40 - 1 / 200)
    assert found["lr_positive_ci95"] == pytest.approx([4.5 * math.exp(-1.959964 * se), 4.5 * math.exp(1.959964 * se)],
                                                      rel=1e-6)
    never_clears = at_prevalence(flagged=5, positives=5, cleared=0, negatives=15, prevalence=0.05)
    assert (never_clears["npv"], never_clears["npv_ci95"]) == (None, None)  # no interval around no figure
    perfect = at_prevalence(flagged=10, positives=10, cleared=20, negatives=20, prevalence=0.05)
    assert perfect["lr_positive"] is None and perfect["ppv"] == 1.0  # no false positive: no finite LR+
    with pytest.raises(ValueError):
        at_prevalence(1, 2, 1, 2, prevalence=1.0)


def test_n_for_five_points_matches_scipys_wilson_interval():
    for rate in (0.5, 0.9, 0.66, 0.05):
        n = n_for_half_width(rate)
        for size, fits in ((n, True), (n - 1, False)):
            # SciPy's Wilson interval at the nearest whole count is within a hair of the fractional one.
            ci = scipy_stats.binomtest(round(rate * size), size).proportion_ci(method="wilson")
            assert ((ci.high - ci.low) / 2 <= 0.0505) if fits else ((ci.high - ci.low) / 2 > 0.0495)
    assert n_for_half_width(0.5) == 381  # z² · 0.25 / 0.05² − z² = 384.1 − 3.8
    small = stratum("malignant cases", 3, 3)
    assert small["small"] and small["n_for_5_points"] == n_for_half_width(1.0)
    assert small["width"] == pytest.approx(1 - 0.4385, abs=1e-3)  # Wilson 3 of 3: 43.9% to 100%


def test_brier_and_the_ece_noise_reference():
    pairs = [(s / 100, m) for s, m in zip(SCORES, LABELS, strict=True)]
    assert brier(pairs) == pytest.approx(brier_score_loss(LABELS, [s / 100 for s in SCORES]))
    assert brier([]) is None
    # One run of the simulation is the ECE of utils.stats over the same draws, bins and all.
    confidences = [s / 100 for s in SCORES]
    rights = np.random.default_rng(NOISE_SEED).random((1, len(SCORES)))[0] < np.array(confidences)
    assert ece_noise(confidences, runs=1)["mean"] == pytest.approx(
        expected_calibration_error(zip(confidences, rights.tolist(), strict=True)).ece, abs=1e-12)
    noise = ece_noise([s / 100 for s in SCORES])
    assert noise == ece_noise([s / 100 for s in SCORES])  # seeded: the same scores, the same reference
    assert 0 < noise["mean"] < noise["p95"] < 0.3 and noise["runs"] == 1000
    # More cases, less noise: a perfectly calibrated model's ECE shrinks towards 0.
    assert ece_noise([s / 100 for s in SCORES] * 10)["mean"] < noise["mean"] / 2
    assert ece_noise([]) is None
