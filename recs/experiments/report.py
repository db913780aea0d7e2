"""Experiment results per variant from the workers' hourly rollups, never the event log: fast.

Verdicts come from always-valid tests (recs.experiments.sequential), safe to read at every look,
on CUPED-adjusted means (recs.experiments.cuped) for conversion and revenue per shopper; the
fixed-horizon p-values are kept beside them. The traffic split is checked for a sample ratio
mismatch (recs.experiments.srm), and guardrails are checked against the always-valid intervals.
"""

# Everything above the selectors at the bottom is pure arithmetic, checked against hand-computed
# numbers in the tests.

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

from django.db.models import Sum
from scipy import stats

from aisle.conf import aisle_settings
from merch.models import ExperimentGuardrail
from merch.selectors.experiments import ExperimentConfig, GuardrailConfig, VariantConfig
from recs.experiments.cuped import CupedResult, CupedSums, cuped_adjust
from recs.experiments.sequential import (
    ArmStats,
    SequentialResult,
    sequential_test,
    tau_for_sample_size,
)
from recs.experiments.srm import SrmResult, sample_ratio_check
from recs.models import VariantHourlyStats

CONFIDENCE = 0.95
Z_95 = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))  # 1.959963984540054

COUNT_FIELDS = (
    "exposed_subjects", "lists_served", "impressions", "clicks", "add_to_carts",
    "converting_subjects", "shadow_lists", "outcomes", "shadow_hits", "served_hits",
)  # fmt: skip
SUM_FIELDS = (
    "revenue", "revenue_squares", "recommended_revenue", "shadow_overlap", "pre_activity",
    "pre_activity_squares", "pre_activity_conversion", "pre_revenue", "pre_revenue_squares",
    "pre_revenue_revenue",
)  # fmt: skip
ALL_FIELDS = COUNT_FIELDS + SUM_FIELDS

Point = tuple[datetime, float | None]


def significance_level() -> float:
    """Below this p-value a difference counts as real (EXPERIMENT_SIGNIFICANCE_LEVEL)."""
    return float(aisle_settings.EXPERIMENT_SIGNIFICANCE_LEVEL)


# --- Value objects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """Summed rollup columns of one variant (over all hours, or up to one hour)."""

    exposed_subjects: int = 0
    lists_served: int = 0
    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    converting_subjects: int = 0
    shadow_lists: int = 0
    outcomes: int = 0
    shadow_hits: int = 0
    served_hits: int = 0
    revenue: float = 0.0
    revenue_squares: float = 0.0
    recommended_revenue: float = 0.0
    shadow_overlap: float = 0.0
    pre_activity: float = 0.0
    pre_activity_squares: float = 0.0
    pre_activity_conversion: float = 0.0
    pre_revenue: float = 0.0
    pre_revenue_squares: float = 0.0
    pre_revenue_revenue: float = 0.0

    def __add__(self, other: "Totals") -> "Totals":
        return Totals(**{name: getattr(self, name) + getattr(other, name) for name in ALL_FIELDS})

    @classmethod
    def from_row(cls, row: dict) -> "Totals":
        return cls(
            **{name: int(row.get(name) or 0) for name in COUNT_FIELDS},
            **{name: float(row.get(name) or 0.0) for name in SUM_FIELDS},
        )


@dataclass(frozen=True)
class Rate:
    """successes / trials with a Wilson interval; value and bounds are None when trials = 0."""

    successes: int
    trials: int
    value: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Mean:
    """A per-subject mean with a normal-approximation interval (None when it cannot be had)."""

    total: float
    total_squares: float
    n: int
    value: float | None
    std: float | None  # sample standard deviation (ddof = 1)
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Comparison:
    """A variant's metric against the control's: lift, p-values, the always-valid interval and
    a verdict in plain words, read off the always-valid test."""

    difference: float | None  # variant - control, in the metric's own unit (CUPED-adjusted)
    relative_lift: float | None  # difference / control; None when the control is 0
    p_value: float | None  # fixed-horizon: valid once, at a sample size fixed in advance
    verdict: str
    always_valid_p: float | None = None  # the running minimum over the rollup's hours
    low: float | None = None  # always-valid interval of the difference
    high: float | None = None
    variance_reduction: float | None = None  # by CUPED; None where it does not apply


