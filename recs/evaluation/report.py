"""The offline evaluation report: one section of docs/QUALITY.md per data set, made from a run.

Every sentence about the data (event kinds, sizes, what was skipped and why) is computed from
the run, so a report on another shop's log describes that log.
"""

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from django.conf import settings

from recs.evaluation.offline import ModelResult, relative
from recs.evaluation.run import BASELINES, EvaluationRun
from recs.learners.base import TIERS, Interactions

GOALS = (("als", 1.10, "tuned implicit ALS"), ("popularity", 2.0, "tuned popularity"))
COVERAGE_GOAL = 0.30


def _day(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _cell(result: ModelResult, metric: str) -> str:
    value = result.coverage_at_10 if metric == "coverage@10" else result.overall[metric]
    spread = result.spread.get(metric, 0.0)
    return f"{value:.4f} ± {spread:.4f}" if result.seeds > 1 else f"{value:.4f}"


def data_notes(interactions: Interactions, run: EvaluationRun, catalog_source: str) -> list[str]:
    protocol = run.protocol
    kinds = interactions.kinds_present()
    span_days = (interactions.timestamps[-1] - interactions.timestamps[0]) / 86400
    test_items = set(protocol.test.test.items[np.unique(protocol.test.test.item_codes)])
    at_cut = {item.sku for item in protocol.test.catalog}
    unseen = len(test_items - at_cut)
    notes = [
        f"- {len(interactions):,} events by {len(np.unique(interactions.user_codes)):,} shoppers on "
        f"{len(np.unique(interactions.item_codes)):,} items over {span_days:,.1f} days; event kinds: "
        + ", ".join(
            f"{kind} {count:,}" for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1])
        )
        + ".",
        "- Orders: "
        + (
            "order ids present (bought-together uses baskets)."
            if interactions.has_order_ids
            else "no order ids (bought-together falls back to session co-occurrence)."
        )
        + " Sessions: "
        + (
            "given in the data."
            if interactions.has_session_ids
            else "none in the data; derived by a 30-minute inactivity gap."
        )
        + f" Catalog: {catalog_source}.",
        f"- Test period: the last {protocol.holdout_days:.2f} days, from {_day(protocol.test.cutoff)} "
        f"({len(protocol.test.test):,} events); validation: the {protocol.holdout_days:.2f} days "
        f"before it, from {_day(protocol.validation.cutoff)} ({len(protocol.validation.test):,} "
        f"events), with models fitted on the {len(protocol.validation.train):,} events before that.",
        f"- Catalog at the test cut: {len(protocol.test.catalog):,} products launched before it; "
        f"{unseen:,} of the {len(test_items):,} products touched in the test period first appeared "
        "after the cut, so no model may recommend them (they count as misses).",
        f"- Shoppers scored: {len(run.test_shoppers):,} in the test period and "
        f"{len(run.validation_shoppers):,} in the validation period (a seeded sample when there are "
        "more than --max-shoppers).",
    ]
    if not any(k in kinds for k in ("view", "click")):
        notes.append(
            "- No views or clicks in the data: the render path's session re-rank (neighbours of "
            "what a shopper just viewed) has nothing to work with here and is judged on nothing."
        )
    failed = [r for r in run.results if r.failed]
    for r in failed:
        notes.append(f"- `{r.name}` could not be evaluated and was skipped: {r.failed}")
    if run.served and run.served.failed:
        notes.append(f"- The served pipeline could not be replayed: {run.served.failed}")
    return notes


