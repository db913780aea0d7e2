"""recs.experiments.report: intervals, tests and verdicts against hand-computed numbers."""

import math
import statistics
from datetime import UTC, datetime, timedelta

import pytest
from scipy import stats

from merch.models import Placement
from merch.selectors.experiments import ExperimentConfig, VariantConfig, experiment_by_id
from merch.services.experiments import VariantSpec, create_experiment
from recs.experiments import report
from recs.experiments.report import Totals
from recs.experiments.sequential import ArmStats, sequential_test, tau_for_sample_size
from recs.models import VariantHourlyStats

HOUR = datetime(2026, 3, 2, 9, tzinfo=UTC)


def sums(samples: list[float]) -> tuple[float, float, int]:
    return sum(samples), sum(x * x for x in samples), len(samples)


# --- Wilson intervals ------------------------------------------------------------------------


def test_wilson_interval_of_10_in_100_matches_the_hand_computed_bounds():
    # p = 0.1, z^2 = 3.8415: centre (0.1 + 0.019207) / 1.038415 = 0.114800,
    # half-width 1.96 * sqrt(0.0009 + 0.000096) / 1.038415 = 0.059571.
    rate = report.wilson_rate(10, 100)
    assert rate.value == 0.1
    assert rate.low == pytest.approx(0.055229, abs=1e-5)
    assert rate.high == pytest.approx(0.174372, abs=1e-5)


def test_wilson_interval_of_zero_successes_starts_at_zero_and_is_not_degenerate():
    rate = report.wilson_rate(0, 10)
    z2 = report.Z_95**2
    assert rate.value == 0
    assert rate.low == 0
    assert rate.high == pytest.approx(z2 / (10 + z2))  # 0.27753


def test_wilson_interval_of_all_successes_ends_at_one():
    rate = report.wilson_rate(10, 10)
    assert rate.high == pytest.approx(1.0)
    assert rate.low == pytest.approx(1 - 0.27753, abs=1e-5)


def test_rate_without_trials_has_no_value_and_no_interval():
    assert report.wilson_rate(0, 0) == report.Rate(0, 0, None, None, None)


# --- Means from sums ---------------------------------------------------------------------------


def test_mean_and_interval_from_sums_match_the_raw_samples():
    samples = [0.0, 0.0, 10.0, 20.0, 50.0]  # mean 16, sample variance (3000 - 1280) / 4 = 430
    mean = report.mean_from_sums(*sums(samples))
    assert mean.value == 16
    assert mean.std == pytest.approx(statistics.stdev(samples))
    half_width = report.Z_95 * math.sqrt(430 / 5)  # 18.176
    assert mean.low == pytest.approx(16 - half_width)
    assert mean.high == pytest.approx(16 + half_width)


def test_mean_of_one_subject_has_a_value_but_no_interval():
    mean = report.mean_from_sums(12.0, 144.0, 1)
    assert (mean.value, mean.std, mean.low, mean.high) == (12.0, None, None, None)


def test_mean_of_no_subjects_is_none():
    assert report.mean_from_sums(0.0, 0.0, 0).value is None


def test_float_rounding_in_the_sums_never_gives_a_negative_variance():
    total, squares, n = sums([0.1] * 3)
    mean = report.mean_from_sums(total, squares - 1e-15, n)
    assert mean.std == pytest.approx(0.0, abs=1e-6)


# --- Tests against the control ---------------------------------------------------------------


def test_welch_p_value_from_sums_equals_scipy_on_the_raw_samples():
    control = [0, 0, 0, 12.5, 0, 30, 0, 7.25, 0, 0, 45, 0, 0, 3.5, 0, 0, 0, 18, 0, 0]
    variant = [0, 22, 0, 14.5, 0, 60, 9.75, 0, 31, 0, 0, 52, 0, 0, 11, 0, 27.5]
    expected = stats.ttest_ind(variant, control, equal_var=False).pvalue
    p_value = report.welch_p_value(
        report.mean_from_sums(*sums(variant)), report.mean_from_sums(*sums(control))
    )
    assert p_value == pytest.approx(expected, rel=1e-9)


