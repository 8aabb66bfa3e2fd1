"""Two providers judged on the same cases: the difference of two paired shares with its interval, and agreement.

    paired_difference(both=59, only_a=6, only_b=16, neither=80)   # -0.0621, (-0.1186, -0.0046)
    cohen_kappa([(a_class, b_class), ...])                        # kappa, its standard error and 95% interval

The difference's interval is Newcombe's square-and-add interval for paired data (Newcombe 1998, Stat Med
17:2635, method 10): the Wilson intervals of the two shares combined with the correlation of the pairs,
as Fagerland, Lydersen & Laake (2017, ch. 8) compute it. Kappa's standard error is the large-sample one of
Fleiss, Cohen & Everitt (1969), the ASE that SAS PROC FREQ prints; its interval is kappa ± z·ASE.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from statistics import NormalDist

from utils.stats import wilson_interval


@dataclass(frozen=True)
class PairedDifference:
    """A's share minus B's over the same n cases, with its interval (None without cases)."""

    n: int
    difference: float | None
    interval: tuple[float, float] | None


def paired_difference(both: int, only_a: int, only_b: int, neither: int,
                      confidence: float = 0.95) -> PairedDifference:
    """Newcombe's method 10 interval for p_A − p_B, where p_A = (both + only_a) / n and p_B = (both + only_b) / n."""
    if min(both, only_a, only_b, neither) < 0:
        raise ValueError("Counts are not negative.")
    n = both + only_a + only_b + neither
    if n == 0:
        return PairedDifference(0, None, None)
    a_yes, b_yes = both + only_a, both + only_b
    p1, p2 = a_yes / n, b_yes / n
    l1, u1 = wilson_interval(a_yes, n, confidence) or (0.0, 1.0)
    l2, u2 = wilson_interval(b_yes, n, confidence) or (0.0, 1.0)
    margins = a_yes * (n - a_yes) * b_yes * (n - b_yes)
    psi = 0.0
    if margins:
        # The correlation of the pairs, with Newcombe's correction that shrinks a positive one by n/2.
        cross = both * neither - only_a * only_b
        if cross > n / 2:
            psi = (cross - n / 2) / math.sqrt(margins)
        elif cross < 0:
            psi = cross / math.sqrt(margins)
    low = p1 - p2 - math.sqrt(max(0.0, (p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * psi * (p1 - l1) * (u2 - p2)))
    high = p1 - p2 + math.sqrt(max(0.0, (p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * psi * (p2 - l2) * (u1 - p1)))
    return PairedDifference(n, p1 - p2, (max(-1.0, low), min(1.0, high)))


@dataclass(frozen=True)
class Kappa:
    """Cohen's kappa of two raters over n cases, its standard error and interval (None where undefined)."""

    n: int
    agreement: float | None
    kappa: float | None
    se: float | None
    interval: tuple[float, float] | None


def cohen_kappa(pairs: Iterable[tuple[Hashable, Hashable]], confidence: float = 0.95) -> Kappa:
    """Cohen's (unweighted) kappa of (rating of A, rating of B) pairs; a rating is any hashable category.

    Undefined (None) without cases, and when chance agreement is already total (both raters always chose the
    one same category: there is no disagreement that could have happened).
    """
    pairs = list(pairs)
    n = len(pairs)
    if not n:
        return Kappa(0, None, None, None, None)
    cells = Counter(pairs)
    rows = Counter(a for a, _ in pairs)
    cols = Counter(b for _, b in pairs)
    po = sum(count for (a, b), count in cells.items() if a == b) / n
    pe = sum(rows[c] * cols.get(c, 0) for c in rows) / n / n
    if pe >= 1:
        return Kappa(n, po, None, None, None)
    kappa = (po - pe) / (1 - pe)
    # Fleiss, Cohen & Everitt (1969): the variance under the observed (not the null) table.
    diagonal = sum(cells.get((c, c), 0) / n * (1 - (rows[c] / n + cols.get(c, 0) / n) * (1 - kappa)) ** 2
                   for c in rows)
    off = sum(count / n * (cols.get(a, 0) / n + rows.get(b, 0) / n) ** 2
              for (a, b), count in cells.items() if a != b)
    variance = (diagonal + (1 - kappa) ** 2 * off - (kappa - pe * (1 - kappa)) ** 2) / (n * (1 - pe) ** 2)
    se = math.sqrt(max(0.0, variance))
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    return Kappa(n, po, kappa, se, (max(-1.0, kappa - z * se), min(1.0, kappa + z * se)))