@dataclass(frozen=True)
class VariantResult:
    name: str
    strategy: str
    traffic_percent: float
    is_control: bool
    in_config: bool
    exposed_subjects: int
    lists_served: int
    impressions: int
    ctr: Rate
    add_to_cart_rate: Rate
    conversion: Rate
    revenue_per_subject: Mean
    recommended_revenue: float
    ctr_vs_control: Comparison | None = None
    conversion_vs_control: Comparison | None = None
    revenue_vs_control: Comparison | None = None


@dataclass(frozen=True)
class ShadowResult:
    name: str
    strategy: str
    in_config: bool
    lists_scored: int
    mean_overlap: float | None  # shadow_overlap / shadow_lists
    outcomes: int
    shadow_hit_rate: Rate  # outcomes the shadow list held
    served_hit_rate: Rate  # outcomes the list actually shown held


@dataclass(frozen=True)
class Arm:
    """What the report needs of a variant's configuration (a VariantConfig, or a variant that
    has rollup rows but is no longer configured)."""

    name: str
    strategy: str
    traffic_percent: float
    is_control: bool
    is_shadow: bool

    @classmethod
    def of(cls, variant: VariantConfig) -> "Arm":
        return cls(
            name=variant.name,
            strategy=variant.strategy,
            traffic_percent=float(variant.traffic_percent or 0),
            is_control=bool(variant.is_control),
            is_shadow=bool(variant.is_shadow),
        )


@dataclass(frozen=True)
class GuardrailBreach:
    """A challenger confidently worse than the control by more than a guardrail allows."""

    variant: str
    metric: str
    max_drop_percent: float
    control_value: float
    low: float  # always-valid interval of the difference
    high: float

    @property
    def reason(self) -> str:
        label = ExperimentGuardrail.Metric(self.metric).label
        return (
            f"Guardrail: {label.lower()} dropped by more than {self.max_drop_percent:g} % "
            f"against the control (always-valid 95 % interval of the change: "
            f"{self.low / self.control_value:+.1%} to {self.high / self.control_value:+.1%})."
        )


@dataclass(frozen=True)
class SampleRatio:
    """The sample ratio check of the shoppers first exposed under the current split."""

    result: SrmResult
    since: datetime | None  # None: since the start

    @property
    def flagged(self) -> bool:
        return self.result.flagged


@dataclass(frozen=True)
class ExperimentReport:
    experiment: ExperimentConfig
    control: str | None
    variants: list[VariantResult]
    shadows: list[ShadowResult]
    # metric -> variant -> [(hour, value)]: exposed per hour; conversion, revenue per subject and
    # CTR cumulative up to each hour, which is what a reader of a running test wants to watch.
    series: dict[str, dict[str, list[Point]]] = field(default_factory=dict)
    last_rollup_at: datetime | None = None
    sample_ratio: SampleRatio | None = None
    guardrail_breaches: list[GuardrailBreach] = field(default_factory=list)


# --- Statistics (pure) -----------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def wilson_rate(successes: int, trials: int, z: float = Z_95) -> Rate:
    """A proportion with its Wilson score interval, which stays inside [0, 1] and behaves at
    small counts and at 0 % or 100 %, where the textbook normal interval does not."""
    if trials <= 0:
        return Rate(successes, 0, None, None, None)
    successes = min(max(successes, 0), trials)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Rate(successes, trials, p, max(centre - half_width, 0.0), min(centre + half_width, 1.0))


def _sample_variance(total: float, total_squares: float, n: int) -> float | None:
    if n < 2:
        return None
    # max(): rounding in the rollup's float sums may leave a tiny negative for constant samples.
    return max((total_squares - total * total / n) / (n - 1), 0.0)


def mean_from_sums(total: float, total_squares: float, n: int, z: float = Z_95) -> Mean:
    """Mean per subject from the sum and the sum of squares the rollup keeps, so that an interval
    needs no per-shopper rows; normal interval (fine at dashboard sample sizes)."""
    if n <= 0:
        return Mean(total, total_squares, 0, None, None, None, None)
    mean = total / n
    variance = _sample_variance(total, total_squares, n)
    if variance is None:
        return Mean(total, total_squares, n, mean, None, None, None)
    half_width = z * math.sqrt(variance / n)
    return Mean(
        total, total_squares, n, mean, math.sqrt(variance), mean - half_width, mean + half_width
    )