def test_welch_p_value_is_none_when_a_side_has_fewer_than_two_subjects():
    one = report.mean_from_sums(10.0, 100.0, 1)
    many = report.mean_from_sums(*sums([1.0, 2.0, 3.0]))
    assert report.welch_p_value(one, many) is None


def test_two_proportion_p_value_matches_the_hand_computed_z_test():
    # pooled 240 / 2000 = 0.12; se = sqrt(0.12 * 0.88 * 2 / 1000) = 0.014533; z = 0.04 / se = 2.7524
    p_value = report.two_proportion_p_value(140, 1000, 100, 1000)
    z = 0.04 / math.sqrt(0.12 * 0.88 * 2 / 1000)
    assert p_value == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert p_value == pytest.approx(0.005915, abs=1e-6)


def test_two_proportion_p_value_without_any_success_is_one_and_without_trials_none():
    assert report.two_proportion_p_value(0, 50, 0, 60) == 1.0
    assert report.two_proportion_p_value(3, 0, 1, 60) is None


@pytest.mark.parametrize(
    ("difference", "p_value", "expected"),
    [
        (0.02, 0.003, "better than control (p = 0.003)"),
        (-0.02, 0.0123, "worse than control (p = 0.012)"),
        (0.02, 0.0004, "better than control (p < 0.001)"),
        (0.02, 0.2, "no significant difference yet"),
        (-0.5, 0.05, "no significant difference yet"),
        (None, None, "not enough data yet"),
        (0.1, None, "not enough data yet"),
    ],
)
def test_verdict_says_better_worse_or_not_yet_in_plain_words(difference, p_value, expected):
    assert report.verdict(difference, p_value, alpha=0.05) == expected


def test_significance_level_is_a_setting(settings):
    settings.AISLE = {**settings.AISLE, "EXPERIMENT_SIGNIFICANCE_LEVEL": 0.01}
    assert report.verdict(0.02, 0.03) == "no significant difference yet"


def test_rate_comparison_gives_lift_p_value_and_verdict():
    comparison = report.compare_rates(report.wilson_rate(140, 1000), report.wilson_rate(100, 1000))
    assert comparison.difference == pytest.approx(0.04)
    assert comparison.relative_lift == pytest.approx(0.4)
    assert comparison.verdict == "better than control (p = 0.006)"


def test_lift_against_a_control_of_zero_has_no_relative_value():
    comparison = report.compare_rates(report.wilson_rate(3, 100), report.wilson_rate(0, 100))
    assert comparison.difference == pytest.approx(0.03)
    assert comparison.relative_lift is None


# --- The report ------------------------------------------------------------------------------


@pytest.fixture
def experiment(default_placements):
    created = create_experiment(
        "Home: EASE vs auto",
        Placement.objects.get(key="home"),
        [
            VariantSpec("control", "auto", 0, is_control=True),
            VariantSpec("ease", "ease", 40),
            VariantSpec("knn-shadow", "item_knn", 0, is_shadow=True),
        ],
    )
    return experiment_by_id(created.pk)


def seed(experiment_id: int, variant: str, hour: datetime, **columns) -> VariantHourlyStats:
    return VariantHourlyStats.objects.create(
        experiment_id=experiment_id, variant=variant, hour=hour, **columns
    )


