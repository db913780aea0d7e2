"""Simulated experiments whose truth is known, to measure the experiment statistics.

`manage.py bench_experiments` reports from here: how often each test raises a false alarm in
A/A experiments that are looked at many times, how often the sample-ratio check catches a
planted loss of shoppers, and how much sooner CUPED lets the sequential test find a planted
effect. The statistics under test are the product's own (sequential_test, cuped_adjust,
sample_ratio_check), called look by look; only the shoppers are drawn in bulk with numpy and
reduced to the per-look sums a rollup would keep.

A simulated shopper has a purchase propensity (lognormal across shoppers) and a typical basket
(lognormal, so revenue is heavy-tailed). The pre-experiment period shows the same shopper's
orders and spend over `pre_period_windows` windows of the experiment's length: the covariates
CUPED uses (orders for conversion, spend for revenue). A treatment multiplies the propensity.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from scipy import stats

from recs.experiments.cuped import CupedSums, cuped_adjust
from recs.experiments.sequential import DEFAULT_TAU, ArmStats, sequential_test
from recs.experiments.srm import sample_ratio_check

METRICS = ("conversion", "revenue")
SUMS = ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")
FIRST_DAY = date(2026, 1, 1)
CHUNK_SHOPPERS = 2_000_000  # shoppers drawn at once per arm (memory: about 10 arrays of this)


@dataclass(frozen=True)
class ShopperModel:
    conversion: float = 0.05  # mean purchase propensity within the attribution window
    propensity_sigma: float = 1.5  # lognormal spread of propensity between shoppers
    pre_period_windows: float = 8.0  # pre-experiment period, in windows of the experiment
    basket_mean: float = 50.0
    basket_sigma: float = 0.8  # lognormal spread of the typical basket between shoppers
    order_sigma: float = 0.5  # lognormal spread of one order around the shopper's typical basket


@dataclass(frozen=True)
class Looks:
    """Peeks at every `every` shoppers per arm, up to `shoppers` per arm."""

    shoppers: int
    every: int

    @property
    def count(self) -> int:
        return self.shoppers // self.every

    def shoppers_at(self, look: int) -> int:
        return (look + 1) * self.every


@dataclass(frozen=True)
class ArmPaths:
    """One arm's cumulative sums at each look, per metric and sum: arrays (simulations, looks)."""

    looks: Looks
    sums: dict[str, dict[str, np.ndarray]]

    @property
    def simulations(self) -> int:
        return self.sums["conversion"]["sum_y"].shape[0]


@dataclass(frozen=True)
class FalseAlarms:
    """A/A experiments: the share that a test ever called significant over all looks."""

    metric: str
    simulations: int
    looks: int
    sequential: float
    sequential_cuped: float
    fixed_horizon: float  # the usual test, checked at every look
    fixed_horizon_last_look: float  # checked once, at the planned horizon


@dataclass(frozen=True)
class SrmDetection:
    loss: float  # share of the treatment's shoppers dropped before logging
    simulations: int
    exposures: float  # mean exposures per simulated experiment
    flagged: float  # share the dashboard flags (SrmResult.flagged)
    overall_flagged: float  # share flagged over the whole experiment
    any_day_flagged: float  # share where some day, tested alone, was flagged


@dataclass(frozen=True)
class Detection:
    """A planted effect: how soon the sequential test declares it, without and with CUPED."""

    metric: str
    lift: float
    simulations: int
    horizon: int  # shoppers per arm at the last look
    median_without: float  # shoppers per arm until declared; inf when half never are
    median_with: float
    found_without: float  # share declared by the horizon
    found_with: float
    variance_reduction: float  # CUPED's, median over simulations at the horizon

    @property
    def speedup(self) -> float | None:
        """How many times sooner CUPED declares it (median against median)."""
        if not math.isfinite(self.median_with) or self.median_with <= 0:
            return None
        return self.median_without / self.median_with


# --- Shoppers --------------------------------------------------------------------------------