def two_proportion_p_value(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int
) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test; None without trials on a side."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    standard_error = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    if standard_error == 0:  # both 0 % or both 100 %: no evidence of any difference
        return 1.0
    z = (successes_a / trials_a - successes_b / trials_b) / standard_error
    return float(2 * stats.norm.sf(abs(z)))


def welch_p_value(a: Mean, b: Mean) -> float | None:
    """Two-sided p-value of Welch's t-test from the two means and sample deviations; None when a
    side has fewer than two subjects or neither varies (the test is undefined then)."""
    if a.std is None or b.std is None or (a.std == 0 and b.std == 0):
        return None
    result = stats.ttest_ind_from_stats(a.value, a.std, a.n, b.value, b.std, b.n, equal_var=False)
    p_value = float(result.pvalue)
    return None if math.isnan(p_value) else p_value


def format_p_value(p_value: float) -> str:
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def verdict(
    difference: float | None,
    p_value: float | None,
    alpha: float | None = None,
    *,
    always_valid: bool = False,
) -> str:
    alpha = significance_level() if alpha is None else alpha
    if difference is None or p_value is None:
        return "not enough data yet"
    if p_value >= alpha or difference == 0:
        return "no significant difference yet"
    direction = "better" if difference > 0 else "worse"
    kind = "always-valid " if always_valid else ""
    return f"{direction} than control ({kind}{format_p_value(p_value)})"


def compare(
    value: float | None,
    control: float | None,
    p_value: float | None,
    sequential: SequentialResult | None = None,
    variance_reduction: float | None = None,
) -> Comparison:
    """The comparison of a variant's value with the control's; the verdict follows the
    always-valid test when there is one, else the fixed-horizon p-value."""
    if value is None or control is None:
        return Comparison(None, None, None, verdict(None, None))
    if sequential is None or sequential.difference is None:
        difference = value - control
        return Comparison(
            difference, _ratio(difference, control), p_value, verdict(difference, p_value)
        )
    difference = sequential.difference
    return Comparison(
        difference=difference,
        relative_lift=_ratio(difference, control),
        p_value=p_value,
        verdict=verdict(difference, sequential.p_value, sequential.alpha, always_valid=True),
        always_valid_p=sequential.p_value,
        low=sequential.low,
        high=sequential.high,
        variance_reduction=variance_reduction,
    )


def compare_rates(
    variant: Rate, control: Rate, sequential: SequentialResult | None = None
) -> Comparison:
    p_value = two_proportion_p_value(
        variant.successes, variant.trials, control.successes, control.trials
    )
    return compare(variant.value, control.value, p_value, sequential)


def compare_means(
    variant: Mean, control: Mean, sequential: SequentialResult | None = None
) -> Comparison:
    return compare(variant.value, control.value, welch_p_value(variant, control), sequential)


# --- Always-valid tests over the hours (pure) ------------------------------------------------


def conversion_sums(totals: Totals) -> CupedSums:
    """Converted (0/1) per exposed shopper, beside log(1 + their earlier events)."""
    return CupedSums(
        totals.exposed_subjects, totals.converting_subjects, totals.converting_subjects,
        totals.pre_activity, totals.pre_activity_squares, totals.pre_activity_conversion,
    )  # fmt: skip


def revenue_sums(totals: Totals) -> CupedSums:
    """Revenue per exposed shopper, beside their revenue before the experiment."""
    return CupedSums(
        totals.exposed_subjects, totals.revenue, totals.revenue_squares,
        totals.pre_revenue, totals.pre_revenue_squares, totals.pre_revenue_revenue,
    )  # fmt: skip


def ctr_stats(totals: Totals) -> ArmStats:
    """Clicks per impression as a mean of 0/1 values (no CUPED: impressions have no history)."""
    return ArmStats.from_sums(totals.impressions, totals.clicks, totals.clicks)


