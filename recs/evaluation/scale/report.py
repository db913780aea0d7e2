"""A training-at-scale run as a section of docs/QUALITY.md, judged against the budgets."""

import time

from recs.evaluation.scale.measures import PrecomputeMeasure, ScaleRun
from recs.training.precompute import PRECOMPUTE_CHUNK

# (catalog items from, total fit seconds, peak MiB): the stricter budget that applies wins.
BUDGETS = ((1_000_000, 20 * 60, 8 * 1024), (200_000, 5 * 60, 3 * 1024))


def budget_for(catalog_items: int) -> tuple[int, float, float] | None:
    """(catalog size it applies from, fit seconds, peak MiB), or None below 200k items."""
    return next((b for b in BUDGETS if catalog_items >= b[0]), None)


def budget_lines(run: ScaleRun) -> list[str]:
    """Whether the fits met the budget for the catalog's size (a failed fit never does)."""
    budget = budget_for(run.load.catalog_items)
    if budget is None:
        return [
            f"- Budgets: none at {run.load.catalog_items:,} catalog items (they start at "
            f"{BUDGETS[-1][0]:,}); numbers reported only."
        ]
    items, seconds, peak = budget
    failed = ", ".join(f"`{f.key}`" for f in run.failed)
    time_met = run.fit_seconds <= seconds and not failed
    peak_met = run.fit_phase_peak_mib <= peak and not failed
    suffix = f" ({failed} failed, so not every learner fitted)" if failed else ""
    return [
        f"- Budget at >= {items:,} catalog items, all learners fitted one after another in one "
        "process:",
        f"  - fit time {run.fit_seconds / 60:,.1f} min (goal <= {seconds / 60:.0f} min): "
        f"{'met' if time_met else 'NOT met'}{suffix}.",
        f"  - peak memory {run.fit_phase_peak_mib / 1024:,.2f} GiB after loading and fitting "
        f"(goal <= {peak / 1024:.0f} GiB): {'met' if peak_met else 'NOT met'}{suffix}.",
    ]


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _artifact_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def fit_table(run: ScaleRun) -> list[str]:
    """One row per learner: the learner to look at is the one that raised the peak most."""
    lines = [
        "| learner | fit s | peak RSS after MiB | raised the peak by MiB | RSS now MiB "
        "| artifact MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for f in run.fits:
        if f.failed:
            lines.append(
                f"| `{f.key}` | failed after {f.seconds:,.2f} s: {f.failed} | {_mib(f.peak_mib)} "
                f"| {_mib(f.raised_peak_mib)} | {_mib(f.rss_mib)} | - |"
            )
            continue
        lines.append(
            f"| `{f.key}` | {f.seconds:,.2f} | {_mib(f.peak_mib)} | {_mib(f.raised_peak_mib)} "
            f"| {_mib(f.rss_mib)} | {_artifact_cell(f.artifact_mib)} |"
        )
    return lines


def precompute_lines(p: PrecomputeMeasure) -> list[str]:
    """The lists per kind, with what was extrapolated from a sample said so."""
    how = (
        f"a seeded sample of at most {p.sample_size:,} users and {p.sample_size:,} items "
        f"(the full run, extrapolated from {p.probe_calls} probe calls per kind, would take "
        f"{p.probe_estimate_s / 60:,.1f} min, over the {p.limit_s / 60:g} min a bench may spend)"
        if p.sampled
        else f"every list (estimated at {p.probe_estimate_s / 60:,.1f} min from the probe calls)"
    )
    lines = [
        f"Precompute (the lists `precompute_candidates` would write, nothing written to Redis): "
        f"{p.active_users:,} shoppers and {p.active_items:,} items active in the last "
        f"{p.active_days:g} days; computed {how}. Took {p.seconds:,.1f} s; peak RSS "
        f"{p.peak_before_mib:,.0f} -> {p.peak_after_mib:,.0f} MiB (+"
        f"{p.peak_after_mib - p.peak_before_mib:,.0f}), RSS {p.rss_before_mib:,.0f} -> "
        f"{p.rss_after_mib:,.0f} MiB.",
        "",
        "| lists | learner | lists written | computed here | s | ms per list | entries "
        "| full run s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in p.lists:
        if m.failed:
            lines.append(f"| {m.role} | `{m.learner}` | failed: {m.failed} | | | | | |")
            continue
        mark = " (extrapolated)" if m.sampled else ""
        entries = f"{m.full_entries:,.0f}{mark}"
        lines.append(
            f"| {m.role} | `{m.learner}` | {m.population:,} | {m.computed:,} | {m.seconds:,.1f} "
            f"| {m.seconds_per_list * 1000:,.2f} | {entries} | {m.full_seconds:,.1f}{mark} |"
        )
    total_mark = " (extrapolated)" if p.sampled else " (measured)"
    lines += [
        "",
        f"Precompute total: {p.total_lists:,} lists, "
        f"{sum(m.full_entries for m in p.lists if not m.failed):,.0f} entries, "
        f"{p.full_seconds / 60:,.1f} min for every list{total_mark}.",
    ]
    users = next((m for m in p.lists if m.role == "user" and not m.failed), None)
    if users and users.computed:
        lines.append(
            f"- Memory of the lists themselves: the pipeline computes and writes "
            f"{PRECOMPUTE_CHUNK:,} shoppers' lists at a time, about "
            f"{users.held_mib / max(users.population, 1) * min(PRECOMPUTE_CHUNK, users.population):,.0f} MiB "
            f"held (from the RSS growth while a batch of {users.held_batch:,} lists was held); "
            "item lists likewise."
        )
    for role, why in p.skipped.items():
        lines.append(f"- {role} lists skipped: {why}.")
    return lines


def scale_section(
    run: ScaleRun, *, title: str, source: str, command: str, machine: str, busy_note: str = ""
) -> str:
    """The whole section: data, load, fits, budget and precompute, with how memory is read."""
    loaded = run.load
    kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(loaded.kinds.items(), key=lambda kv: -kv[1]))
    biggest = max((f for f in run.fits), key=lambda f: f.raised_peak_mib, default=None)
    lines = [
        f"## {title}",
        "",
        f"Data: {source}: {loaded.events:,} events by {loaded.users:,} shoppers on "
        f"{loaded.items_with_events:,} items, catalog {loaded.catalog_items:,} items; event "
        f"kinds: {kinds}.",
        "",
        f"Command: `{command}`. Machine: {machine}. Date: {time.strftime('%Y-%m-%d')}.",
        "",
        "Memory is measured inside the process: peak = `ru_maxrss` (what `/usr/bin/time -v` "
        'reports as "Maximum resident set size"), RSS now = /proc/self/statm. Paste the '
        "`/usr/bin/time -v` line of the run below this section as well.",
        "",
    ]
    if busy_note:
        lines += [busy_note, ""]
    lines += [
        f"Load: {loaded.seconds:,.2f} s; peak RSS after it {loaded.peak_mib:,.0f} MiB, RSS "
        f"{loaded.rss_mib:,.0f} MiB.",
        "",
        "Every learner with its default parameters and the project's event weights, on all the "
        "data and the whole catalog, one after another in this process (BLAS limited to one "
        "thread), each kept after its fit as the pipeline keeps them; the hybrid adopts its "
        "fitted components (no second fit), so its artifact includes them. Artifact = the "
        "learner pickled with joblib, uncompressed.",
        "",
        *fit_table(run),
        "",
        f"- All fits: {run.fit_seconds:,.1f} s ({run.fit_seconds / 60:,.1f} min); peak RSS after "
        f"loading and fitting {run.fit_phase_peak_mib:,.0f} MiB"
        + (
            f" (`{biggest.key}` raised it most, by {biggest.raised_peak_mib:,.0f} MiB)"
            if biggest and biggest.raised_peak_mib > 0
            else ""
        )
        + f"; whole run {run.seconds / 60:,.1f} min, overall peak {run.peak_mib:,.0f} MiB.",
    ]
    saves = [
        f for f in run.fits if f.peak_after_save_mib and f.peak_after_save_mib > f.peak_mib + 1
    ]
    for f in saves:
        lines.append(
            f"- Pickling `{f.key}` raised the peak to {f.peak_after_save_mib:,.0f} MiB "
            "(counted in the next learner's peak, not its own fit)."
        )
    for f in run.fits:
        if f.note:
            lines.append(f"- `{f.key}`: {f.note}.")
    lines += budget_lines(run)
    if run.precompute:
        lines += ["", *precompute_lines(run.precompute)]
    return "\n".join(lines) + "\n"