def lognormal_factor(rng: np.random.Generator, sigma: float, shape: tuple[int, ...]) -> np.ndarray:
    """Multiplicative noise with mean 1."""
    return np.exp(sigma * rng.standard_normal(shape) - sigma * sigma / 2)


def draw_shoppers(
    rng: np.random.Generator, shape: tuple[int, ...], model: ShopperModel, lift: float = 0.0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Outcome y and pre-period covariate x per shopper for each metric: conversion (0/1, x =
    pre-period orders) and revenue (x = pre-period spend). `lift` multiplies the propensity to
    buy in the experiment, so conversion and revenue per shopper rise by about that much."""
    propensity = np.minimum(
        model.conversion * lognormal_factor(rng, model.propensity_sigma, shape), 1.0
    )
    basket = model.basket_mean * lognormal_factor(rng, model.basket_sigma, shape)
    pre_orders = rng.poisson(model.pre_period_windows * propensity).astype(float)
    pre_spend = pre_orders * basket * lognormal_factor(rng, model.order_sigma, shape)
    converted = (rng.random(shape) < propensity * (1 + lift)).astype(float)
    revenue = converted * basket * lognormal_factor(rng, model.order_sigma, shape)
    return {"conversion": (converted, pre_orders), "revenue": (revenue, pre_spend)}


def look_sums(y: np.ndarray, x: np.ndarray, looks: Looks) -> dict[str, np.ndarray]:
    """Sums per look (not cumulative) of y, y^2, x, x^2 and xy: (simulations, looks) arrays."""
    shape = (y.shape[0], looks.count, looks.every)
    y, x = y.reshape(shape), x.reshape(shape)
    return {
        "sum_y": y.sum(axis=2), "sum_y2": (y * y).sum(axis=2), "sum_x": x.sum(axis=2),
        "sum_x2": (x * x).sum(axis=2), "sum_xy": (x * y).sum(axis=2),
    }  # fmt: skip


def simulate_arm(
    rng: np.random.Generator, simulations: int, looks: Looks, model: ShopperModel, lift: float = 0.0
) -> ArmPaths:
    """One arm of `simulations` experiments, drawn in chunks to bound memory."""
    per_look: dict[str, dict[str, list[np.ndarray]]] = {m: {s: [] for s in SUMS} for m in METRICS}
    shoppers = looks.count * looks.every
    chunk = max(1, CHUNK_SHOPPERS // shoppers)
    for start in range(0, simulations, chunk):
        size = min(chunk, simulations - start)
        drawn = draw_shoppers(rng, (size, shoppers), model, lift)
        for metric, (y, x) in drawn.items():
            for name, values in look_sums(y, x, looks).items():
                per_look[metric][name].append(values)
    sums = {
        metric: {name: np.cumsum(np.concatenate(parts), axis=1) for name, parts in by_sum.items()}
        for metric, by_sum in per_look.items()
    }
    return ArmPaths(looks, sums)


# --- The tests, look by look -----------------------------------------------------------------


def cuped_sums(arm: ArmPaths, metric: str, simulation: int, look: int) -> CupedSums:
    values = arm.sums[metric]
    return CupedSums(
        arm.looks.shoppers_at(look), *(float(values[name][simulation, look]) for name in SUMS)
    )


def arm_stats(arm: ArmPaths, metric: str, simulation: int, look: int) -> ArmStats:
    values = arm.sums[metric]
    return ArmStats.from_sums(
        arm.looks.shoppers_at(look),
        float(values["sum_y"][simulation, look]),
        float(values["sum_y2"][simulation, look]),
    )


def plain_stats(
    control: ArmPaths, treatment: ArmPaths, metric: str, simulation: int, look: int
) -> tuple[ArmStats, ArmStats]:
    """(treatment, control) ArmStats of the metric, unadjusted."""
    return (
        arm_stats(treatment, metric, simulation, look),
        arm_stats(control, metric, simulation, look),
    )


def cuped_stats(
    control: ArmPaths, treatment: ArmPaths, metric: str, simulation: int, look: int
) -> tuple[ArmStats, ArmStats]:
    """(treatment, control) ArmStats of the metric, CUPED-adjusted."""
    result = cuped_adjust(
        {
            "treatment": cuped_sums(treatment, metric, simulation, look),
            "control": cuped_sums(control, metric, simulation, look),
        }
    )
    return result.adjusted["treatment"], result.adjusted["control"]


StatsAt = Callable[[ArmPaths, ArmPaths, str, int, int], tuple[ArmStats, ArmStats]]


def first_declarations(
    control: ArmPaths, treatment: ArmPaths, metric: str, stats_at: StatsAt, *, alpha: float,
    tau: float = DEFAULT_TAU,
) -> np.ndarray:  # fmt: skip
    """Per simulation, shoppers per arm at the first look where the sequential test declares a
    difference (inf when it never does); negative when it declared the wrong direction first."""
    looks = control.looks
    declared = np.full(control.simulations, np.inf)
    for simulation in range(control.simulations):
        previous_p = None
        for look in range(looks.count):
            treated, untreated = stats_at(control, treatment, metric, simulation, look)
            result = sequential_test(
                treated, untreated, alpha=alpha, tau=tau, previous_p=previous_p
            )
            previous_p = result.p_value
            if result.significant:
                sign = 1 if (result.difference or 0) > 0 else -1
                declared[simulation] = sign * looks.shoppers_at(look)
                break
    return declared


def fixed_horizon_p_values(control: ArmPaths, treatment: ArmPaths, metric: str) -> np.ndarray:
    """The dashboard's fixed-horizon p-value at every look, (simulations, looks): the pooled
    two-proportion z-test for conversion, Welch's t-test for revenue (as in report.py)."""
    n = np.array([control.looks.shoppers_at(look) for look in range(control.looks.count)], float)
    t, c = treatment.sums[metric], control.sums[metric]
    if metric == "conversion":
        return two_proportion_p_values(t["sum_y"], n, c["sum_y"], n)
    return welch_p_values(t["sum_y"], t["sum_y2"], n, c["sum_y"], c["sum_y2"], n)


def two_proportion_p_values(
    successes_a: np.ndarray, trials_a: np.ndarray, successes_b: np.ndarray, trials_b: np.ndarray
) -> np.ndarray:
    """report.two_proportion_p_value over arrays (1.0 where both sides are all 0 or all 1)."""
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    error = np.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (successes_a / trials_a - successes_b / trials_b) / error
    return np.where(error > 0, 2 * stats.norm.sf(np.abs(z)), 1.0)


def welch_p_values(
    total_a: np.ndarray, squares_a: np.ndarray, n_a: np.ndarray,
    total_b: np.ndarray, squares_b: np.ndarray, n_b: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """report.welch_p_value over arrays of sums (NaN where neither side varies)."""
    var_a = np.maximum((squares_a - total_a * total_a / n_a) / (n_a - 1), 0.0) / n_a
    var_b = np.maximum((squares_b - total_b * total_b / n_b) / (n_b - 1), 0.0) / n_b
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (total_a / n_a - total_b / n_b) / np.sqrt(var_a + var_b)
        freedom = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
        return 2 * stats.t.sf(np.abs(t), freedom)


# --- The three benchmarks --------------------------------------------------------------------


def aa_false_alarms(
    rng: np.random.Generator, simulations: int, looks: Looks, *, alpha: float = 0.05,
    tau: float = DEFAULT_TAU, model: ShopperModel = ShopperModel(),
) -> list[FalseAlarms]:  # fmt: skip
    """A/A experiments (no effect), each looked at `looks.count` times: false alarm shares."""
    control = simulate_arm(rng, simulations, looks, model)
    treatment = simulate_arm(rng, simulations, looks, model)
    results = []
    for metric in METRICS:
        fixed = fixed_horizon_p_values(control, treatment, metric) < alpha  # NaN: no alarm
        plain = first_declarations(control, treatment, metric, plain_stats, alpha=alpha, tau=tau)
        adjusted = first_declarations(control, treatment, metric, cuped_stats, alpha=alpha, tau=tau)
        results.append(
            FalseAlarms(
                metric=metric,
                simulations=simulations,
                looks=looks.count,
                sequential=_share(np.isfinite(plain)),
                sequential_cuped=_share(np.isfinite(adjusted)),
                fixed_horizon=_share(fixed.any(axis=1)),
                fixed_horizon_last_look=_share(fixed[:, -1]),
            )
        )
    return results


def planted_detection(
    rng: np.random.Generator, simulations: int, looks: Looks, lift: float, *,
    alpha: float = 0.05, tau: float = DEFAULT_TAU, model: ShopperModel = ShopperModel(),
) -> list[Detection]:  # fmt: skip
    """A treatment that lifts the propensity to buy by `lift`: shoppers per arm until the
    sequential test declares it, with and without CUPED."""
    control = simulate_arm(rng, simulations, looks, model)
    treatment = simulate_arm(rng, simulations, looks, model, lift)
    results = []
    for metric in METRICS:
        plain = first_declarations(control, treatment, metric, plain_stats, alpha=alpha, tau=tau)
        adjusted = first_declarations(control, treatment, metric, cuped_stats, alpha=alpha, tau=tau)
        results.append(
            Detection(
                metric=metric,
                lift=lift,
                simulations=simulations,
                horizon=looks.shoppers,
                median_without=_median_shoppers(plain),
                median_with=_median_shoppers(adjusted),
                found_without=_share(_found(plain)),
                found_with=_share(_found(adjusted)),
                variance_reduction=median_variance_reduction(control, treatment, metric),
            )
        )
    return results


def median_variance_reduction(control: ArmPaths, treatment: ArmPaths, metric: str) -> float:
    """CUPED's variance reduction at the last look, median over the simulations."""
    last = control.looks.count - 1
    reductions = [
        cuped_adjust(
            {"t": cuped_sums(treatment, metric, s, last), "c": cuped_sums(control, metric, s, last)}
        ).variance_reduction
        for s in range(control.simulations)
    ]
    return float(np.median(reductions))


def srm_detection(
    rng: np.random.Generator, simulations: int, loss: float, *, days: int = 28,
    daily_shoppers: int = 1_000, threshold: float = 0.001,
) -> SrmDetection:  # fmt: skip
    """Experiments split 50/50 whose treatment loses `loss` of its shoppers before they are
    logged: the share that sample_ratio_check flags, overall and on some day."""
    arrivals = rng.poisson(daily_shoppers, (simulations, days))
    treated = rng.binomial(arrivals, 0.5)
    kept = rng.binomial(treated, 1 - loss)
    control = arrivals - treated
    dates = [FIRST_DAY + timedelta(days=day) for day in range(days)]
    flagged = overall = any_day = 0
    for simulation in range(simulations):
        exposures = {
            dates[day]: {
                "control": int(control[simulation, day]),
                "treatment": int(kept[simulation, day]),
            }
            for day in range(days)
        }
        result = sample_ratio_check(
            exposures, {"control": 0.5, "treatment": 0.5}, threshold=threshold
        )
        flagged += result.flagged
        overall += result.overall.flagged
        any_day += any(day.test.flagged for day in result.days)
    return SrmDetection(
        loss=loss, simulations=simulations, exposures=float((control + kept).sum(axis=1).mean()),
        flagged=flagged / simulations, overall_flagged=overall / simulations,
        any_day_flagged=any_day / simulations,
    )  # fmt: skip


def _share(flags: np.ndarray) -> float:
    return float(np.mean(flags)) if flags.size else 0.0


def _found(declared: np.ndarray) -> np.ndarray:
    """Declared in the right direction (a planted lift is positive) within the horizon."""
    return np.isfinite(declared) & (declared > 0)


def _median_shoppers(declared: np.ndarray) -> float:
    """Median shoppers per arm to a correct declaration; wrong-way or none count as never."""
    return float(np.median(np.where(_found(declared), declared, np.inf)))