@dataclass(frozen=True)
class SequentialTests:
    """Per treatment and metric, the always-valid test at the last look (p: running minimum
    over the looks), and CUPED's variance reduction per metric."""

    results: dict[tuple[str, str], SequentialResult]
    variance_reduction: dict[str, float]


def sequential_tests(
    cumulative: Sequence[dict[str, Totals]], control: str, *, alpha: float, tau: float
) -> SequentialTests:
    """Run the always-valid test at every look (cumulative totals per variant, oldest first:
    one per rollup hour), as a merchandiser peeking at each would, keeping the running minimum
    of each p-value; the intervals and CUPED numbers are the last look's."""
    results: dict[tuple[str, str], SequentialResult] = {}
    reduction: dict[str, float] = {}
    for look in cumulative:
        if control not in look:
            continue
        adjusted: dict[str, CupedResult] = {
            "conversion": cuped_adjust({n: conversion_sums(t) for n, t in look.items()}),
            "revenue": cuped_adjust({n: revenue_sums(t) for n, t in look.items()}),
        }
        reduction = {metric: result.variance_reduction for metric, result in adjusted.items()}
        for name, totals in look.items():
            if name == control:
                continue
            arms = {
                "ctr": (ctr_stats(totals), ctr_stats(look[control])),
                **{
                    metric: (result.adjusted[name], result.adjusted[control])
                    for metric, result in adjusted.items()
                },
            }
            for metric, (treatment, baseline) in arms.items():
                previous = results.get((name, metric))
                results[(name, metric)] = sequential_test(
                    treatment,
                    baseline,
                    alpha=alpha,
                    tau=tau,
                    previous_p=previous.p_value if previous else None,
                )
    return SequentialTests(results, reduction)


def guardrail_breaches(
    variants: Sequence["VariantResult"], guardrails: Sequence[GuardrailConfig]
) -> list[GuardrailBreach]:
    """Challengers whose always-valid interval lies wholly below -max_drop % of the control."""
    control = next((v for v in variants if v.is_control), None)
    if control is None:
        return []
    breaches = []
    for variant in variants:
        if variant.is_control:
            continue
        # metric -> (the variant's comparison with the control, the control's value)
        compared = {
            ExperimentGuardrail.Metric.CONVERSION: (
                variant.conversion_vs_control, control.conversion.value
            ),
            ExperimentGuardrail.Metric.REVENUE_PER_SHOPPER: (
                variant.revenue_vs_control, control.revenue_per_subject.value
            ),
        }  # fmt: skip
        for guardrail in guardrails:
            comparison, control_value = compared.get(guardrail.metric, (None, None))
            if comparison is None or comparison.high is None or not control_value:
                continue
            if comparison.high < -guardrail.max_drop_percent / 100 * control_value:
                breach = GuardrailBreach(
                    variant.name, guardrail.metric, guardrail.max_drop_percent,
                    control_value, comparison.low, comparison.high,
                )  # fmt: skip
                breaches.append(breach)
    return breaches


def exposures_by_day(
    rows_by_variant: dict[str, list[tuple[datetime, Totals]]], since: float | None
) -> dict[date, dict[str, int]]:
    """Shoppers first exposed per UTC day and variant, from the first whole hour at or after
    `since` (an hour that a split change cuts holds shoppers of both splits)."""
    by_day: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    first_hour = None if since is None else math.ceil(since / 3600) * 3600
    for name, rows in rows_by_variant.items():
        for hour, totals in rows:
            if first_hour is not None and hour.timestamp() < first_hour:
                continue
            by_day[hour.astimezone(UTC).date()][name] += totals.exposed_subjects
    return {day: dict(counts) for day, counts in by_day.items()}


# --- Building the report (pure) --------------------------------------------------------------


def variant_result(
    variant: Arm, totals: Totals, *, traffic_percent: float, in_config: bool = True
) -> VariantResult:
    return VariantResult(
        name=variant.name,
        strategy=variant.strategy,
        traffic_percent=traffic_percent,
        is_control=variant.is_control,
        in_config=in_config,
        exposed_subjects=totals.exposed_subjects,
        lists_served=totals.lists_served,
        impressions=totals.impressions,
        ctr=wilson_rate(totals.clicks, totals.impressions),
        add_to_cart_rate=wilson_rate(totals.add_to_carts, totals.impressions),
        conversion=wilson_rate(totals.converting_subjects, totals.exposed_subjects),
        revenue_per_subject=mean_from_sums(
            totals.revenue, totals.revenue_squares, totals.exposed_subjects
        ),
        recommended_revenue=totals.recommended_revenue,
    )


