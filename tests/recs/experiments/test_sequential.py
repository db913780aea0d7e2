"""recs.experiments.sequential: the mixture SPRT against its defining integral and in simulation."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from recs.experiments.sequential import (
    DEFAULT_TAU,
    ArmStats,
    always_valid_p_value,
    confidence_radius,
    log_mixture_likelihood_ratio,
    sequential_test,
    tau_for_sample_size,
)


def mixture_ratio_by_integration(difference: float, variance: float, mixing_variance: float):
    """Lambda from its definition: the likelihood of the observed difference averaged over
    theta ~ N(0, tau^2), over its likelihood under theta = 0."""
    sd, mixing_sd = math.sqrt(variance), math.sqrt(mixing_variance)
    mixed, _ = integrate.quad(
        lambda theta: stats.norm.pdf(difference, theta, sd) * stats.norm.pdf(theta, 0, mixing_sd),
        -np.inf, np.inf,
    )  # fmt: skip
    return mixed / stats.norm.pdf(difference, 0, sd)


# --- ArmStats from the rollup's sums ---------------------------------------------------------


def test_arm_stats_from_sums_match_the_sample_mean_and_variance():
    values = [1.0, 2.0, 3.0, 4.0]
    arm = ArmStats.from_sums(4, sum(values), sum(v * v for v in values))
    assert arm == ArmStats(4, 2.5, pytest.approx(5 / 3))


def test_arm_stats_of_a_rate_is_the_mean_of_zeros_and_ones():
    arm = ArmStats.from_sums(100, 10, 10)  # 10 converters: sum of squares = sum
    assert arm.mean == 0.1
    assert arm.variance == pytest.approx(0.1 * 0.9 * 100 / 99)


def test_arm_stats_without_enough_shoppers_have_no_variance():
    assert ArmStats.from_sums(0, 0.0, 0.0) == ArmStats(0, 0.0, 0.0)
    assert ArmStats.from_sums(1, 7.0, 49.0) == ArmStats(1, 7.0, 0.0)
    # Float sums of a constant sample can leave a tiny negative: clipped to 0.
    assert ArmStats.from_sums(3, 0.3, 0.03).variance >= 0


# --- The mixture likelihood ratio ------------------------------------------------------------


def test_closed_form_mixture_ratio_matches_the_integral_it_comes_from():
    # Lambda = sqrt(0.04 / 0.13) * exp(0.09 * 0.09 / (2 * 0.04 * 0.13)) = 0.5547 * 2.1790 = 1.2087
    assert math.exp(log_mixture_likelihood_ratio(0.3, 0.04, 0.09)) == pytest.approx(
        1.2087, abs=1e-4
    )
    for difference, variance, mixing in [(0.3, 0.04, 0.09), (-1.1, 0.2, 0.01), (0.0, 1.0, 4.0)]:
        assert math.exp(log_mixture_likelihood_ratio(difference, variance, mixing)) == (
            pytest.approx(mixture_ratio_by_integration(difference, variance, mixing), rel=1e-6)
        )


def test_sequential_p_value_of_a_small_case_is_one_over_the_integrated_ratio():
    treatment, control = ArmStats(100, 0.3, 1.0), ArmStats(100, 0.0, 1.0)
    result = sequential_test(treatment, control, alpha=0.05, tau=0.5)
    # V = 1/100 + 1/100, pooled variance 1, so tau^2 = 0.25 in the metric's unit:
    # Lambda = sqrt(0.02 / 0.27) * exp(0.25 * 0.09 / (2 * 0.02 * 0.27)) = 0.27217 * 8.0309.
    expected = 1 / mixture_ratio_by_integration(0.3, 0.02, 0.25)
    assert result.difference == pytest.approx(0.3)
    assert result.mixing_sd == pytest.approx(0.5)
    assert result.p_value == pytest.approx(expected, rel=1e-6)
    assert result.p_value == pytest.approx(1 / 2.18580, abs=1e-4)
    assert not result.significant  # a fixed-horizon z-test would say p = 0.034
    assert result.low < 0 < result.high


def test_interval_ends_are_where_the_ratio_reaches_one_over_alpha():
    variance, mixing, alpha = 0.02, 0.25, 0.05
    radius = confidence_radius(variance, mixing, alpha)
    assert log_mixture_likelihood_ratio(radius, variance, mixing) == pytest.approx(math.log(20))
    result = sequential_test(ArmStats(100, 2.0, 1.0), ArmStats(100, 1.0, 1.0), alpha=alpha, tau=0.5)
    assert (result.low, result.high) == pytest.approx((1.0 - radius, 1.0 + radius))
    assert result.significant and result.p_value < alpha and result.low > 0


def test_p_value_is_one_when_the_ratio_is_below_one():
    assert always_valid_p_value(-0.5) == 1.0
    assert always_valid_p_value(math.log(40)) == pytest.approx(0.025)


# --- Running minimum -------------------------------------------------------------------------


def test_p_value_never_rises_when_the_previous_look_is_passed():
    looks = [(0.20, 200), (0.35, 400), (0.05, 600), (0.30, 800), (0.00, 1000)]
    previous, seen = None, []
    for difference, n in looks:
        result = sequential_test(
            ArmStats(n, 1.0 + difference, 1.0), ArmStats(n, 1.0, 1.0), alpha=0.05,
            previous_p=previous,
        )  # fmt: skip
        seen.append(result.p_value)
        previous = result.p_value
    assert seen == sorted(seen, reverse=True)
    fresh = sequential_test(ArmStats(600, 1.05, 1.0), ArmStats(600, 1.0, 1.0), alpha=0.05)
    assert fresh.p_value > seen[2]  # alone, the third look would have said less


# --- Degenerate data -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "treatment, control",
    [
        (ArmStats(0, 0.0, 0.0), ArmStats(50, 1.0, 1.0)),
        (ArmStats(1, 3.0, 0.0), ArmStats(50, 1.0, 1.0)),
        (ArmStats(50, 0.0, 0.0), ArmStats(50, 0.0, 0.0)),  # nobody converted yet
        (ArmStats(50, 1.0, 0.0), ArmStats(50, 1.0, 0.0)),  # everybody did
    ],
)
def test_too_little_data_gives_no_p_value_and_no_interval(treatment, control):
    result = sequential_test(treatment, control, alpha=0.05)
    assert (result.p_value, result.low, result.high) == (None, None, None)
    assert not result.significant
    kept = sequential_test(treatment, control, alpha=0.05, previous_p=0.2)
    assert kept.p_value == 0.2  # the evidence already gathered stands


def test_one_arm_without_variance_is_still_tested():
    result = sequential_test(ArmStats(500, 0.0, 0.0), ArmStats(500, 0.1, 0.09), alpha=0.05)
    assert result.p_value is not None and result.significant


def test_extreme_scales_do_not_raise():
    result = sequential_test(ArmStats(10, 1e150, 1e-300), ArmStats(10, 0.0, 1e-300), alpha=0.05)
    assert result.p_value == 0.0
    assert sequential_test(ArmStats(10, 1.0, 1e-320), ArmStats(10, 1.0, 0.0), alpha=0.05)


def test_nonsense_parameters_are_refused():
    arm = ArmStats(10, 1.0, 1.0)
    with pytest.raises(ValueError):
        sequential_test(arm, arm, alpha=0.0)
    with pytest.raises(ValueError):
        sequential_test(arm, arm, alpha=0.05, tau=0.0)


# --- Choosing tau ----------------------------------------------------------------------------


def test_default_tau_is_the_best_one_for_ten_thousand_shoppers_per_arm():
    tau = tau_for_sample_size(10_000, 0.05)
    ratio = tau * tau / (2 / 10_000)  # tau^2 / V
    assert ratio == pytest.approx(2 * math.log(20) + math.log1p(ratio))
    assert tau == pytest.approx(DEFAULT_TAU, abs=0.001)
    variance = 2 / 10_000  # the difference of two means of unit variance
    best = confidence_radius(variance, tau * tau, 0.05)
    for other in (0.7 * tau, 1.4 * tau):
        assert confidence_radius(variance, other * other, 0.05) > best


# --- In simulation ---------------------------------------------------------------------------


def test_interval_holds_the_true_difference_at_every_look_in_most_experiments():
    """Time-uniform coverage: the interval must contain the truth at all 40 looks at once in at
    least 1 - alpha of the experiments, not merely at each look."""
    rng = np.random.default_rng(7)
    experiments, looks, every, truth = 300, 40, 25, 0.2
    treatment = rng.normal(1.0 + truth, 1.0, (experiments, looks * every))
    control = rng.normal(1.0, 1.0, (experiments, looks * every))
    always_covered = 0
    for t_values, c_values in zip(treatment, control, strict=True):
        sums_t, sums_c = np.cumsum(t_values), np.cumsum(c_values)
        squares_t, squares_c = np.cumsum(t_values**2), np.cumsum(c_values**2)
        covered = True
        for look in range(1, looks + 1):
            n = look * every
            result = sequential_test(
                ArmStats.from_sums(n, sums_t[n - 1], squares_t[n - 1]),
                ArmStats.from_sums(n, sums_c[n - 1], squares_c[n - 1]),
                alpha=0.05, tau=0.3,
            )  # fmt: skip
            covered = covered and result.low <= truth <= result.high
        always_covered += covered
    assert always_covered / experiments >= 0.95
