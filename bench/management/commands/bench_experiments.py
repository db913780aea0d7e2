"""manage.py bench_experiments: the experiment statistics on simulated tests with a known truth.

A/A false alarms of the sequential test against the fixed-horizon tests checked at every look,
the sample-ratio check on a planted loss of shoppers, and how much sooner CUPED lets the
sequential test find a planted effect. Pure computation (recs.experiments.stats_simulation):
no servers, no database. Writes its section of docs/EXPERIMENTS.md. A benchmark, not a test.
"""

import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bench.harness import command_line, write_report_section
from recs.experiments import stats_simulation as simulation
from recs.experiments.sequential import DEFAULT_TAU
from recs.experiments.srm import SRM_THRESHOLD

REPORT = Path(settings.BASE_DIR) / "docs" / "EXPERIMENTS.md"
SECTION = "bench_experiments"
ALPHA = 0.05


@dataclass(frozen=True)
class BenchSizes:
    simulations: int = 200
    shoppers: int = 10_000  # per arm, A/A experiments
    planted_shoppers: int = 200_000  # per arm, planted effect
    looks: int = 100
    srm_days: int = 28
    srm_daily_shoppers: int = 1_000

    def looks_up_to(self, shoppers: int) -> simulation.Looks:
        every = shoppers // self.looks
        return simulation.Looks(every * self.looks, every)


@dataclass(frozen=True)
class BenchResults:
    sizes: BenchSizes
    lift: float
    loss: float
    false_alarms: list[simulation.FalseAlarms]
    srm_planted: simulation.SrmDetection
    srm_correct: simulation.SrmDetection
    detections: list[simulation.Detection]
    seconds: float


def run_benchmark(sizes: BenchSizes, *, seed: int, lift: float, loss: float) -> BenchResults:
    """All three simulations, each from its own stream of the seed (so each is reproducible)."""
    started = time.perf_counter()
    streams = [np.random.default_rng([seed, part]) for part in range(4)]
    false_alarms = simulation.aa_false_alarms(
        streams[0], sizes.simulations, sizes.looks_up_to(sizes.shoppers), alpha=ALPHA
    )
    srm = {"days": sizes.srm_days, "daily_shoppers": sizes.srm_daily_shoppers}
    srm_planted = simulation.srm_detection(streams[1], sizes.simulations, loss, **srm)
    srm_correct = simulation.srm_detection(streams[2], sizes.simulations, 0.0, **srm)
    detections = simulation.planted_detection(
        streams[3], sizes.simulations, sizes.looks_up_to(sizes.planted_shoppers), lift, alpha=ALPHA
    )
    return BenchResults(
        sizes, lift, loss, false_alarms, srm_planted, srm_correct, detections,
        time.perf_counter() - started,
    )  # fmt: skip


def noise_allowance(simulations: int, rate: float = ALPHA) -> float:
    """Two standard errors of a share measured over `simulations` runs."""
    return 2 * math.sqrt(rate * (1 - rate) / simulations)


def percent(share: float) -> str:
    return f"{100 * share:.1f} %"


def shoppers(count: float, horizon: int) -> str:
    return f"{count:,.0f}" if math.isfinite(count) else f"> {horizon:,}"


def aa_lines(results: BenchResults) -> list[str]:
    sizes = results.sizes
    looks = sizes.looks_up_to(sizes.shoppers)
    allowed = ALPHA + noise_allowance(sizes.simulations)
    worst = max(max(f.sequential, f.sequential_cuped) for f in results.false_alarms)
    lines = [
        "### A/A tests: false alarms when looking at every look",
        "",
        f"{sizes.simulations} A/A experiments per metric (no difference between the arms), looked "
        f"at every {looks.every:,} shoppers per arm up to {looks.shoppers:,} ({looks.count} "
        f"looks); alpha = {ALPHA:g}. A false alarm is any look that calls the difference "
        "significant.",
        "",
        "| metric | sequential (mSPRT) | sequential on CUPED | fixed-horizon test at every look | fixed-horizon test once, at the end |",
        "|---|---:|---:|---:|---:|",
    ]
    for f in results.false_alarms:
        test = "z-test" if f.metric == "conversion" else "Welch t-test"
        lines.append(
            f"| {f.metric} ({test}) | {percent(f.sequential)} | {percent(f.sequential_cuped)} | "
            f"{percent(f.fixed_horizon)} | {percent(f.fixed_horizon_last_look)} |"
        )
    lines += [
        "",
        f"Sequential false alarm rate <= alpha + 2 standard errors of the simulation "
        f"({percent(allowed)}): {'met' if worst <= allowed else 'NOT met'} "
        f"(worst {percent(worst)}).",
    ]
    return lines


def srm_lines(results: BenchResults) -> list[str]:
    sizes = results.sizes
    lines = [
        "### Sample ratio mismatch",
        "",
        f"{sizes.simulations} experiments split 50/50 over {sizes.srm_days} days of about "
        f"{sizes.srm_daily_shoppers:,} shoppers a day; chi-square test flagged at "
        f"p < {SRM_THRESHOLD:g}, over the whole experiment and for each day alone. The "
        "dashboard flags a mismatch when the whole experiment's test does, or one day's falls "
        "below the threshold divided by the days tested.",
        "",
        "| exposures logged | mean exposures | flagged by the dashboard | whole experiment "
        "| some day alone (at the undivided threshold) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, srm in [
        (f"treatment loses {percent(results.loss)} of its shoppers", results.srm_planted),
        ("all shoppers logged (correct ratio)", results.srm_correct),
    ]:
        lines.append(
            f"| {label} | {srm.exposures:,.0f} | {percent(srm.flagged)} | "
            f"{percent(srm.overall_flagged)} | {percent(srm.any_day_flagged)} |"
        )
    return lines


