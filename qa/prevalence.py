"""What the flag means at a clinic's own prevalence: predictive values, likelihood ratios, flags and missed
cancers per 1,000 patients, each with its interval.

    at_prevalence(flagged=9, positives=10, cleared=80, negatives=100, prevalence=0.05)

Sensitivity and specificity are measured on the labelled set; the prevalence is the clinic's (or the set's own).
PPV, NPV and the counts per 1,000 follow by Bayes' rule. Each of them only rises or only falls with sensitivity
and with specificity, so its interval is the figure at the matching ends of their 95% Wilson intervals
(conservative: both ends at once). The likelihood ratios' intervals are the log method of Simel, Samsa &
Matchar (1991, J Clin Epidemiol 44:763), which needs a count on each side (None otherwise).
"""

from __future__ import annotations

import math
from statistics import NormalDist

from utils.stats import wilson_interval

PER = 1000


def _ppv(sens: float, spec: float, prev: float) -> float | None:
    flagged = sens * prev + (1 - spec) * (1 - prev)
    return sens * prev / flagged if flagged > 0 else None


def _npv(sens: float, spec: float, prev: float) -> float | None:
    cleared = spec * (1 - prev) + (1 - sens) * prev
    return spec * (1 - prev) / cleared if cleared > 0 else None


def _flags(sens: float, spec: float, prev: float) -> float:
    return PER * (sens * prev + (1 - spec) * (1 - prev))


def _missed(sens: float, spec: float, prev: float) -> float:
    return PER * (1 - sens) * prev


def _ratio(hits: int, positives: int, misses: int, negatives: int,
           z: float) -> tuple[float | None, list[float] | None]:
    """(hits / positives) / (misses / negatives) with its log-method interval."""
    if not positives or not negatives or not misses:
        return None, None
    ratio = (hits / positives) / (misses / negatives)
    if not hits:
        return ratio, None
    se = math.sqrt(1 / hits - 1 / positives + 1 / misses - 1 / negatives)
    return ratio, [ratio * math.exp(-z * se), ratio * math.exp(z * se)]


def at_prevalence(flagged: int, positives: int, cleared: int, negatives: int, prevalence: float,
                  confidence: float = 0.95) -> dict:
    """The figures at `prevalence` (0 < p < 1) from the flag's counts on the labelled set; None where undefined."""
    if not 0 < prevalence < 1:
        raise ValueError(f"A prevalence is between 0 and 1 (exclusive), not {prevalence}.")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    lr_pos, lr_pos_ci = _ratio(flagged, positives, negatives - cleared, negatives, z)
    lr_neg, lr_neg_ci = _ratio(positives - flagged, positives, cleared, negatives, z)
    out: dict = {"prevalence": prevalence, "lr_positive": lr_pos, "lr_positive_ci95": lr_pos_ci,
                 "lr_negative": lr_neg, "lr_negative_ci95": lr_neg_ci}
    sens_ci = wilson_interval(flagged, positives, confidence) if positives else None
    spec_ci = wilson_interval(cleared, negatives, confidence) if negatives else None
    if sens_ci is None or spec_ci is None:
        return {**out, **{k: None for k in ("ppv", "ppv_ci95", "npv", "npv_ci95", "flags_per_1000",
                                            "flags_per_1000_ci95", "missed_per_1000", "missed_per_1000_ci95")}}
    sens, spec = flagged / positives, cleared / negatives
    (sl, sh), (pl, ph) = sens_ci, spec_ci

    def ci(point: float | None, low: float | None, high: float | None) -> list[float] | None:
        """An interval only around a figure that exists (a PPV with nothing flagged has none)."""
        return None if point is None or low is None or high is None else [low, high]

    ppv, npv = _ppv(sens, spec, prevalence), _npv(sens, spec, prevalence)
    return {**out,
            "ppv": ppv, "ppv_ci95": ci(ppv, _ppv(sl, pl, prevalence), _ppv(sh, ph, prevalence)),
            "npv": npv, "npv_ci95": ci(npv, _npv(sl, pl, prevalence), _npv(sh, ph, prevalence)),
            "flags_per_1000": _flags(sens, spec, prevalence),
            "flags_per_1000_ci95": [_flags(sl, ph, prevalence), _flags(sh, pl, prevalence)],
            "missed_per_1000": _missed(sens, spec, prevalence),
            "missed_per_1000_ci95": [_missed(sh, spec, prevalence), _missed(sl, spec, prevalence)]}
