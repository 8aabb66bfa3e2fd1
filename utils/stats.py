"""Percentiles, computed one way everywhere in the app, and the batch QA report's statistics.

The method is linear interpolation between the two closest ranks ("inclusive"): numpy's default,
Excel's PERCENTILE.INC and `statistics.quantiles(method="inclusive")`. The 0th percentile is the
smallest value, the 100th the largest, and every percentile lies between two observed values.

    percentile([1.0, 2.0, 3.0, 4.0], 50)          # 2.5
    percentile_of_sorted(ascending, 95)           # the same, for values sorted once for many percentiles

The QA statistics are exact formulas in pure Python (no SciPy, no randomness), each tested against a
published worked example:

    wilson_interval(81, 263)                      # (0.2553, 0.3662): the share's 95% Wilson score interval
    binomial_two_sided_p(682, 925, 0.75)          # 0.3825: the exact two-sided binomial test
    mcnemar_exact_p(only_a=1, only_b=7)           # 0.0703: exact McNemar, on the discordant pairs
    expected_calibration_error([(0.8, True), (0.35, False)])   # ECE and its 10-bin reliability table
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist


def percentile(values: Iterable[float], percent: float) -> float | None:
    """The `percent`-th percentile (0-100) of `values`, in any order; None when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return percentile_of_sorted(ordered, percent)


def percentile_of_sorted(ascending: Sequence[float], percent: float) -> float:
    """The `percent`-th percentile (0-100) of `ascending`, which must be sorted and not empty.

    For a whole `percent` the rank is found with integer arithmetic, so that no rounding of
    (n - 1) * 0.95 can pick the wrong neighbours, and the difference is multiplied before it is
    divided, which keeps the result exact for whole-millisecond values. An infinite value (a case
    that was never answered, say) is allowed: a percentile that reaches into it is infinite.
    Raises ValueError for a `percent` outside 0-100 and for no values.
    """
    if not 0 <= percent <= 100:
        raise ValueError(f"A percentile is between 0 and 100, not {percent}.")
    if not ascending:
        raise ValueError("There is no percentile of no values.")
    if float(percent).is_integer():
        low_rank, rest = divmod((len(ascending) - 1) * int(percent), 100)
        if rest == 0:
            return ascending[low_rank]
        return _between(ascending[low_rank], ascending[low_rank + 1], rest, 100)
    rank = (len(ascending) - 1) * percent / 100
    low_rank = math.floor(rank)
    if rank == low_rank:
        return ascending[low_rank]
    return _between(ascending[low_rank], ascending[low_rank + 1], rank - low_rank, 1)


def _between(low: float, high: float, part: float, whole: int) -> float:
    if high == low:  # also for two infinities, whose difference is not a number
        return low
    return low + (high - low) * part / whole