def with_comparison(
    result: VariantResult, control: VariantResult, tests: SequentialTests | None = None
) -> VariantResult:
    """The variant's comparisons with the control; `tests` carries the always-valid ones."""

    def sequential(metric: str) -> SequentialResult | None:
        return tests.results.get((result.name, metric)) if tests else None

    def reduction(metric: str) -> float | None:
        return tests.variance_reduction.get(metric) if tests else None

    conversion = compare_rates(result.conversion, control.conversion, sequential("conversion"))
    revenue = compare_means(
        result.revenue_per_subject, control.revenue_per_subject, sequential("revenue")
    )
    return replace(
        result,
        ctr_vs_control=compare_rates(result.ctr, control.ctr, sequential("ctr")),
        conversion_vs_control=replace(conversion, variance_reduction=reduction("conversion")),
        revenue_vs_control=replace(revenue, variance_reduction=reduction("revenue")),
    )


def shadow_result(variant: Arm, totals: Totals, *, in_config: bool = True) -> ShadowResult:
    return ShadowResult(
        name=variant.name,
        strategy=variant.strategy,
        in_config=in_config,
        lists_scored=totals.shadow_lists,
        mean_overlap=_ratio(totals.shadow_overlap, totals.shadow_lists),
        outcomes=totals.outcomes,
        shadow_hit_rate=wilson_rate(totals.shadow_hits, totals.outcomes),
        served_hit_rate=wilson_rate(totals.served_hits, totals.outcomes),
    )


def traffic_shares(variants: Sequence[Arm]) -> dict[str, float]:
    """Share of shoppers per shown variant: the control takes what the others do not."""
    shown = [v for v in variants if not v.is_shadow]
    others = sum(float(v.traffic_percent) for v in shown if not v.is_control)
    return {
        v.name: max(100.0 - others, 0.0) if v.is_control else float(v.traffic_percent)
        for v in shown
    }


def hourly_series(
    rows_by_variant: dict[str, list[tuple[datetime, Totals]]],
) -> dict[str, dict[str, list[Point]]]:
    """Chart series per variant: exposures per hour, and cumulative conversion, revenue per
    subject and CTR up to each hour (an hourly rate of a few shoppers is mostly noise)."""
    series: dict[str, dict[str, list[Point]]] = {
        "exposed": {}, "conversion": {}, "revenue_per_subject": {}, "ctr": {},
    }  # fmt: skip
    for name, rows in rows_by_variant.items():
        running = Totals()
        for metric in series:
            series[metric][name] = []
        for hour, totals in sorted(rows, key=lambda pair: pair[0]):
            running += totals
            series["exposed"][name].append((hour, float(totals.exposed_subjects)))
            series["conversion"][name].append(
                (hour, _ratio(running.converting_subjects, running.exposed_subjects))
            )
            series["revenue_per_subject"][name].append(
                (hour, _ratio(running.revenue, running.exposed_subjects))
            )
            series["ctr"][name].append((hour, _ratio(running.clicks, running.impressions)))
    return series


