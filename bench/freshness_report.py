"""The bench_freshness report: tables, plain verdicts and PNG plots from the three scenarios."""

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aisle.conf import aisle_settings
from bench.flash_sale import (
    FlashSaleResult,
    servings_before,
    servings_in_flight,
)
from bench.freshness import KINDS, FreshnessResult
from bench.harness import LatencySummary
from bench.load import LoadResult
from bench.plots import IMAGE_DIR, line_plot
from bench.serving import WorldSummary
from bench.stream import ReplayStats
from bench.trending import Burst, event_score, half_life_note
from recs.evaluation.report import machine_description

CLICK_BUDGET_MS = 100.0
PLOTS = {
    "freshness": "freshness_click_latency.png",
    "flash_sale": "freshness_flash_sale_refill.png",
    "trending": "freshness_trending_rank.png",
}


@dataclass
class RunInfo:
    """How the run was set up, for the report's header."""

    command: str
    world: WorldSummary
    web_workers: int
    event_workers: int
    load_at_start: float
    replay_speed: float
    replay_max_gap_s: float
    views_per_s: float
    warm_up_s: float
    read_rate: float = 0.0
    load_at_end: float = 0.0
    replays: dict[str, ReplayStats] = field(default_factory=dict)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def _s(value: float | None, digits: int = 2) -> str:
    return "not reached" if value is None else f"{value:.{digits}f}"


def _row(label: str, summary: LatencySummary, unit: str = "ms") -> str:
    if unit == "s":
        values = (summary.p50_ms, summary.p95_ms, summary.p99_ms, summary.max_ms)
        cells = " | ".join(f"{v / 1000:.2f} s" for v in values)
    else:
        cells = " | ".join(
            f"{v:.1f}" for v in (summary.p50_ms, summary.p95_ms, summary.p99_ms, summary.max_ms)
        )
    return f"| {label} | {summary.count:,} | {cells} |"


def _replay_line(stats: ReplayStats | None) -> str:
    if stats is None:
        return ""
    return (
        f"Event stream meanwhile: {stats.purchases:,} replayed purchases (spanning "
        f"{stats.history_s / 3600:.1f} h of history, its quiet spells cut short) and {stats.views:,} anonymous views in {stats.requests:,} batches, "
        f"{stats.events_per_s:.0f} events/s, {stats.accepted:,} accepted, {stats.rejected} rejected, "
        f"statuses {dict(sorted(stats.statuses.items()))}; "
        f"POST p50 {stats.post_latency.p50_ms:.1f} ms, p99 {stats.post_latency.p99_ms:.1f} ms."
    )


# --- 1. Freshness