# -- the QA report's statistics ------------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """The Wilson score interval of the share `successes / n`; None when n is 0 (there is no share).

    Wilson (1927), method 3 of Newcombe (1998): unlike the textbook p ± z·SE it stays inside
    [0, 1], is not empty at 0 or n successes and keeps close to its nominal coverage with few cases.
    Raises ValueError for counts that are not 0 <= successes <= n, or a confidence outside (0, 1).
    """
    if not 0 <= successes <= n:
        raise ValueError(f"A share needs 0 <= successes <= n, not {successes} of {n}.")
    if not 0 < confidence < 1:
        raise ValueError(f"A confidence is between 0 and 1, not {confidence}.")
    if n == 0:
        return None
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    share = successes / n
    centre = 2 * n * share + z * z
    spread = z * math.sqrt(z * z + 4 * n * share * (1 - share))
    denominator = 2 * (n + z * z)
    # At 0 or n successes the bound is 0 or 1 exactly; rounding must not put it a hair outside.
    low = 0.0 if successes == 0 else max(0.0, (centre - spread) / denominator)
    high = 1.0 if successes == n else min(1.0, (centre + spread) / denominator)
    return low, high


def binomial_two_sided_p(k: int, n: int, p: float | Fraction = 0.5) -> float:
    """The exact two-sided p-value of `k` successes in `n` trials when each succeeds with probability `p`.

    Two-sided as R's binom.test and SciPy's binomtest: the probability of every outcome no more
    likely than the one seen. The probabilities are exact fractions (a float `p` is read as the
    decimal it prints as: 0.3 is 3/10), so outcomes exactly as likely as `k` are never lost to
    rounding. With n = 0 the only outcome is the one seen: p = 1.
    """
    if not 0 <= k <= n:
        raise ValueError(f"A binomial test needs 0 <= k <= n, not {k} of {n}.")
    chance = p if isinstance(p, Fraction) else Fraction(repr(float(p)))
    if not 0 <= chance <= 1:
        raise ValueError(f"A probability is between 0 and 1, not {p}.")
    probabilities = [math.comb(n, i) * chance ** i * (1 - chance) ** (n - i) for i in range(n + 1)]
    seen = probabilities[k]
    return min(1.0, float(sum(q for q in probabilities if q <= seen)))


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """The exact McNemar test of two classifiers judged on the same cases.

    Only the discordant cases carry information: `only_a` right by A alone, `only_b` by B alone.
    Under "equally accurate" each discordant case is A's with probability 1/2, so the p-value is
    the two-sided binomial test of only_a in only_a + only_b at 1/2. No discordant case: p = 1.
    """
    if only_a < 0 or only_b < 0:
        raise ValueError(f"Counts are not negative: {only_a}, {only_b}.")
    return binomial_two_sided_p(only_a, only_a + only_b, Fraction(1, 2))


@dataclass(frozen=True)
class CalibrationBin:
    """One bin of a reliability table: its confidence range, how many answers fell in it, their mean
    confidence and the share of them that were right (None for an empty bin)."""

    low: float
    high: float
    n: int
    confidence: float | None
    accuracy: float | None


@dataclass(frozen=True)
class Calibration:
    """The expected calibration error (None without answers) and the reliability table it was computed from."""

    ece: float | None
    bins: tuple[CalibrationBin, ...]


def expected_calibration_error(pairs: Iterable[tuple[float, bool]], bins: int = 10) -> Calibration:
    """ECE of (confidence, correct) pairs over `bins` equal-width bins of [0, 1] (Guo et al. 2017, eq. 3).

    ECE = sum over bins of (answers in the bin / all answers) × |share right − mean confidence|.
    Bins are [0, 0.1), [0.1, 0.2), … [0.9, 1.0] for 10: each includes its lower edge and the last
    also 1.0. A confidence is read as the decimal it prints as, so 0.3 (a score of 30) falls in
    [0.3, 0.4) although the float 0.3 is a hair below 3/10; the sums are exact fractions.
    Raises ValueError for a confidence outside [0, 1] (or not a number) and for bins < 1.
    """
    if bins < 1:
        raise ValueError(f"At least one bin, not {bins}.")
    counts = [0] * bins
    confidence_sums = [Fraction(0)] * bins
    right = [0] * bins
    for confidence, correct in pairs:
        if not 0 <= confidence <= 1:  # also refuses NaN
            raise ValueError(f"A confidence is between 0 and 1, not {confidence}.")
        exact = Fraction(repr(float(confidence)))
        index = min(math.floor(exact * bins), bins - 1)
        counts[index] += 1
        confidence_sums[index] += exact
        right[index] += bool(correct)
    total = sum(counts)
    table, gap = [], Fraction(0)
    for i in range(bins):
        n = counts[i]
        mean = confidence_sums[i] / n if n else None
        share = Fraction(right[i], n) if n else None
        if mean is not None and share is not None:
            gap += Fraction(n, total) * abs(share - mean)
        table.append(CalibrationBin(float(Fraction(i, bins)), float(Fraction(i + 1, bins)), n,
                                    None if mean is None else float(mean), None if share is None else float(share)))
    return Calibration(float(gap) if total else None, tuple(table))
