"""The malignancy ROC: how well a provider's scores rank malignant cases above the others, at every cut-off.

    score = malignancy_score(row)                  # the highest score the answer gives a malignant class, 0 if none
    curve = roc_curve([(score, malignant), ...])   # ROC points, AUROC with its DeLong 95% interval
    curve.specificity_at(0.90)                     # the best specificity that keeps sensitivity at 90% or more

A case is called positive at a cut-off t when its score is t or more. The AUROC is the Mann-Whitney
statistic (a tie counts one half), its variance DeLong's (DeLong, DeLong & Clarke-Pearson 1988,
Biometrics 44:837), the interval AUROC ± z·SE cut to [0, 1], as R's pROC computes it.
Pure Python and exact sums: the same scores always give the same figures.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

from domain.classes import CLASSES, Risk
from qa.batch_metrics import BatchRow

MALIGNANT_CODES = frozenset(c.code for c in CLASSES if c.risk is Risk.MALIGNANT)


def malignancy_score(row: BatchRow) -> float:
    """The highest score (0-100) the answer gives a malignant class, among its label and similar classes; 0 if none."""
    scores = [score for code, score in row.similar if code in MALIGNANT_CODES]
    if row.predicted is not None and row.predicted.code in MALIGNANT_CODES and row.score is not None:
        scores.append(row.score)
    return max(scores, default=0.0)


@dataclass(frozen=True)
class RocPoint:
    """One cut-off: cases scoring `threshold` or more are called malignant."""

    threshold: float
    sensitivity: float
    specificity: float
    true_positives: int
    false_positives: int


@dataclass(frozen=True)
class Roc:
    """The ROC of one provider's malignancy scores: its points (strictest cut-off first) and the AUROC."""

    positives: int
    negatives: int
    points: tuple[RocPoint, ...]
    auroc: float | None
    auroc_se: float | None
    auroc_ci: tuple[float, float] | None

    def specificity_at(self, sensitivity: float) -> RocPoint | None:
        """The cut-off with the highest specificity whose sensitivity is at least `sensitivity` (None: no cases)."""
        reaching = [p for p in self.points if p.sensitivity >= sensitivity - 1e-12]
        if not reaching or not self.positives or not self.negatives:
            return None
        return max(reaching, key=lambda p: (p.specificity, p.threshold))


def _placements(positive: Sequence[float], negative: Sequence[float]) -> tuple[list[float], list[float]]:
    """DeLong's structural components: for each positive the share of negatives it outranks, and for each
    negative the share of positives that outrank it (a tie counts one half)."""
    ordered = sorted(negative)
    ordered_pos = sorted(positive)

    def below(values: list[float], x: float) -> float:
        lo, hi = _bisect(values, x)
        return lo + (hi - lo) / 2  # strictly below, plus half of the ties

    v10 = [below(ordered, x) / len(negative) for x in positive]
    v01 = [(len(positive) - below(ordered_pos, y)) / len(positive) for y in negative]
    return v10, v01


def _bisect(values: list[float], x: float) -> tuple[int, int]:
    return bisect.bisect_left(values, x), bisect.bisect_right(values, x)


def _variance(values: Sequence[float], mean: float) -> float:
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0


def auroc_delong(positive: Sequence[float], negative: Sequence[float],
                 confidence: float = 0.95) -> tuple[float, float, tuple[float, float]] | None:
    """The AUROC of scores of `positive` against `negative` cases, its DeLong standard error and interval.

    None when either group is empty. With a single case in a group its variance term is 0 (pROC does the same).
    """
    if not positive or not negative:
        return None
    v10, v01 = _placements(positive, negative)
    auc = sum(v10) / len(v10)
    se = math.sqrt(_variance(v10, auc) / len(v10) + _variance(v01, auc) / len(v01))
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    return auc, se, (max(0.0, auc - z * se), min(1.0, auc + z * se))


def roc_curve(cases: Iterable[tuple[float, bool]], confidence: float = 0.95) -> Roc:
    """The ROC of (score, is malignant) pairs: a point per distinct score, from (0, 0) to (1, 1), and the AUROC."""
    pairs = list(cases)
    positive = [s for s, m in pairs if m]
    negative = [s for s, m in pairs if not m]
    p, n = len(positive), len(negative)
    points = [RocPoint(math.inf, 0.0, 1.0 if n else 0.0, 0, 0)]  # above every score: nothing called
    for threshold in sorted({s for s, _ in pairs}, reverse=True):
        tp = sum(1 for s in positive if s >= threshold)
        fp = sum(1 for s in negative if s >= threshold)
        points.append(RocPoint(threshold, tp / p if p else 0.0, 1 - fp / n if n else 0.0, tp, fp))
    delong = auroc_delong(positive, negative, confidence)
    return Roc(p, n, tuple(points), delong[0] if delong else None, delong[1] if delong else None,
               delong[2] if delong else None)