def freshness_section(result: FreshnessResult, load: LoadResult | None, info: RunInfo) -> list[str]:
    total = result.reflected()
    load_line = ""
    if load is not None:
        summary = load.summary()
        paced = f"paced at {info.read_rate:g} requests/s" if info.read_rate else "closed loop"
        load_line = (
            f"Background read load (`bench.load.background_load`, {paced}, the three tiers "
            f"and four placements of `bench_serving`'s sample): {summary['concurrency']} "
            f"clients, {summary['requests']:,} requests at {summary['throughput_rps']:.0f}/s, p50 "
            f"{summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms, statuses "
            f"{summary['statuses']}, {summary['errors']} errors, "
            f"{load.tallies.get('fallback', 0):,} answers from the Redis-down fallback."
        )
    kinds = {kind: len(result.valid(kind)) for kind in KINDS}
    lines = [
        "### 1. Click to recommendations that reflect it",
        "",
        f"{len(result.valid())} trials one after the other ({kinds['content']} content, "
        f"{kinds['collaborative']} collaborative; {len(result.trials) - len(result.valid())} "
        "discarded because the answer already reflected the click before it). A content "
        "trial is a new anonymous session: one `click` makes it the session's first interaction. "
        "A collaborative trial is a real customer with 10+ interactions and a cached list. Each "
        "trial asks once, posts the click (`POST /api/v1/events`, write key), then polls "
        f"`GET /api/v1/recommendations?placement={result.placement}&limit={result.limit}` for that "
        f"shopper, sleeping {result.poll_interval_s * 1000:g} ms between polls (at most "
        f"{result.timeout_s:g} s), until the answer is of the expected tier and holds an item "
        'whose reason names the clicked product as viewed ("similar to X you viewed", '
        'content neighbours; "popular with shoppers who viewed X", collaborative neighbours). '
        "The answers are asked as deep as the API allows because the neighbours of one view "
        "enter a collaborative shopper's list below their own best items, not always within a "
        "page's first 8. Meanwhile a thread of the bench reads the shopper's `recently_viewed` straight from "
        "Redis every millisecond: that is when the click is in the feature store.",
        load_line,
        _replay_line(info.replays.get("freshness")),
        "",
        "| click to ... | trials | p50 | p95 | p99 | max |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            _row(f"reflecting answer received, {kind} tier (ms)", result.reflected(kind))
            for kind in KINDS
            if result.valid(kind)
        ),
        _row("reflecting answer received, all (ms)", total),
        _row("... that answer's request sent (ms)", result.reflected_sent()),
        _row("event in the online feature store (ms)", result.applied()),
        _row("the click's POST answered (202) (ms)", result.posts()),
        *(
            [
                _row(
                    "(`apply_event_batch` of one click in process, idle, no load) (ms)",
                    result.apply_in_process,
                )
            ]
            if result.apply_in_process
            else []
        ),
        _row("one poll, request to answer (ms)", result.polls()),
        _row(
            f"collaborative list `c:user:<id>` rewritten (re-score, debounce "
            f"{aisle_settings.RESCORE_DEBOUNCE_S:g} s)",
            result.rescored(),
            unit="s",
        ),
        "",
        f"Timed out (no reflecting answer within {result.timeout_s:g} s): "
        f"{result.timed_out()} (counted at {result.timeout_s:g} s above). Polls answered from "
        f"the Redis-down fallback: {result.fallback_polls()}. Collaborative lists not rewritten "
        f"within {result.rescore_wait_s:g} s: {result.not_rescored()}.",
        "",
        "What the two numbers mean: the first is what a shopper sees. The render path reads the "
        "shopper's online features (recently viewed, cart, interaction count) on every request "
        "and blends the neighbours of what they just touched, so an answer changes as soon as an "
        "events worker has applied the click; the time is the API's queueing, the worker "
        "picking up the batch and applying it, plus the poll that sees it. The second is the "
        "collaborative model's re-score of the customer's precomputed list: scheduled by the "
        f"first event and run `RESCORE_DEBOUNCE_S` ({aisle_settings.RESCORE_DEBOUNCE_S:g} s) later, "
        "so a burst of clicks costs one re-score. It changes the deeper, model-ranked part of "
        "the list; the click already showed before it.",
        "",
        f"![Click to reflected answer, distribution](img/{PLOTS['freshness']})",
    ]
    return lines


def freshness_plot(result: FreshnessResult) -> Path:
    def cdf(values: Sequence[float]) -> list[tuple[float, float]]:
        ordered = sorted(values)
        return [(v * 1000, (i + 1) / len(ordered)) for i, v in enumerate(ordered)]

    series = {
        f"answer reflects it, {kind} tier": cdf(
            [
                t.reflected_s if t.reflected_s is not None else result.timeout_s
                for t in result.valid(kind)
            ]
        )
        for kind in KINDS
        if result.valid(kind)
    }
    series["event in the feature store"] = cdf(
        [t.applied_s for t in result.valid() if t.applied_s is not None]
    )
    return line_plot(
        IMAGE_DIR / PLOTS["freshness"], series,
        "Click to updated recommendations (CDF; budget p95 <= 100 ms)",
        "milliseconds after the click was sent", "fraction of trials", log_x=True,
    )  # fmt: skip


# --- 2. Flash sale


