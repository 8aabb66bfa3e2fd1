"""The one percentile: inclusive linear interpolation, its edges, and agreement with the standard library."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from utils.stats import percentile, percentile_of_sorted


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
