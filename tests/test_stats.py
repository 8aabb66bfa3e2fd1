"""The one percentile (inclusive linear interpolation, its edges, agreement with the standard library) and the QA
report's statistics, each against a published worked example or a set computed by hand."""

from __future__ import annotations

import math
import random
import statistics
from fractions import Fraction

import pytest

from utils.stats import (
    Calibration,
    CalibrationBin,
    binomial_two_sided_p,
    expected_calibration_error,
    mcnemar_exact_p,
    percentile,
    percentile_of_sorted,
    wilson_interval,
)


def test_no_values_have_no_percentile():
    assert percentile([], 50) is None
    assert percentile(iter(()), 0) is None
    with pytest.raises(ValueError, match="no values"):
        percentile_of_sorted([], 50)


def test_one_value_is_every_percentile():
    for p in (0, 1, 50, 95, 99, 100, 37.5):
        assert percentile([7.0], p) == 7.0


def test_exact_ranks_are_observed_values():
    values = [10.0, 20.0, 30.0, 40.0, 50.0]  # n - 1 = 4: every 25th percentile lands on a value
    assert [percentile(values, p) for p in (0, 25, 50, 75, 100)] == values
    assert percentile(values, 0) == min(values) and percentile(values, 100) == max(values)


def test_between_ranks_it_interpolates_linearly():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([0.0, 10.0], 95) == 9.5
    assert percentile([0.0, 10.0], 12.5) == 1.25  # a percent that is not whole takes the float path
    values = [float(v) for v in range(1000, 21000, 1000)]  # 20 values, 1 s to 20 s in ms
    assert percentile(values, 50) == 10_500.0
    assert percentile(values, 95) == 19_050.0  # exact, though 19 * 0.95 is not in binary floating point
    assert percentile(values, 99) == 19_810.0


def test_order_of_the_input_does_not_matter():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 30) == percentile(sorted(values), 30) == percentile(reversed(values), 30) == 2.2
    assert percentile_of_sorted(sorted(values), 30) == 2.2


def test_it_is_the_inclusive_method_of_the_standard_library():
    rng = random.Random(7)
    for n in (2, 3, 10, 57, 200):
        values = [rng.uniform(0, 30_000) for _ in range(n)]
        cuts = statistics.quantiles(values, n=100, method="inclusive")  # cuts[k - 1] is the k-th percentile
        for p in range(1, 100):
            assert percentile(values, p) == pytest.approx(cuts[p - 1], rel=1e-12)


def test_a_percentile_reaching_an_infinite_value_is_infinite():
    # The load benchmark counts a case never answered as infinitely slow.
    values = [1.0, 2.0, math.inf, math.inf]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == math.inf  # between 2 and inf
    assert percentile(values, 90) == math.inf  # between two infinities: not NaN
    assert percentile([1.0, 2.0, 3.0, math.inf], 50) == 2.5


@pytest.mark.parametrize("percent", [-1, 100.5, 1000])
def test_a_percent_outside_0_to_100_is_refused(percent):
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0, 2.0], percent)


# -- Wilson intervals ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("successes", "n", "low", "high"), [
    # Newcombe RG. Two-sided confidence intervals for the single proportion: comparison of seven methods.
    # Statistics in Medicine 1998;17:857-872, Table I, method 3 (Wilson score interval without continuity correction).
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_newcombe_1998_table_1(successes, n, low, high):
    lo, hi = wilson_interval(successes, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) is None  # no cases: no share, no interval
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0  # exactly, not a hair outside
    lo, hi = wilson_interval(20, 20)
    assert (round(lo, 4), hi) == (0.8389, 1.0)  # the mirror image of 0/20 above
    lo, hi = wilson_interval(15, 30)
    assert lo == pytest.approx(1 - hi) and (round(lo, 4), round(hi, 4)) == (0.3315, 0.6685)  # symmetric at 50%
    # A higher confidence gives a wider interval around the same share.
    assert wilson_interval(15, 30, 0.99)[0] < lo and wilson_interval(15, 30, 0.99)[1] > hi
    for bad in ((-1, 5), (6, 5)):
        with pytest.raises(ValueError, match="successes <= n"):
            wilson_interval(*bad)
    with pytest.raises(ValueError, match="between 0 and 1"):
        wilson_interval(1, 2, 1.0)


# -- exact binomial and McNemar tests ------------------------------------------------------------------------------

def test_binomial_test_matches_r_binom_test_mendel_example():
    # R's ?binom.test example (Conover, Practical Nonparametric Statistics, 1971, p. 97f): Mendel's peas,
    # 682 of 925 against the expected 3/4; R prints p-value = 0.3825.
    assert round(binomial_two_sided_p(682, 925, 0.75), 4) == 0.3825
    assert round(binomial_two_sided_p(682, 925, Fraction(3, 4)), 4) == 0.3825