def flash_sale_section(result: FlashSaleResult, info: RunInfo) -> list[str]:
    rows = []
    for wave in result.waves:
        refill = wave.refill
        rows.append(
            f"| {wave.index} | {', '.join(wave.skus)} | {wave.call_ms:.0f} | "
            f"{servings_before(result.served, wave):,} | {servings_in_flight(result.served, wave):,} | "
            f"{wave.lists:,} | {refill.count:,} | {refill.p50_ms / 1000:.2f} | "
            f"{refill.p95_ms / 1000:.2f} | {_s(wave.all_done_s)} | {len(wave.short_s):,} | "
            f"{wave.not_rewritten:,} |"
        )
    refilled = [s for wave in result.waves for s in wave.refilled_s]
    overall = LatencySummary.of(refilled)
    done = [w.all_done_s for w in result.waves]
    total = "not reached" if any(d is None for d in done) else f"{max(done, default=0):.2f} s"
    latency = result.latency
    sold = sum(len(w.skus) for w in result.waves)
    return [
        "### 2. Flash sale: top sellers sold out in waves while shoppers read",
        "",
        f"{result.clients} reader clients (child processes, one request in flight each) loaded "
        f"{result.pages} pages in turn: product pages (`placement=product_detail`) of the top "
        "sellers' collaborative neighbours, whose answers hold the top sellers, and home pages "
        "of anonymous visitors and of customers. Each kept, per answer, when its request was "
        f"sent and the SKUs it held. {len(result.waves)} waves sold out the {sold} best sellers "
        "of the imported history, best first, through the admin's code path "
        "(`merch.services.catalog.mark_out_of_stock`, what the *Mark out of stock* action calls) in the "
        f"bench process. {len(result.served):,} answers, p50 {latency.p50_ms:.1f} ms, p99 "
        f"{latency.p99_ms:.1f} ms, statuses {result.statuses}.",
        _replay_line(info.replays.get("flash_sale")),
        "",
        "| wave | SKUs | stock-out call ms | answers holding them before | answers racing the "
        "commit | lists left short | refilled | refill p50 s | p95 s | all lists s | rewritten, "
        "nothing more to add | not rewritten |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"**Servings of a sold-out product in answers to requests sent after its stock-out "
        f"committed: {len(result.violations)}** (of {result.answers_after_first_commit:,} "
        "answers sent after the first commit). Answers racing the commit were sent before "
        "`mark_out_of_stock` returned and answered after it was called; they are allowed.",
        "",
        f"Refill (all waves): {overall.count:,} lists regained their available length, p50 "
        f"{overall.p50_ms / 1000:.2f} s, p95 {overall.p95_ms / 1000:.2f} s, max "
        f"{overall.max_ms / 1000:.2f} s after the commit; every list of every wave rewritten "
        f"after: {total} (limit {result.refill_limit_s:g} s after the last wave). A list left "
        "short is one of the refreshed families (`c:user:`, `c:similar:cf:`, "
        "`c:similar:content:`, `c:fbt:`, `c:popular:`, `c:trending:`) holding a product of the "
        "wave, with fewer available products than its size (or than it held before, if it was "
        "shorter). It is refilled at the Redis write (seen through keyspace notifications, "
        "switched on in the bench's private Redis) after which it holds that many again. "
        '"Nothing more to add": rewritten by `recs.scoring.refresh_lists`, no longer than '
        "before, and still short: the learner ranks no more products for it (typical of "
        "bought-together lists).",
        "",
        "Rewrites of each wave's lists, first to last, after its commit: "
        + "; ".join(
            f"wave {w.index} {min([*w.refilled_s, *w.short_s], default=0):.1f}-"
            f"{max([*w.refilled_s, *w.short_s], default=0):.1f} s"
            for w in result.waves
        )
        + ". One scoring worker process runs the refreshes one after another (and the "
        "re-scores the event stream asks for in between), so a wave's lists wait for the "
        "previous wave's refresh to finish."
        + "".join(
            f" Wave {w.index}: {w.not_rewritten} lists never rewritten, e.g. "
            f"{', '.join(f'`{key}`' for key in w.not_rewritten_keys)}."
            for w in result.waves
            if w.not_rewritten
        ),
        "",
        f"![Lists refilled after each wave](img/{PLOTS['flash_sale']})",
    ]


def flash_sale_plot(result: FlashSaleResult) -> Path:
    series = {}
    for wave in result.waves:
        times = sorted([*wave.refilled_s, *wave.short_s])
        if wave.lists:
            series[f"wave {wave.index} ({wave.lists:,} lists)"] = [(0.0, 0.0)] + [
                (t, (i + 1) / wave.lists) for i, t in enumerate(times)
            ]
    return line_plot(
        IMAGE_DIR / PLOTS["flash_sale"], series,
        "Lists holding the sold-out products, rewritten full again",
        "seconds after the stock-out committed", "fraction of the wave's lists",
    )  # fmt: skip