def test_report_sums_the_hours_and_compares_each_variant_with_the_control(experiment):
    for hour, factor in ((HOUR, 1), (HOUR + timedelta(hours=1), 1)):
        seed(experiment.id, "control", hour, exposed_subjects=500 * factor, lists_served=800,
             impressions=500, clicks=50, add_to_carts=10, converting_subjects=50,
             revenue=1000.0, revenue_squares=60000.0, recommended_revenue=200.0)  # fmt: skip
        seed(experiment.id, "ease", hour, exposed_subjects=500, lists_served=790,
             impressions=500, clicks=70, add_to_carts=20, converting_subjects=70,
             revenue=1500.0, revenue_squares=90000.0, recommended_revenue=450.0)  # fmt: skip
        seed(experiment.id, "knn-shadow", hour, shadow_lists=400, shadow_overlap=100.0,
             outcomes=50, shadow_hits=15, served_hits=10)  # fmt: skip

    result = report.experiment_report(experiment)

    assert result.control == "control"
    control, ease = result.variants
    assert (control.name, control.traffic_percent, ease.traffic_percent) == ("control", 60, 40)
    assert (ease.exposed_subjects, ease.lists_served, ease.impressions) == (1000, 1580, 1000)
    assert ease.ctr.value == pytest.approx(0.14)
    assert ease.add_to_cart_rate.value == pytest.approx(0.04)
    assert ease.conversion.value == pytest.approx(0.14)
    assert ease.revenue_per_subject.value == pytest.approx(3.0)
    assert ease.recommended_revenue == pytest.approx(900.0)
    # 140 / 1000 against 100 / 1000: the hand-computed fixed-horizon z-test above ...
    assert ease.ctr_vs_control.p_value == pytest.approx(0.005915, abs=1e-6)
    # ... while the verdict reads the always-valid test, at its lowest over the two hourly looks.
    tau = tau_for_sample_size(10_000, 0.05)
    looks = [
        sequential_test(ArmStats.from_sums(n, c, c), ArmStats.from_sums(n, b, b), alpha=0.05,
                        tau=tau).p_value
        for n, c, b in ((500, 70, 50), (1000, 140, 100))
    ]  # fmt: skip
    assert ease.ctr_vs_control.always_valid_p == pytest.approx(min(looks))
    assert ease.ctr_vs_control.always_valid_p > ease.ctr_vs_control.p_value
    assert ease.ctr_vs_control.low < 0.04 < ease.ctr_vs_control.high
    assert ease.ctr_vs_control.verdict == "no significant difference yet"
    # 1,000 shoppers each where the split says 60 / 40: a sample ratio mismatch.
    assert result.sample_ratio.flagged
    assert result.sample_ratio.result.overall.p_value < 1e-6
    assert ease.conversion_vs_control.relative_lift == pytest.approx(0.4)
    expected_p = stats.ttest_ind_from_stats(
        3.0, math.sqrt((180000 - 3000**2 / 1000) / 999), 1000,
        2.0, math.sqrt((120000 - 2000**2 / 1000) / 999), 1000, equal_var=False,
    ).pvalue  # fmt: skip
    assert ease.revenue_vs_control.p_value == pytest.approx(expected_p)
    assert control.ctr_vs_control is None

    (shadow,) = result.shadows
    assert shadow.lists_scored == 800
    assert shadow.mean_overlap == pytest.approx(0.25)
    assert shadow.shadow_hit_rate.value == pytest.approx(0.3)
    assert shadow.served_hit_rate.value == pytest.approx(0.2)
    assert result.last_rollup_at is not None


def test_hourly_series_count_exposures_per_hour_and_rates_cumulatively(experiment):
    seed(experiment.id, "control", HOUR, exposed_subjects=100, converting_subjects=10,
         impressions=200, clicks=20, revenue=300.0)  # fmt: skip
    seed(experiment.id, "control", HOUR + timedelta(hours=1), exposed_subjects=300,
         converting_subjects=10, impressions=200, clicks=0, revenue=100.0)  # fmt: skip

    series = report.experiment_report(experiment).series

    assert series["exposed"]["control"] == [(HOUR, 100.0), (HOUR + timedelta(hours=1), 300.0)]
    assert [v for _, v in series["conversion"]["control"]] == pytest.approx([0.1, 0.05])
    assert [v for _, v in series["revenue_per_subject"]["control"]] == pytest.approx([3.0, 1.0])
    assert [v for _, v in series["ctr"]["control"]] == pytest.approx([0.1, 0.05])
    assert "knn-shadow" not in series["exposed"]


def test_experiment_without_rollups_reports_no_values_and_no_errors(experiment):
    result = report.experiment_report(experiment)

    for variant in result.variants:
        assert variant.exposed_subjects == 0
        assert variant.ctr.value is None and variant.ctr.low is None
        assert variant.conversion.value is None
        assert variant.revenue_per_subject.value is None
    ease = result.variants[1]
    assert ease.ctr_vs_control.verdict == "not enough data yet"
    assert ease.revenue_vs_control.p_value is None
    assert result.shadows[0].mean_overlap is None
    assert result.shadows[0].shadow_hit_rate.value is None
    assert result.last_rollup_at is None
    assert all(not lines for lines in result.series.values())