def quality_section(
    interactions: Interactions,
    run: EvaluationRun,
    *,
    title: str,
    source: str,
    catalog_source: str,
    command: str,
    machine: str,
) -> str:
    ok = [r for r in run.results if not r.failed]
    rows = sorted(ok, key=lambda r: -r.overall["recall@20"])
    served = run.served if run.served and not run.served.failed else None
    by_name = {r.name: r for r in ok}
    lines = [
        f"## {title}",
        "",
        f"Data: {source}. Command: `{command}`. Machine: {machine}. Date: "
        f"{time.strftime('%Y-%m-%d')}. Whole run: {run.seconds / 60:.1f} min, peak memory "
        f"{run.peak_memory_mib:,.0f} MiB.",
        "",
        *data_notes(interactions, run, catalog_source),
        "",
        f"Every learner, the baselines included, had the same budget of {run.budget} "
        "configurations on the validation split; the winner was refitted on everything before "
        "the test cut and scored once on the test period"
        + (
            f", over {run.seeds} seeds when stochastic (mean ± standard deviation)."
            if run.seeds > 1
            else "."
        ),
        "",
        "| model | recall@20 | ndcg@10 | recall@10 | hitrate@10 | coverage@10 | seeds | fit s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    shown = ([served] if served else []) + rows
    for r in shown:
        label = {"served": "**served pipeline** (render path replayed)"}.get(r.name, f"`{r.name}`")
        if r.name in BASELINES:
            label += f" (baseline: {BASELINES[r.name]})"
        lines.append(
            f"| {label} | "
            + " | ".join(
                _cell(r, m)
                for m in ("recall@20", "ndcg@10", "recall@10", "hitrate@10", "coverage@10")
            )
            + f" | {r.seeds} | {'—' if r.name == 'served' else f'{r.fit_seconds:.1f}'} |"
        )
    if run.served_default and served:
        d = run.served_default
        lines.append(
            f"| served pipeline, blend table untuned (defaults) | {_cell(d, 'recall@20')} | "
            f"{_cell(d, 'ndcg@10')} | {_cell(d, 'recall@10')} | {_cell(d, 'hitrate@10')} | "
            f"{_cell(d, 'coverage@10')} | {d.seeds} | |"
        )
    for r in run.results:
        if r.failed:
            lines.append(f"| `{r.name}` | failed: {r.failed} | | | | | | |")
    tiers = [name for name, _, _ in TIERS]
    users = (served or (rows[0] if rows else ModelResult("none"))).users_by_tier
    lines += [
        "",
        f"Recall@20 per tier of shopper (events before the cut: {', '.join(tiers)}):",
        "",
        "| model | " + " | ".join(f"{t} ({users.get(t, 0):,} shoppers)" for t in tiers) + " |",
        "|---|" + "---:|" * len(tiers),
    ]
    for r in shown:
        lines.append(
            f"| {r.name} | "
            + " | ".join(f"{r.by_tier.get(t, {}).get('recall@20', 0):.4f}" for t in tiers)
            + " |"
        )
    lines += ["", "Goals (the served pipeline, as shoppers would get it):", ""]
    if served is None:
        lines.append("- Not judged: the served pipeline could not be replayed.")
    else:
        for key, goal, label in GOALS:
            base = by_name.get(key)
            if base is None:
                lines.append(f"- vs {label}: the baseline did not run.")
                continue
            ratio = relative(served.overall["recall@20"], base.overall["recall@20"])
            lines.append(
                f"- Recall@20 vs {label}: {ratio:.2f}x (goal >= {goal:.2f}x): "
                + ("met." if ratio >= goal else "**NOT met**.")
            )
        shoppers = served.users_by_tier.get("all", 0)
        ceiling = min(1.0, shoppers * 10 / max(len(run.protocol.test.catalog), 1))
        lines.append(
            f"- Catalog coverage@10: {served.coverage_at_10:.1%} (goal >= {COVERAGE_GOAL:.0%}): "
            + ("met." if served.coverage_at_10 >= COVERAGE_GOAL else "**NOT met**.")
            + (
                f" {shoppers:,} scored shoppers x 10 slots can show at most {ceiling:.1%} of "
                f"the {len(run.protocol.test.catalog):,} products."
                if ceiling < 1
                else ""
            )
        )
    lines += ["", "Chosen on the validation split (validation Recall@20 of the winner):", ""]
    for name, tuned in run.tuned.items():
        params = {k: v for k, v in tuned.params.items() if k not in ("component_params",)}
        lines.append(
            f"- `{name}`: {_short(params)} (validation {tuned.validation.overall.get('recall@20', 0):.4f}, "
            f"{len(tuned.trials) or 1} configurations)"
        )
    if run.blend:
        lines.append(f"- served blend table (per tier: source weights): {_short(run.blend)}")
    return "\n".join(lines) + "\n"


def _short(value) -> str:
    text = repr(value)
    text = re.sub(r"(\d+\.\d{3})\d+", r"\1", text)
    return text if len(text) < 600 else text[:600] + "..."


# What a new report starts with: the protocol, before any section.
REPORT_HEADER = Path(__file__).resolve().parent / "QUALITY_HEADER.md"


def add_report_arguments(parser) -> None:
    """--name and --output, as every command that writes a section of the report takes them."""
    parser.add_argument("--name", help="the report section's title (default: the file's name)")
    parser.add_argument(
        "--output", type=Path, default=Path(settings.BASE_DIR) / "docs" / "QUALITY.md"
    )


def write_section(path: Path, title: str, section: str) -> None:
    """Replace the section with this title in the report (or add it), keeping the others."""
    name = "".join(c if c.isalnum() else "-" for c in title.lower())
    begin, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    text = path.read_text() if path.exists() else REPORT_HEADER.read_text()
    block = f"{begin}\n{section}{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def machine_description() -> str:
    cores = os.cpu_count()
    try:
        with open("/proc/meminfo") as meminfo:
            total_kb = int(meminfo.readline().split()[1])
        memory = f"{total_kb / 1024 / 1024:.0f} GiB"
    except OSError:
        memory = "unknown"
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True
    ).stdout.split()[2]
    import django

    return (
        f"{cores} cores, {memory} RAM; Python {sys.version.split()[0]}, Django {django.get_version()}, "
        f"Redis {redis_version.removeprefix('v=')}, database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
    )