def cuped_lines(results: BenchResults) -> list[str]:
    sizes = results.sizes
    looks = sizes.looks_up_to(sizes.planted_shoppers)
    lines = [
        "### CUPED: time to find a planted effect",
        "",
        f"{sizes.simulations} experiments whose treatment makes {percent(results.lift)} more "
        "shoppers buy (conversion and revenue per shopper both up by that much), looked at every "
        f"{looks.every:,} shoppers per arm up to {looks.shoppers:,}. Shoppers per arm until the "
        "sequential test first declares the lift (median over the simulations), on the plain "
        "means and on the CUPED-adjusted ones (covariate: the shopper's orders, or spend, in the "
        "pre-experiment period).",
        "",
        "| metric | variance reduction | median shoppers per arm, plain | with CUPED | found sooner | found by the horizon, plain / CUPED |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for d in results.detections:
        speedup = f"{d.speedup:.2f} x" if d.speedup is not None else "n/a"
        lines.append(
            f"| {d.metric} | {percent(d.variance_reduction)} | "
            f"{shoppers(d.median_without, d.horizon)} | {shoppers(d.median_with, d.horizon)} | "
            f"{speedup} | {percent(d.found_without)} / {percent(d.found_with)} |"
        )
    return lines


def report_markdown(results: BenchResults, command: str) -> str:
    model = simulation.ShopperModel()
    lines = [
        "## Sequential tests, SRM and CUPED (`python manage.py bench_experiments`)",
        "",
        f"Machine: {machine_summary()}. Date: {time.strftime('%Y-%m-%d')}. "
        f"Run time: {results.seconds:.0f} s.",
        "",
        "Simulated shoppers with a known truth (`recs.experiments.stats_simulation`): a purchase "
        f"propensity with mean {model.conversion:g} spread lognormally (sigma "
        f"{model.propensity_sigma:g}) between shoppers, a lognormal typical basket "
        f"(mean {model.basket_mean:g}, sigma {model.basket_sigma:g}; each order sigma "
        f"{model.order_sigma:g}: heavy-tailed revenue), and a pre-experiment period "
        f"{model.pre_period_windows:g} times as long as the experiment's window. The tests are "
        f"the product's own functions, called look by look; mixing tau = {DEFAULT_TAU:g} pooled "
        "standard deviations (`recs.experiments.sequential.DEFAULT_TAU`).",
        "",
        *aa_lines(results),
        "",
        *srm_lines(results),
        "",
        *cuped_lines(results),
        "",
        "Reading the numbers: checking a fixed-horizon p-value every day turns a 5 % error rate "
        "into a much larger one, while the sequential test keeps it under alpha however often "
        "the dashboard is opened; the price is a wider interval, which CUPED buys back in "
        "proportion to how well past behaviour predicts the outcome (sample size scales with "
        "1 - variance reduction).",
        "",
        f"Command: `{command}`",
    ]
    return "\n".join(lines)


def machine_summary() -> str:
    return (
        f"{os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}"
    )


class Command(BaseCommand):
    help = (
        "Simulate experiments with a known truth: A/A false alarms of sequential against "
        "fixed-horizon tests, sample-ratio-mismatch detection, and CUPED's speed-up; writes a "
        "section of docs/EXPERIMENTS.md."
    )

    def add_arguments(self, parser):
        defaults = BenchSizes()
        parser.add_argument("--simulations", type=int, default=defaults.simulations)
        parser.add_argument("--seed", type=int, default=16)
        parser.add_argument("--shoppers", type=int, default=defaults.shoppers,
                            help="shoppers per arm of the A/A experiments")  # fmt: skip
        parser.add_argument("--planted-shoppers", type=int, default=defaults.planted_shoppers,
                            help="shoppers per arm of the planted-effect experiments")  # fmt: skip
        parser.add_argument("--looks", type=int, default=defaults.looks,
                            help="looks per experiment, evenly spaced")  # fmt: skip
        parser.add_argument("--lift", type=float, default=0.10,
                            help="planted relative lift of the propensity to buy")  # fmt: skip
        parser.add_argument("--loss", type=float, default=0.05,
                            help="share of the treatment's shoppers lost in the SRM runs")  # fmt: skip
        parser.add_argument("--no-report", action="store_true", help="do not write the docs")

    def handle(self, *args, simulations, seed, shoppers, planted_shoppers, looks, lift, loss,
               no_report, **options):  # fmt: skip
        if simulations < 1 or looks < 1 or min(shoppers, planted_shoppers) < 2 * looks:
            raise CommandError("need --simulations >= 1 and at least 2 shoppers per arm per look")
        if not 0 <= loss < 1 or lift <= -1:
            raise CommandError("--loss must be in [0, 1) and --lift above -1")
        sizes = BenchSizes(simulations, shoppers, planted_shoppers, looks)
        results = run_benchmark(sizes, seed=seed, lift=lift, loss=loss)
        body = report_markdown(results, command_line("bench_experiments"))
        self.stdout.write(body)
        if not no_report:
            write_report_section(REPORT, SECTION, body)
            self.stdout.write(f"Report written to {REPORT.relative_to(settings.BASE_DIR)}")
