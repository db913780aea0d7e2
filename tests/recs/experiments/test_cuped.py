"""recs.experiments.cuped: adjustment from sums against hand-computed and per-shopper numbers."""

import numpy as np
import pytest

from recs.experiments.cuped import CupedSums, cuped_adjust, pooled_theta
from recs.experiments.sequential import ArmStats, sequential_test


def sums_of(y: list[float] | np.ndarray, x: list[float] | np.ndarray) -> CupedSums:
    y, x = np.asarray(y, float), np.asarray(x, float)
    return CupedSums(len(y), *(float(s) for s in (y.sum(), y @ y, x.sum(), x @ x, x @ y)))


def test_small_case_matches_the_hand_computed_adjustment():
    # a: x = 0 1 2, y = 1 3 2 -> Sxx 2, Sxy 1, Syy 2. b: x = 1 3, y = 2 6 -> Sxx 2, Sxy 4, Syy 8.
    # theta = (1 + 4) / (2 + 2) = 1.25; pooled mean x = 7 / 5 = 1.4.
    result = cuped_adjust({"a": sums_of([1, 3, 2], [0, 1, 2]), "b": sums_of([2, 6], [1, 3])})
    assert result.theta == pytest.approx(1.25)
    a, b = result.adjusted["a"], result.adjusted["b"]
    assert a.mean == pytest.approx(2 - 1.25 * (1 - 1.4))  # 2.5
    assert b.mean == pytest.approx(4 - 1.25 * (2 - 1.4))  # 3.25
    assert a.variance == pytest.approx((2 - 2 * 1.25 * 1 + 1.25**2 * 2) / 2)  # 1.3125
    assert b.variance == pytest.approx((8 - 2 * 1.25 * 4 + 1.25**2 * 2) / 1)  # 1.125
    assert result.variance_reduction == pytest.approx(1 - (2.625 + 1.125) / (2 + 8))  # 0.625
    assert result.unadjusted["a"] == ArmStats(3, 2.0, pytest.approx(1.0))


def test_a_perfectly_correlated_covariate_removes_all_variance_and_keeps_the_effect():
    x_control, x_treatment = np.arange(50.0), np.arange(50.0) * 1.3
    result = cuped_adjust(
        {
            "control": sums_of(2 * x_control + 1, x_control),
            "treatment": sums_of(2 * x_treatment + 1.5, x_treatment),  # +0.5 per shopper
        }
    )
    assert result.theta == pytest.approx(2.0)
    assert result.variance_reduction == pytest.approx(1.0)
    assert result.adjusted["control"].variance == pytest.approx(0.0, abs=1e-9)
    difference = result.adjusted["treatment"].mean - result.adjusted["control"].mean
    assert difference == pytest.approx(0.5)


def test_no_pre_period_activity_anywhere_means_no_adjustment():
    result = cuped_adjust(
        {"control": sums_of([0, 1, 0, 1], [0] * 4), "treatment": sums_of([1, 1, 0, 1], [0] * 4)}
    )
    assert (result.theta, result.variance_reduction) == (0.0, 0.0)
    assert result.adjusted == result.unadjusted
    # Constant but not zero: the float sums leave Sxx = 1.8e-15 of rounding, which is no slope.
    constant = {"a": sums_of([1, 2, 4, 3, 0, 1, 2], [1.1] * 7), "b": sums_of([0, 5], [1.1] * 2)}
    a = constant["a"]
    assert a.sum_x2 - a.sum_x * a.sum_x / a.n > 0
    assert pooled_theta(constant) == 0.0


def test_from_sums_equals_the_per_shopper_computation():
    rng = np.random.default_rng(3)
    x = {arm: rng.gamma(2.0, 10.0, 400) for arm in ("control", "treatment")}
    y = {arm: 0.8 * x[arm] + rng.normal(0, 8, 400) + (3 if arm == "treatment" else 0) for arm in x}
    result = cuped_adjust({arm: sums_of(y[arm], x[arm]) for arm in x})
    centred = {arm: (x[arm] - x[arm].mean(), y[arm] - y[arm].mean()) for arm in x}
    theta = sum((cx * cy).sum() for cx, cy in centred.values()) / sum(
        (cx * cx).sum() for cx, _ in centred.values()
    )
    assert result.theta == pytest.approx(theta)
    mean_x = np.concatenate(list(x.values())).mean()
    for arm in x:
        adjusted = y[arm] - theta * (x[arm] - mean_x)
        assert result.adjusted[arm].mean == pytest.approx(adjusted.mean())
        assert result.adjusted[arm].variance == pytest.approx(adjusted.var(ddof=1))
    assert 0.5 < result.variance_reduction < 1


def test_adjusted_stats_make_the_sequential_test_more_certain():
    rng = np.random.default_rng(11)
    x = rng.gamma(1.5, 20.0, (2, 2000))
    y = x + rng.normal(0, 15, (2, 2000)) + np.array([[0.0], [2.0]])
    result = cuped_adjust({"control": sums_of(y[0], x[0]), "treatment": sums_of(y[1], x[1])})
    plain = sequential_test(
        result.unadjusted["treatment"], result.unadjusted["control"], alpha=0.05
    )
    adjusted = sequential_test(result.adjusted["treatment"], result.adjusted["control"], alpha=0.05)
    assert adjusted.high - adjusted.low < plain.high - plain.low
    assert adjusted.p_value < plain.p_value


def test_empty_and_single_shopper_arms_do_not_fail():
    result = cuped_adjust({"control": CupedSums(0, 0, 0, 0, 0, 0), "treatment": sums_of([4], [2])})
    assert result.adjusted["control"] == ArmStats(0, 0.0, 0.0)
    assert result.adjusted["treatment"].n == 1 and result.adjusted["treatment"].variance == 0
    assert result.variance_reduction == 0.0
    assert (
        sequential_test(
            result.adjusted["treatment"], result.adjusted["control"], alpha=0.05
        ).p_value
        is None
    )
    assert cuped_adjust({}).variance_reduction == 0.0