def test_exposed_shoppers_without_impressions_or_purchases_divide_safely(experiment):
    seed(experiment.id, "control", HOUR, exposed_subjects=5)
    seed(experiment.id, "ease", HOUR, exposed_subjects=1, revenue=20.0, revenue_squares=400.0)

    control, ease = report.experiment_report(experiment).variants

    assert control.ctr.value is None
    assert control.conversion.value == 0
    assert ease.revenue_per_subject.value == 20.0
    assert ease.revenue_per_subject.low is None  # one shopper: no interval
    assert ease.revenue_vs_control.verdict == "not enough data yet"


def test_variant_with_rollups_but_no_longer_configured_is_still_reported(experiment):
    seed(experiment.id, "removed-arm", HOUR, exposed_subjects=7, converting_subjects=1)

    result = report.experiment_report(experiment)

    removed = next(v for v in result.variants if v.name == "removed-arm")
    assert removed.in_config is False
    assert removed.exposed_subjects == 7


def test_report_without_a_control_has_no_comparisons():
    config = ExperimentConfig(
        id=1, name="x", placement_key="home", status="running", salt="s", starts_at=None,
        ends_at=None, variants=(VariantConfig("a", "auto", 50.0, False, False),),
    )  # fmt: skip

    result = report.build_report(config, [("a", HOUR, Totals(exposed_subjects=3))])

    assert result.control is None
    assert result.variants[0].ctr_vs_control is None


def test_variant_totals_sum_every_hour_per_experiment_and_variant(db):
    seed(1, "control", HOUR, exposed_subjects=3, converting_subjects=1, revenue=5.0)
    seed(1, "control", HOUR + timedelta(hours=1), exposed_subjects=4, revenue=2.5)
    seed(2, "control", HOUR, exposed_subjects=10)

    totals = report.variant_totals()

    assert totals[(1, "control")].exposed_subjects == 7
    assert totals[(1, "control")].converting_subjects == 1
    assert totals[(1, "control")].revenue == pytest.approx(7.5)
    assert totals[(2, "control")].exposed_subjects == 10


# --- Always-valid verdicts, CUPED, sample ratio, guardrails ----------------------------------


def _arm(name, *, control=False, traffic=50.0, paused=None):
    return VariantConfig(name, "auto", traffic, control, False, paused_at=paused)


def _config(**fields):
    return ExperimentConfig(
        id=1, name="x", placement_key="home", status="running", salt="s", starts_at=None,
        ends_at=None, variants=(_arm("control", control=True), _arm("b")), **fields,
    )  # fmt: skip


def test_always_valid_p_is_the_lowest_over_the_looks_and_never_rises():
    """A difference that showed early and faded: the fixed-horizon p of the last look is large,
    the always-valid p keeps what the early look showed (as a merchandiser who peeked saw it),
    and is still far more cautious than the early fixed-horizon p."""
    early = {"control": Totals(exposed_subjects=2000, converting_subjects=100),
             "b": Totals(exposed_subjects=2000, converting_subjects=180)}  # fmt: skip
    later = {"control": Totals(exposed_subjects=2000, converting_subjects=200),
             "b": Totals(exposed_subjects=2000, converting_subjects=120)}  # fmt: skip
    rows = [("control", HOUR, early["control"]), ("b", HOUR, early["b"]),
            ("control", HOUR + timedelta(hours=1), later["control"]),
            ("b", HOUR + timedelta(hours=1), later["b"])]  # fmt: skip
    first_look = report.build_report(_config(), rows[:2])
    both_looks = report.build_report(_config(), rows)
    p_first = first_look.variants[1].conversion_vs_control.always_valid_p
    p_both = both_looks.variants[1].conversion_vs_control.always_valid_p
    assert p_both == pytest.approx(p_first)  # the second look's own p is higher: not taken
    assert p_first > first_look.variants[1].conversion_vs_control.p_value