# --- 3. Trending


def trending_section(bursts: Sequence[Burst], info: RunInfo, track_s: float) -> list[str]:
    rows = [
        f"| {b.size} | {b.sku} ({b.title}) | {event_score(b.size):g} | {b.score_10th:.1f} / "
        f"{b.score_50th:.1f} | {_s(b.to_top(50, 'live'))} | {_s(b.to_top(10, 'live'))} | "
        f"{_s(b.to_top(50, 'answer'))} | {_s(b.to_top(10, 'answer'))} | "
        f"{'-' if b.best('answer') is None else b.best('answer') + 1} |"
        for b in bursts
    ]
    return [
        "### 3. Trending: a burst of clicks on a cold product",
        "",
        "Each burst: that many `click` events, one per new anonymous shopper, posted in one "
        f"batch on a product in stock that no event had named before. Then, for {track_s:g} s: "
        "its rank in the feature store's live ranking `f:product:trending_score` (the sorted "
        'set the render path reads for "trending now"; asked every 2 ms) and its position in '
        "the answer of a placement serving strategy `trending` (asked every 20 ms; created with "
        "`merch.services.merchandising.save_placement`, no per-category cap, `limit=50`; the answer blends "
        "the live ranking with the trained `c:trending:all` and drops unavailable products). "
        f"Half-life (`TRENDING_HALF_LIFE_HOURS`): {half_life_note()}. Event weights: click "
        f"{aisle_settings.EVENT_WEIGHTS['click']:g}, purchase {aisle_settings.EVENT_WEIGHTS['purchase']:g}.",
        _replay_line(info.replays.get("trending")),
        "",
        "| burst (clicks) | product | its score | live score of the 10th / 50th | live top 50 s | "
        "live top 10 s | answer top 50 s | answer top 10 s | best position in answers |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Times are seconds from sending the burst. A product enters the live ranking when an "
        "events worker applies the batch, with the burst's whole score at once, so the time to "
        "a rank is the event pipeline's latency, while whether it gets there at all depends on "
        "the burst's score against the competition. The competition is what this run posted "
        "in the last minutes (replayed purchases, views, the clicks of section 1): the imported "
        "history is years older than the half-life lets a score live (the feature store drops "
        "scores below 2^-40 of an event), so a live ranking holds only recent events.",
        "",
        f"![Rank over time after each burst](img/{PLOTS['trending']})",
    ]


def trending_plot(bursts: Sequence[Burst]) -> Path:
    series = {}
    for b in bursts:
        series[f"{b.size} clicks: live ranking"] = [(t, r + 1) for t, r in b.live if r is not None]
        series[f"{b.size} clicks: trending answer"] = [
            (t, r + 1) for t, r in b.answer if r is not None
        ]
    return line_plot(
        IMAGE_DIR / PLOTS["trending"], series,
        "Rank of the burst's product (1 = top; absent until it ranks / beyond 50 in answers)",
        "seconds after the burst was sent", "rank", log_y=True, log_x=True,
    )  # fmt: skip


# --- The whole section