def build_report(
    experiment: ExperimentConfig,
    hourly_rows: Iterable[tuple[str, datetime, Totals]],
    last_rollup_at: datetime | None = None,
) -> ExperimentReport:
    """The report from (variant, hour, totals) rollup rows. Variants that have rows but are no
    longer configured (deleted arms) are kept, marked, so that no traffic silently disappears."""
    by_variant: dict[str, list[tuple[datetime, Totals]]] = defaultdict(list)
    for name, hour, totals in hourly_rows:
        by_variant[name].append((hour, totals))
    totals_by_variant = {
        name: sum((totals for _, totals in rows), Totals()) for name, rows in by_variant.items()
    }
    arms = [Arm.of(v) for v in experiment.variants]
    configured = {arm.name for arm in arms}
    unknown = [
        Arm(
            name=name,
            strategy="",
            traffic_percent=0.0,
            is_control=False,
            is_shadow=totals.shadow_lists > 0 and totals.exposed_subjects == 0,
        )
        for name, totals in sorted(totals_by_variant.items())
        if name not in configured
    ]
    shares = traffic_shares(arms)
    variants = [
        variant_result(
            v,
            totals_by_variant.get(v.name, Totals()),
            traffic_percent=shares.get(v.name, 0.0),
            in_config=v.name in configured,
        )
        for v in (*arms, *unknown)
        if not v.is_shadow
    ]
    control = next((v for v in variants if v.is_control), None)
    shown = {v.name for v in variants}
    shown_rows = {name: rows for name, rows in by_variant.items() if name in shown}
    if control is not None:
        tests = sequential_tests(
            _cumulative_looks(shown_rows),
            control.name,
            alpha=significance_level(),
            tau=tau_for_sample_size(experiment.planned_shoppers_per_arm, significance_level()),
        )
        variants = [v if v is control else with_comparison(v, control, tests) for v in variants]
    # A paused challenger's shoppers see the control unlogged: the control's logged share stays
    # its own, and the paused arm leaves the check.
    paused = {v.name for v in experiment.variants if v.paused_at is not None}
    in_split = {name: share for name, share in shares.items() if name not in paused}
    sample_ratio = SampleRatio(
        sample_ratio_check(
            exposures_by_day(shown_rows, experiment.split_since),
            in_split,
            threshold=float(aisle_settings.EXPERIMENT_SRM_P_VALUE),
        ),
        since=None
        if experiment.split_since is None
        else datetime.fromtimestamp(experiment.split_since, UTC),
    )
    shadows = [
        shadow_result(v, totals_by_variant.get(v.name, Totals()), in_config=v.name in configured)
        for v in (*arms, *unknown)
        if v.is_shadow
    ]
    return ExperimentReport(
        experiment=experiment,
        control=control.name if control else None,
        variants=variants,
        shadows=shadows,
        series=hourly_series(shown_rows),
        last_rollup_at=last_rollup_at,
        sample_ratio=sample_ratio,
        guardrail_breaches=guardrail_breaches(
            [v for v in variants if v.name not in paused], experiment.guardrails
        ),
    )


def _cumulative_looks(
    rows_by_variant: dict[str, list[tuple[datetime, Totals]]],
) -> list[dict[str, Totals]]:
    """Totals per variant up to each rollup hour, oldest first: the looks a merchandiser had."""
    hours = sorted({hour for rows in rows_by_variant.values() for hour, _ in rows})
    by_hour: dict[datetime, dict[str, Totals]] = defaultdict(dict)
    for name, rows in rows_by_variant.items():
        for hour, totals in rows:
            by_hour[hour][name] = by_hour[hour].get(name, Totals()) + totals
    looks, running = [], {}
    for hour in hours:
        for name, totals in by_hour[hour].items():
            running[name] = running.get(name, Totals()) + totals
        looks.append(dict(running))
    return looks


# --- Selectors -------------------------------------------------------------------------------


def experiment_report(experiment: ExperimentConfig) -> ExperimentReport:
    """The report of one experiment, in one query over its rollup rows (variants x hours)."""
    rows = list(
        VariantHourlyStats.objects.filter(experiment_id=experiment.id)
        .order_by("hour", "variant")
        .values("variant", "hour", "updated_at", *ALL_FIELDS)
    )
    last_rollup_at = max((row["updated_at"] for row in rows), default=None)
    return build_report(
        experiment,
        ((row["variant"], row["hour"], Totals.from_row(row)) for row in rows),
        last_rollup_at,
    )


def variant_totals() -> dict[tuple[int, str], Totals]:
    """All-time totals per (experiment id, variant), in one grouped query (for /metrics)."""
    rows = (
        VariantHourlyStats.objects.values("experiment_id", "variant")
        .order_by("experiment_id", "variant")
        .annotate(**{f"sum_{name}": Sum(name) for name in ALL_FIELDS})
    )
    return {
        (row["experiment_id"], row["variant"]): Totals.from_row(
            {name: row[f"sum_{name}"] for name in ALL_FIELDS}
        )
        for row in rows
    }
