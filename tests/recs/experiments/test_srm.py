"""recs.experiments.srm: the sample-ratio check against hand-computed chi-square tests."""

import math
from datetime import date

import pytest

from recs.experiments.srm import sample_ratio_check, srm_test

HALVES = {"control": 0.5, "treatment": 0.5}


def test_an_even_split_of_an_even_test_is_not_flagged():
    result = srm_test({"control": 500, "treatment": 500}, HALVES)
    assert result.statistic == 0
    assert result.p_value == pytest.approx(1.0)
    assert not result.flagged and result.reason == ""
    assert [(c.variant, c.observed, c.expected, c.observed_share, c.expected_share)
            for c in result.cells] == [
        ("control", 500, 500.0, 0.5, 0.5), ("treatment", 500, 500.0, 0.5, 0.5)
    ]  # fmt: skip


def test_a_planted_mismatch_is_flagged_with_the_hand_computed_p_value():
    # 650 exposures, 325 expected each: chi2 = 2 * 75^2 / 325 = 34.615 on 1 degree of freedom,
    # whose p-value is erfc(sqrt(chi2 / 2)) = 4.0e-9.
    result = srm_test({"control": 250, "treatment": 400}, HALVES)
    assert result.statistic == pytest.approx(34.615, abs=1e-3)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(34.615385 / 2)), rel=1e-5)
    assert result.flagged
    assert [c.observed_share for c in result.cells] == pytest.approx([250 / 650, 400 / 650])


def test_the_same_counts_match_a_30_70_split():
    result = srm_test({"control": 195, "treatment": 455}, {"control": 30, "treatment": 70})
    assert [c.expected for c in result.cells] == pytest.approx([195.0, 455.0])
    assert [c.expected_share for c in result.cells] == pytest.approx([0.3, 0.7])  # percentages
    assert result.p_value == pytest.approx(1.0) and not result.flagged


def test_three_variants_use_two_degrees_of_freedom():
    # Expected 200 each: chi2 = (20^2 + 0 + 20^2) / 200 = 4, p = exp(-4 / 2) for 2 dof.
    result = srm_test({"a": 180, "b": 200, "c": 220}, {"a": 1, "b": 1, "c": 1})
    assert result.statistic == pytest.approx(4.0)
    assert result.p_value == pytest.approx(math.exp(-2))


def test_threshold_is_settable():
    counts = {"control": 460, "treatment": 540}  # chi2 = 6.4, p = 0.0114
    assert not srm_test(counts, HALVES).flagged
    assert srm_test(counts, HALVES, threshold=0.05).flagged


def test_too_few_exposures_give_no_verdict_and_say_why():
    few = srm_test({"control": 10, "treatment": 80}, HALVES)
    assert (few.p_value, few.flagged) == (None, False)
    assert "too few exposures" in few.reason and "90 < 100" in few.reason
    small_cell = srm_test({"a": 196, "b": 4}, {"a": 0.98, "b": 0.02})
    assert small_cell.p_value is None and "b expects 4.0" in small_cell.reason
    nothing = srm_test({}, HALVES)
    assert nothing.total == 0 and nothing.reason and nothing.cells[0].observed_share is None


def test_a_variant_that_gets_no_traffic_at_all_is_flagged():
    result = srm_test({"control": 1000}, HALVES)
    assert result.flagged
    assert [c.observed for c in result.cells] == [1000, 0]


def test_variants_without_a_share_are_left_out_and_listed():
    result = srm_test(
        {"control": 500, "treatment": 500, "old": 40, "gone": 0},
        {"control": 0.5, "treatment": 0.5, "old": 0.0},
    )
    assert result.total == 1000 and [c.variant for c in result.cells] == ["control", "treatment"]
    assert result.excluded == ("old",)
    assert not result.flagged


def test_a_single_variant_cannot_be_tested():
    result = srm_test({"control": 1000}, {"control": 1.0, "treatment": 0.0})
    assert result.p_value is None and "fewer than two" in result.reason


def test_daily_checks_find_the_day_it_started():
    days = {
        date(2026, 3, 1): {"control": 1000, "treatment": 1010},
        date(2026, 3, 3): {"control": 1000, "treatment": 800},  # a deploy lost shoppers
        date(2026, 3, 2): {"control": 990, "treatment": 1000},
        date(2026, 3, 4): {"control": 30, "treatment": 20},  # too few to test alone
    }
    result = sample_ratio_check(days, HALVES)
    assert [d.day for d in result.days] == sorted(days)
    assert result.worst_day.day == date(2026, 3, 3) and result.worst_day.test.flagged
    assert result.days[-1].test.reason and result.days[-1].test.p_value is None
    assert result.overall.total == 3020 + 2830 and result.cells[0].observed == 3020
    # chi2 = 2 * 95^2 / 2925 = 6.17 over all days, p = 0.013: the total dilutes the bad day.
    assert result.p_value == result.overall.p_value == pytest.approx(0.0130, abs=1e-4)
    assert not result.overall.flagged and result.reason == ""
    assert result.threshold == 0.001
    # ... but that day alone (p = 2.4e-6) is below 0.001 / 3 days tested: the check flags it.
    assert result.worst_day.test.p_value < 0.001 / 3 and result.flagged


def test_a_day_barely_below_the_threshold_is_not_enough_among_many_days():
    """Bonferroni: among 30 days tested, one at p = 0.0005 is what chance gives 1.5 % of the
    time; it must fall below 0.001 / 30 to flag the experiment."""
    even = {date(2026, 3, d): {"control": 1000, "treatment": 1000} for d in range(1, 31)}
    # chi2 = 150^2 / 1850 = 12.2 on 1 degree of freedom: p = 0.00049
    even[date(2026, 3, 31)] = {"control": 1000, "treatment": 850}
    result = sample_ratio_check(even, HALVES)
    assert 0.0001 < result.worst_day.test.p_value < 0.001 and result.worst_day.test.flagged
    assert not result.flagged


def test_no_days_at_all_is_not_flagged():
    result = sample_ratio_check({}, HALVES)
    assert (result.p_value, result.flagged, result.days, result.worst_day) == (
        None, False, (), None,
    )  # fmt: skip
    assert result.reason