def goals(fresh: FreshnessResult | None, flash: FlashSaleResult | None,
          bursts: Sequence[Burst] | None) -> list[str]:  # fmt: skip
    lines = ["| goal | measured | result |", "|---|---|---|"]
    if fresh is not None:
        total = fresh.reflected()
        lines.append(
            f"| click -> updated recommendations p95 <= {CLICK_BUDGET_MS:g} ms | p95 "
            f"{total.p95_ms:.0f} ms to the answer (p50 {total.p50_ms:.0f}, p99 "
            f"{total.p99_ms:.0f}); in the feature store p95 {fresh.applied().p95_ms:.0f} ms | "
            f"{verdict(total.p95_ms <= CLICK_BUDGET_MS)} |"
        )
        rescored = fresh.rescored()
        lines.append(
            f"| collaborative list re-scored after events (no budget; debounce "
            f"{aisle_settings.RESCORE_DEBOUNCE_S:g} s) | p50 {rescored.p50_ms / 1000:.2f} s, p95 "
            f"{rescored.p95_ms / 1000:.2f} s, {fresh.not_rescored()} missed | "
            f"{'reported' if not fresh.not_rescored() else 'NOT all re-scored'} |"
        )
    if flash is not None:
        lines.append(
            f"| stock-out -> zero servings of that item after the commit | "
            f"{len(flash.violations)} servings after commit in {flash.answers_after_first_commit:,} "
            f"answers | {verdict(not flash.violations)} |"
        )
        done = [w.all_done_s for w in flash.waves]
        lines.append(
            "| lists holding sold-out products refilled in the background (no budget) | "
            + (
                f"all rewritten within {max(done):.1f} s of their wave"
                if done and all(d is not None for d in done)
                else f"some lists not rewritten within {flash.refill_limit_s:g} s"
            )
            + f" | {'reported' if done and all(d is not None for d in done) else 'NOT all refilled'} |"
        )
    if bursts:
        reached = ", ".join(
            f"{b.size} clicks: {_s(b.to_top(10, 'answer'))} / {_s(b.to_top(50, 'answer'))}"
            for b in bursts
        )
        lines.append(f"| burst on a cold product -> trending (no budget) | seconds to the answer's "
                     f"top 10 / top 50: {reached} | reported |")  # fmt: skip
    return lines


def build(info: RunInfo, fresh: FreshnessResult | None, load: LoadResult | None,
          flash: FlashSaleResult | None, bursts: Sequence[Burst] | None,
          track_s: float) -> str:  # fmt: skip
    world = info.world
    data = (
        f"the first {world.import_limit:,} rows of the shipped UCI Online Retail file"
        if world.import_limit
        else "the whole shipped UCI Online Retail file"
    )
    lines = [
        "## Freshness, flash sale and trending (`python manage.py bench_freshness`)",
        "",
        f"Machine: {machine_description()}. Date: {time.strftime('%Y-%m-%d')}.",
        f"Isolated world: private redis-server and scratch SQLite DB holding {data} "
        f"({world.products:,} products, {world.purchase_events:,} purchase events, "
        f"{world.customers:,} customers; import {world.import_seconds:.0f} s), trained in "
        f"{world.train_seconds:.0f} s ({world.candidate_lists:,} candidate lists). Servers on "
        f"loopback, all on the same {os.cpu_count()} cores as the load: gunicorn with "
        f"{info.web_workers} sync workers, a Celery worker on `events` ({info.event_workers} "
        "processes) and one on `scoring` (1 process), no beat (so nothing but the commit-time "
        "update keeps sold-out products out). Warm-up before measuring "
        f"({info.warm_up_s:.0f} s): one event applied, one list re-scored, one sell-out refresh "
        "run (each worker loads the serving models once, as a long-running one has). Event "
        "stream during every scenario: the shipped purchase history after the imported rows, "
        f"replayed through `POST /api/v1/events` at {info.replay_speed:g}x (quiet spells "
        f"longer than {info.replay_max_gap_s / 60:g} min of history cut to that; new event ids, "
        f"stamped now), plus {info.views_per_s:g} anonymous product views/s. 1-minute load "
        f"average {info.load_at_start:.2f} at the start and {info.load_at_end:.2f} at the end "
        "(the machine is shared: other work on it shows in every number here).",
        "",
    ]
    lines += [*goals(fresh, flash, bursts), ""]
    if fresh is not None:
        lines += [*freshness_section(fresh, load, info), ""]
    if flash is not None:
        lines += [*flash_sale_section(flash, info), ""]
    if bursts is not None:
        lines += [*trending_section(bursts, info, track_s), ""]
    lines.append(f"Command: `{info.command}`")
    return "\n".join(without_double_blanks(lines))


def without_double_blanks(lines: Sequence[str]) -> list[str]:
    """Drop a blank line that follows another (optional sentences left empty)."""
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return kept


def write_plots(fresh: FreshnessResult | None, flash: FlashSaleResult | None,
                bursts: Sequence[Burst] | None) -> list[Path]:  # fmt: skip
    paths = []
    if fresh is not None and fresh.valid():
        paths.append(freshness_plot(fresh))
    if flash is not None:
        paths.append(flash_sale_plot(flash))
    if bursts:
        paths.append(trending_plot(bursts))
    return paths
