"""How much a figure can be trusted at its n: interval widths, the n a ±5-point interval needs, and how big an ECE
a perfectly calibrated model would show by chance.

    stratum("malignant cases", 9, 12)      # {"n": 12, "rate": .75, "ci95": [...], "width": .44, "n_for_5_points": 291}
    ece_noise([0.9, 0.6, ...])             # the ECE of a perfectly calibrated model with these scores (seeded)
    brier([(0.9, True), (0.6, False)])     # the mean squared distance of the score from the outcome

`n_for_5_points` is the smallest n whose 95% Wilson interval, at the observed rate, is at most ±5 points
(half-width ≤ 0.05). The ECE reference draws, for every score s, "right" with probability s: what a perfectly
calibrated model with exactly these scores would get, `runs` times with a fixed seed, so the same scores always
give the same reference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from statistics import NormalDist

import numpy as np

from utils.stats import wilson_interval

HALF_WIDTH = 0.05
NOISE_RUNS = 1000
NOISE_SEED = 20_170_614     # Guo et al. posted "On Calibration of Modern Neural Networks" in June 2017
MIN_N = 30                  # as qa.metrics.MIN_N_FOR_INTERVALS: below it a stratum is warned about


def _half_width(rate: float, n: int, z: float) -> float:
    """The Wilson interval's half-width at a (possibly fractional) count rate × n."""
    spread = z * math.sqrt(z * z + 4 * n * rate * (1 - rate))
    return spread / (2 * (n + z * z))


def n_for_half_width(rate: float, half_width: float = HALF_WIDTH, confidence: float = 0.95) -> int:
    """The smallest n whose Wilson interval at `rate` is at most ± `half_width`."""
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    low, high = 1, 1
    while _half_width(rate, high, z) > half_width:
        high *= 2
    while low < high:  # the half-width shrinks as n grows
        middle = (low + high) // 2
        if _half_width(rate, middle, z) > half_width:
            low = middle + 1
        else:
            high = middle
    return low


def stratum(name: str, hits: int, n: int, confidence: float = 0.95) -> dict:
    """One stratum's precision: its rate and interval, the interval's width, the n for ±5 points, and whether n is
    below the minimum for the interval to mean much (`small`)."""
    interval = wilson_interval(hits, n, confidence) if n else None
    rate = hits / n if n else None
    return {"stratum": name, "n": n, "hits": hits, "rate": rate, "ci95": list(interval) if interval else None,
            "width": (interval[1] - interval[0]) if interval else None,
            "n_for_5_points": n_for_half_width(rate if rate is not None else 0.5, HALF_WIDTH, confidence),
            "small": n < MIN_N}


def brier(pairs: Iterable[tuple[float, bool]]) -> float | None:
    """The Brier score of (confidence 0-1, right) pairs; None without any."""
    pairs = list(pairs)
    return sum((p - float(right)) ** 2 for p, right in pairs) / len(pairs) if pairs else None


def ece_noise(scores: Sequence[float], bins: int = 10, runs: int = NOISE_RUNS,
              seed: int = NOISE_SEED) -> dict | None:
    """The ECE a perfectly calibrated model with these confidences (0-1) shows by chance: its mean and 95th
    percentile over `runs` seeded simulations; None without scores.

    All runs at once with NumPy (2,000 cases × 1,000 runs take a fraction of a second), binned as
    utils.stats.expected_calibration_error bins (0.3 falls in [0.3, 0.4)).
    """
    if not scores:
        return None
    confidence = np.asarray(scores, dtype=float)
    index = np.minimum(np.floor(np.round(confidence * bins, 9)).astype(int), bins - 1)
    one_hot = np.zeros((len(scores), bins))
    one_hot[np.arange(len(scores)), index] = 1.0
    rights = np.random.default_rng(seed).random((runs, len(scores))) < confidence
    gaps = np.abs(rights.astype(float) @ one_hot - confidence @ one_hot)  # per run and bin: |right − Σ confidence|
    found = np.sort(gaps.sum(axis=1) / len(scores))
    return {"mean": float(found.mean()), "p95": float(found[min(runs - 1, math.ceil(0.95 * runs) - 1)]),
            "runs": runs, "seed": seed}
