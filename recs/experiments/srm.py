"""Sample ratio mismatch: do the exposures per variant match the traffic split that was set?

When a 50/50 test shows 52/48, something between assignment and logging loses or adds shoppers
on one side (a redirect that drops tracking, a crash on one variant, bots), and every metric of
the test is then biased in a way no p-value accounts for. The check is a chi-square
goodness-of-fit test of the exposures against the split, over the whole experiment and per day
(a mismatch that starts with a deploy shows in that day first). The industry convention is to
flag below p = 0.001: with many experiments checked every day, a looser threshold would raise
false alarms weekly.
"""

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from scipy import stats

SRM_THRESHOLD = 0.001
MIN_TOTAL = 100
MIN_EXPECTED = 5.0

Day = date | str


@dataclass(frozen=True)
class SrmCell:
    """One variant's exposures against what the split expects of the tested total."""

    variant: str
    observed: int
    expected: float
    observed_share: float | None  # None when nothing was tested
    expected_share: float


@dataclass(frozen=True)
class SrmTest:
    """One chi-square test (the whole experiment, or one day)."""

    total: int  # exposures of the variants in the split
    cells: tuple[SrmCell, ...]
    statistic: float | None
    p_value: float | None
    flagged: bool
    reason: str  # why there is no verdict; "" when tested
    excluded: tuple[str, ...] = ()  # variants with exposures but no share: not tested


@dataclass(frozen=True)
class DayTest:
    day: Day
    test: SrmTest


@dataclass(frozen=True)
class SrmResult:
    """The check over the whole experiment, each day's, and the day that looks worst."""

    overall: SrmTest
    days: tuple[DayTest, ...]
    worst_day: DayTest | None  # the tested day with the lowest p-value
    threshold: float

    @property
    def p_value(self) -> float | None:
        return self.overall.p_value

    @property
    def flagged(self) -> bool:
        """The whole experiment's test, or one day's below the threshold divided by the days
        tested (Bonferroni: checking many days must not cry wolf more often than one test)."""
        tested = [d.test.p_value for d in self.days if d.test.p_value is not None]
        day_limit = self.threshold / max(len(tested), 1)
        return self.overall.flagged or any(p_value < day_limit for p_value in tested)

    @property
    def reason(self) -> str:
        return self.overall.reason

    @property
    def cells(self) -> tuple[SrmCell, ...]:
        return self.overall.cells


def normalized_shares(shares: Mapping[str, float]) -> dict[str, float]:
    """The variants that take traffic, with shares summing to 1 (percentages work as well)."""
    positive = {name: float(share) for name, share in shares.items() if share > 0}
    total = sum(positive.values())
    return {name: share / total for name, share in positive.items()}


def srm_test(
    observed: Mapping[str, int],
    shares: Mapping[str, float],
    *,
    threshold: float = SRM_THRESHOLD,
    min_total: int = MIN_TOTAL,
    min_expected: float = MIN_EXPECTED,
) -> SrmTest:
    """Chi-square goodness of fit of exposures per shown variant against their shares.

    Variants with a zero share (or none) are left out of the test and listed in `excluded` when
    they had exposures. Too few exposures (a total below min_total, or a cell expecting fewer
    than min_expected, where the chi-square approximation fails) give no verdict and say why."""
    split = normalized_shares(shares)
    excluded = tuple(sorted(v for v, count in observed.items() if count > 0 and v not in split))
    counts = {name: max(int(observed.get(name, 0)), 0) for name in split}
    total = sum(counts.values())
    cells = tuple(
        SrmCell(name, counts[name], share * total, counts[name] / total if total else None, share)
        for name, share in split.items()
    )
    reason = _untestable(cells, total, min_total, min_expected)
    if reason:
        return SrmTest(total, cells, None, None, False, reason, excluded)
    statistic = sum((c.observed - c.expected) ** 2 / c.expected for c in cells)
    p_value = float(stats.chi2.sf(statistic, len(cells) - 1))
    return SrmTest(total, cells, statistic, p_value, p_value < threshold, "", excluded)


def sample_ratio_check(
    exposures_by_day: Mapping[Day, Mapping[str, int]],
    shares: Mapping[str, float],
    *,
    threshold: float = SRM_THRESHOLD,
    min_total: int = MIN_TOTAL,
    min_expected: float = MIN_EXPECTED,
) -> SrmResult:
    """The SRM check over all days summed and for each day (exposures per shown variant; shares
    of the shown variants, shadows left out)."""
    limits = {"threshold": threshold, "min_total": min_total, "min_expected": min_expected}
    overall: Counter[str] = Counter()
    for exposures in exposures_by_day.values():
        overall.update(exposures)
    days = tuple(
        DayTest(day, srm_test(exposures_by_day[day], shares, **limits))
        for day in sorted(exposures_by_day)
    )
    tested = [d for d in days if d.test.p_value is not None]
    worst = min(tested, key=lambda d: d.test.p_value, default=None)
    return SrmResult(srm_test(overall, shares, **limits), days, worst, threshold)


def _untestable(cells: tuple[SrmCell, ...], total: int, min_total: int, min_expected: float) -> str:
    if len(cells) < 2:
        return "fewer than two variants take traffic"
    if total < min_total:
        return f"too few exposures to test ({total} < {min_total})"
    smallest = min(cells, key=lambda c: c.expected)
    if smallest.expected < min_expected:
        return (
            f"too few exposures to test: {smallest.variant} expects {smallest.expected:.1f} "
            f"(< {min_expected:g})"
        )
    return ""