def test_binomial_test_by_hand():
    # n = 4 at 1/2: the outcomes' probabilities are 1, 4, 6, 4, 1 sixteenths.
    assert binomial_two_sided_p(0, 4) == 2 / 16
    assert binomial_two_sided_p(1, 4) == binomial_two_sided_p(3, 4) == 10 / 16
    assert binomial_two_sided_p(2, 4) == 1.0
    assert binomial_two_sided_p(0, 0) == 1.0  # one possible outcome, and it happened
    # At 3/10, k = 1 of 2 has probability 42/100; k = 0 (49/100) is more likely, k = 2 (9/100) less.
    assert binomial_two_sided_p(1, 2, 0.3) == pytest.approx(51 / 100, abs=1e-15)
    assert binomial_two_sided_p(2, 2, 0.3) == pytest.approx(9 / 100, abs=1e-15)
    for bad in ((3, 2, 0.5), (-1, 2, 0.5), (1, 2, 1.5)):
        with pytest.raises(ValueError):
            binomial_two_sided_p(*bad)


def test_mcnemar_exact_matches_fagerland_2013():
    # Fagerland MW, Lydersen S, Laake P. The McNemar test for binary matched-pairs data: mid-p and asymptotic
    # are better than exact conditional. BMC Med Res Methodol 2013;13:91, the worked example (Bentur et al. 2009:
    # airway hyper-responsiveness before and after stem cell transplantation in 21 children): discordant pairs
    # 1 and 7, exact conditional McNemar p = 0.070. By hand: 2 × (1 + 8) / 2^8 = 18/256.
    assert mcnemar_exact_p(1, 7) == mcnemar_exact_p(7, 1) == 18 / 256
    assert round(mcnemar_exact_p(1, 7), 3) == 0.070


def test_mcnemar_edges():
    assert mcnemar_exact_p(0, 0) == 1.0  # both right or both wrong on every case: no evidence of a difference
    assert mcnemar_exact_p(10, 0) == 2 / 1024
    assert mcnemar_exact_p(3, 1) == 10 / 16
    with pytest.raises(ValueError, match="not negative"):
        mcnemar_exact_p(-1, 2)


# -- expected calibration error ------------------------------------------------------------------------------------

def _bins(calibration: Calibration) -> dict[int, tuple[int, float | None, float | None]]:
    return {i: (b.n, b.confidence, b.accuracy) for i, b in enumerate(calibration.bins) if b.n}


def test_ece_by_hand_with_answers_on_the_bin_edges():
    # 0.3 and 0.1 sit on lower edges (their floats are a hair below 3/10 and 1/10: read as the decimals);
    # 1.0 goes in the last bin; 0.0 in the first; 0.0999 below the 0.1 edge.
    pairs = [(0.3, True), (0.3, False), (0.35, True), (0.1, False), (0.0999, True), (0.0, False),
             (1.0, True), (0.9, False), (0.95, True), (0.7, True)]
    calibration = expected_calibration_error(pairs)
    assert [(b.low, b.high) for b in calibration.bins] == [(i / 10, (i + 1) / 10) for i in range(10)]
    assert _bins(calibration) == {
        0: (2, 0.04995, 0.5),       # 0.0999, 0.0: |0.5 - 0.04995| = 0.45005
        1: (1, 0.1, 0.0),           # |0 - 0.1| = 0.1
        3: (3, pytest.approx(0.95 / 3), pytest.approx(2 / 3)),  # |2/3 - 0.95/3| = 1.05/3 = 0.35
        7: (1, 0.7, 1.0),           # 0.3
        9: (3, pytest.approx(0.95), pytest.approx(2 / 3)),      # |2/3 - 2.85/3| = 0.85/3
    }
    # ECE = (2 × 0.45005 + 0.1 + 3 × 0.35 + 0.3 + 0.85) / 10 = 3.2001 / 10
    assert calibration.ece == pytest.approx(0.32001, abs=1e-15)
    assert calibration.bins[2] == CalibrationBin(0.2, 0.3, 0, None, None)  # an empty bin: nothing to divide


def test_ece_of_a_perfectly_calibrated_and_of_no_answers():
    assert expected_calibration_error([(0.5, True), (0.5, False)]).ece == 0.0
    empty = expected_calibration_error([])
    assert empty.ece is None and len(empty.bins) == 10 and all(b.n == 0 for b in empty.bins)
    assert expected_calibration_error([(0.25, True)], bins=4).bins[1].n == 1  # 0.25 is the lower edge of bin 1
    assert expected_calibration_error([(0.8, True), (0.35, False)]).ece == pytest.approx((0.2 + 0.35) / 2)


@pytest.mark.parametrize("confidence", [-0.01, 1.01, math.nan])
def test_ece_refuses_a_confidence_outside_0_to_1(confidence):
    with pytest.raises(ValueError, match="between 0 and 1"):
        expected_calibration_error([(confidence, True)])
