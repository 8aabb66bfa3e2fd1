"""Percentiles, computed one way everywhere in the app, its benchmarks and its reports.

The method is linear interpolation between the two closest ranks ("inclusive"): numpy's default,
Excel's PERCENTILE.INC and `statistics.quantiles(method="inclusive")`. The 0th percentile is the
smallest value, the 100th the largest, and every percentile lies between two observed values.

    percentile([1.0, 2.0, 3.0, 4.0], 50)          # 2.5
    percentile_of_sorted(ascending, 95)           # the same, for values sorted once for many percentiles
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


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