def test_cuped_narrows_the_interval_when_history_predicts_revenue():
    """Shoppers' revenue is their earlier revenue plus noise: CUPED removes most of the
    variance, and the interval of the difference shrinks by about that much."""
    import random

    rng = random.Random(3)

    def arm(lift):
        xs = [rng.lognormvariate(2, 1) for _ in range(1500)]
        ys = [x + lift + rng.gauss(0, 2) for x in xs]
        return Totals(
            exposed_subjects=1500, revenue=sum(ys), revenue_squares=sum(y * y for y in ys),
            pre_revenue=sum(xs), pre_revenue_squares=sum(x * x for x in xs),
            pre_revenue_revenue=sum(x * y for x, y in zip(xs, ys, strict=True)),
        )  # fmt: skip

    with_history = report.build_report(_config(), [("control", HOUR, arm(0)), ("b", HOUR, arm(1))])
    revenue = with_history.variants[1].revenue_vs_control
    assert revenue.variance_reduction > 0.8
    without = report.build_report(
        _config(),
        [(name, HOUR, Totals(exposed_subjects=t.exposed_subjects, revenue=t.revenue,
                             revenue_squares=t.revenue_squares))
         for name, t in (("control", arm(0)), ("b", arm(1)))],
    )  # fmt: skip
    plain = without.variants[1].revenue_vs_control
    assert plain.variance_reduction == 0.0
    assert (revenue.high - revenue.low) < 0.5 * (plain.high - plain.low)
    assert revenue.low < 1 < revenue.high and revenue.verdict.startswith("better")


def test_sample_ratio_counts_only_shoppers_since_the_split_changed():
    # Before the ramp the split was 90 / 10; since it, 50 / 50 as set.
    ramped_at = (HOUR + timedelta(hours=2, minutes=10)).timestamp()  # within hour 2: not counted
    rows = [("control", HOUR, Totals(exposed_subjects=900)),
            ("b", HOUR, Totals(exposed_subjects=100)),
            ("control", HOUR + timedelta(hours=2), Totals(exposed_subjects=400)),
            ("b", HOUR + timedelta(hours=2), Totals(exposed_subjects=50)),
            ("control", HOUR + timedelta(hours=3), Totals(exposed_subjects=505)),
            ("b", HOUR + timedelta(hours=3), Totals(exposed_subjects=495))]  # fmt: skip
    since_ramp = report.build_report(_config(split_since=ramped_at), rows).sample_ratio
    assert since_ramp.result.overall.total == 1000 and not since_ramp.flagged
    all_along = report.build_report(_config(), rows).sample_ratio
    assert all_along.flagged


def test_a_paused_challenger_leaves_the_split_and_the_guardrails():
    config = ExperimentConfig(
        id=1, name="x", placement_key="home", status="running", salt="s", starts_at=None,
        ends_at=None,
        variants=(_arm("control", control=True, traffic=50), _arm("b", traffic=25),
                  _arm("c", traffic=25, paused=HOUR.timestamp())),
        guardrails=(report.GuardrailConfig("conversion", 5.0),),
    )  # fmt: skip
    rows = [("control", HOUR, Totals(exposed_subjects=2000, converting_subjects=200)),
            ("b", HOUR, Totals(exposed_subjects=1000, converting_subjects=100)),
            ("c", HOUR, Totals(exposed_subjects=400, converting_subjects=0))]  # fmt: skip
    result = report.build_report(config, rows)
    assert {c.variant: c.expected_share for c in result.sample_ratio.result.overall.cells} == {
        "control": pytest.approx(2 / 3),
        "b": pytest.approx(1 / 3),
    }
    assert not result.sample_ratio.flagged
    assert result.guardrail_breaches == []  # c is worse, but already paused


@pytest.mark.parametrize(("max_drop", "breached"), [(5.0, True), (60.0, False)])
def test_a_guardrail_trips_only_when_the_drop_is_confidently_larger(max_drop, breached):
    config = _config(guardrails=(report.GuardrailConfig("conversion", max_drop),))
    rows = [("control", HOUR, Totals(exposed_subjects=5000, converting_subjects=500)),
            ("b", HOUR, Totals(exposed_subjects=5000, converting_subjects=300))]  # fmt: skip
    breaches = report.build_report(config, rows).guardrail_breaches
    assert bool(breaches) is breached
    if breached:
        (breach,) = breaches
        assert (breach.variant, breach.metric) == ("b", "conversion")
        assert breach.high < -0.05 * 0.1
        assert "conversion per shopper dropped by more than 5 %" in breach.reason
