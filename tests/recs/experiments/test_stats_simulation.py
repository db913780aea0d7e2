"""recs.experiments.stats_simulation: small seeded runs of the benchmark's simulations."""

import math

import numpy as np
import pytest

from recs.experiments import report
from recs.experiments import stats_simulation as simulation

LOOKS = simulation.Looks(shoppers=2_000, every=100)


def test_aa_experiments_rarely_alarm_sequentially_and_often_at_every_fixed_look():
    rng = np.random.default_rng(16)
    results = simulation.aa_false_alarms(rng, 20, LOOKS, alpha=0.05)
    assert [r.metric for r in results] == ["conversion", "revenue"]
    for r in results:
        assert (r.simulations, r.looks) == (20, 20)
        assert r.sequential <= 0.15 and r.sequential_cuped <= 0.15
        assert r.fixed_horizon >= r.sequential
        assert 0 <= r.fixed_horizon_last_look <= r.fixed_horizon <= 1


def test_arm_paths_hold_cumulative_sums_per_look():
    rng = np.random.default_rng(1)
    arm = simulation.simulate_arm(rng, 3, LOOKS, simulation.ShopperModel())
    assert arm.simulations == 3
    for metric in simulation.METRICS:
        for name in simulation.SUMS:
            assert arm.sums[metric][name].shape == (3, LOOKS.count)
            assert np.all(np.diff(arm.sums[metric][name], axis=1) >= 0)
    conversion = arm.sums["conversion"]
    assert np.array_equal(conversion["sum_y"], conversion["sum_y2"])  # 0/1 outcomes
    assert np.all(conversion["sum_y"][:, -1] <= LOOKS.shoppers)
    assert simulation.cuped_sums(arm, "revenue", 2, 0).n == 100


def test_planted_lift_is_found_and_srm_catches_a_planted_loss():
    rng = np.random.default_rng(5)
    looks = simulation.Looks(shoppers=20_000, every=2_000)
    model = simulation.ShopperModel(conversion=0.2)
    detections = simulation.planted_detection(rng, 10, looks, 0.3, model=model)
    conversion = detections[0]
    assert (conversion.metric, conversion.horizon) == ("conversion", 20_000)
    assert conversion.found_without >= 0.8 and conversion.found_with >= 0.8
    assert conversion.median_with <= conversion.median_without <= 20_000
    assert conversion.speedup >= 1 and 0 < conversion.variance_reduction < 1
    revenue = detections[1]  # heavy-tailed: where history helps most, CUPED finds it sooner
    assert revenue.metric == "revenue" and revenue.median_with < revenue.median_without
    assert revenue.speedup > 1 and revenue.variance_reduction > 0.1
    planted = simulation.srm_detection(rng, 20, 0.2, days=7, daily_shoppers=500)
    correct = simulation.srm_detection(rng, 20, 0.0, days=7, daily_shoppers=500)
    assert planted.flagged == 1.0 and correct.overall_flagged == 0.0 and correct.flagged <= 0.1
    assert planted.exposures < correct.exposures


def test_speedup_needs_a_finite_median():
    found = simulation.Detection("revenue", 0.1, 10, 1000, 800.0, 400.0, 1.0, 1.0, 0.3)
    assert found.speedup == 2.0
    never = simulation.Detection("revenue", 0.1, 10, 1000, math.inf, math.inf, 0.2, 0.4, 0.3)
    assert never.speedup is None


def test_vectorised_fixed_horizon_tests_match_the_dashboards():
    z = simulation.two_proportion_p_values(
        *map(np.array, ([30.0, 0.0], [400.0] * 2, [45.0, 0.0], [410.0] * 2))
    )
    assert z[0] == pytest.approx(report.two_proportion_p_value(30, 400, 45, 410))
    assert z[1] == 1.0  # nobody converted on either side
    a = report.mean_from_sums(120.0, 2900.0, 40)
    b = report.mean_from_sums(150.0, 5100.0, 45)
    welch = simulation.welch_p_values(
        np.array(120.0), np.array(2900.0), np.array(40.0),
        np.array(150.0), np.array(5100.0), np.array(45.0),
    )  # fmt: skip
    assert float(welch) == pytest.approx(report.welch_p_value(a, b))
