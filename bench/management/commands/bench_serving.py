"""manage.py bench_serving: latency of the render path (recommend, template tag, API) on a cache hit.

Runs in an isolated world (private Redis, scratch SQLite DB) filled with the shipped data set and
trained serving models, with gunicorn on loopback; prints a report and writes it to
docs/PERFORMANCE.md. A benchmark, not a test.
"""

import os
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from aisle.conf import aisle_settings
from bench import serving as bench
from bench.harness import (
    LatencySummary,
    command_line,
    gunicorn_server,
    run_in_isolated_world,
    write_report_section,
)
from recs.evaluation.report import machine_description
from recs.serving.blend_table import TIERS

REPORT = Path(settings.BASE_DIR) / "docs" / "PERFORMANCE.md"
# The goals of issue 14 ("render path at cache speed").
RECOMMEND_P50_MS, RECOMMEND_P99_MS = 0.5, 1.5
API_P99_MS = 5.0
API_BARE_P50_RATIO = 2.0
TAG_ADDED_P99_MS = 1.0
ROUND_TRIPS_PER_REQUEST = 1


def verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "NOT met"


def redis_summary(samples: bench.Samples) -> str:
    """'1.00 round trips per request (max 1); 3.00 commands per request: evalsha 1.00, ...'."""
    text = f"{samples.round_trips():.2f} round trips per request (max {samples.max_round_trips})"
    commands = samples.commands_per_request
    if commands is not None:
        text += f"; {commands:.2f} commands per request: "
        text += bench.describe_commands(samples.top_commands(5))
    return text


class Command(BaseCommand):
    help = (
        "Benchmark the render path on a cache hit: recommend(), template tag, API; writes a report."
    )

    def add_arguments(self, parser):
        parser.add_argument("--inner", action="store_true", help="(internal) run inside the world")
        parser.add_argument("--requests", type=int, default=5000, help="timed requests per row")
        parser.add_argument("--warmup", type=int, default=500, help="untimed requests first")
        parser.add_argument("--contexts-per-tier", type=int, default=200)
        parser.add_argument("--import-limit", type=int, default=150000,
                            help="rows of the shipped data set to import (0: all)")  # fmt: skip
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
        parser.add_argument("--max-seconds", type=float, default=120.0,
                            help="time limit of each measurement")  # fmt: skip
        parser.add_argument("--no-report", action="store_true", help="do not write the docs")

    def handle(self, *args, inner, **options):
        if not inner:
            # The load client stands for many shoppers behind one proxy: each sends its own
            # X-Forwarded-For, throttled on its own as a deployment behind a proxy would be.
            run_in_isolated_world("bench_serving", {"TRUSTED_PROXY_COUNT": "1"})
            return
        self.command = command_line("bench_serving")
        self.run_benchmark(**options)

    def say(self, text: str = "") -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def row(self, label: str, summary: LatencySummary, samples=None) -> None:
        gc_note = ""
        if samples is not None:
            collections, longest_ms = samples.full_collections
            gc_note = f"  (full GCs {collections}, longest {longest_ms:.1f} ms)"
        self.say(
            f"{label:<44} n={summary.count:>6,}  p50 {summary.p50_ms:7.3f}  p95 {summary.p95_ms:7.3f}"
            f"  p99 {summary.p99_ms:7.3f}  max {summary.max_ms:8.3f} ms{gc_note}"
        )

    def run_benchmark(self, requests, warmup, contexts_per_tier, import_limit, web_workers,
                      max_seconds, no_report, **_):  # fmt: skip
        limits = {"requests": requests, "warmup": warmup, "max_seconds": max_seconds}
        counted = {**limits, "redis_stats": bench.redis_stats_client()}
        self.load_at_start = os.getloadavg()[0]
        self.say(f"Machine: {machine_description()}")
        self.say(f"Importing the shipped data set ({import_limit or 'all'} rows) and training ...")
        world = bench.load_world(import_limit or None)
        self.say(
            f"  {world.products:,} products, {world.purchase_events:,} purchase events, "
            f"{world.customers:,} customers; import {world.import_seconds:.0f} s, training "
            f"{world.train_seconds:.0f} s, {world.candidate_lists:,} candidate lists"
        )
        pool = bench.pool_from_world()
        contexts = bench.build_contexts(pool, contexts_per_tier)
        views = bench.replay_views(contexts)
        self.say(
            f"  {len(contexts)} contexts ({contexts_per_tier} per tier, placements "
            f"{', '.join(bench.PLACEMENTS)}), {views} view events replayed, "
            f"{len(pool.heavy_users):,} customers with cached lists to draw from"
        )

        rec = bench.measure_recommend(contexts, **counted)
        by_tier = {tier: rec.where(lambda o, t=tier: o.expected_tier == t) for tier in TIERS}
        for tier in TIERS:
            self.row(f"recommend(), {tier}", by_tier[tier])
        self.row("recommend(), all tiers", rec.summary, rec)
        self.say(
            f"  tier router disagreed with the sample {bench.tier_mismatches(rec)} times; "
            f"{bench.empty_answers(rec)} empty answers; DB queries {rec.queries}"
        )
        self.say(f"  Redis: {redis_summary(rec)}")

        tag = bench.measure_template_tag(contexts, **counted)
        self.row("page without the tag", tag.without_tag.summary)
        self.row("page with the tag + carousel", tag.with_tag.summary, tag.with_tag)
        self.row("added by the tag (paired difference)", tag.added)
        self.say(f"  Redis (page with the tag): {redis_summary(tag.with_tag)}")

        api = bench.measure_api_inprocess(contexts, **counted)
        self.row("bare DRF view, in process", api.bare.summary, api.bare)
        self.say(f"  Redis: {redis_summary(api.bare)}")
        self.row("API view, in process", api.api.summary, api.api)
        self.say(f"  Redis: {redis_summary(api.api)}")
        api_statuses = {a.status for a in api.api.outcomes}

        with gunicorn_server(workers=web_workers) as base_url:
            http = bench.measure_api_http(base_url, contexts, **limits)
        self.row(f"API over HTTP, gunicorn {web_workers} sync workers", http.latency)
        self.say(f"  statuses {dict(http.statuses)}; server closed the connection "
                 f"{http.closed_by_server:,} of {http.requests:,} times")  # fmt: skip

        down = bench.measure_redis_down(contexts, **counted)
        self.row("Redis down: recommend()", down.recommend.summary, down.recommend)
        self.row("Redis down: API view, in process", down.api.summary, down.api)
        self.say(
            f"  fallback answers {down.fallback_share:.1%} (API {down.api_fallback_share:.1%}); "
            f"API statuses {dict(down.api_statuses)}; DB queries {down.recommend.queries}; "
            f"Redis round trips per request {down.recommend.round_trips():.2f} (API "
            f"{down.api.round_trips():.2f}); commands reaching the bench's Redis per request "
            f"{down.recommend.commands_per_request or 0:.2f} "
            f"(API {down.api.commands_per_request or 0:.2f})"
        )

        self.load_at_end = os.getloadavg()[0]
        body = self.report(world, pool, contexts, views, rec, by_tier, tag, api, api_statuses,
                           http, down, web_workers)  # fmt: skip
        self.say()
        self.say(body)
        if not no_report:
            write_report_section(REPORT, "bench_serving", body)
            self.say(f"Report written to {REPORT.relative_to(settings.BASE_DIR)}")

    def report(self, world, pool, contexts, views, rec, by_tier, tag, api, api_statuses, http,
               down, web_workers) -> str:  # fmt: skip
        overall = rec.summary
        base = overall.p50_ms

        def line(label: str, summary: LatencySummary, queries: str = "", redis=None,
                 round_trips: float | None = None) -> str:  # fmt: skip
            """A table row; `redis` (Samples) fills the Redis columns, `round_trips` alone a
            subset's round trips (the server's commands are only counted per row)."""
            if redis is not None:
                round_trips = redis.round_trips()
            commands = redis.commands_per_request if redis is not None else None
            return (
                f"| {label} | {summary.count:,} | {summary.p50_ms:.3f} | {summary.p95_ms:.3f} | "
                f"{summary.p99_ms:.3f} | {summary.max_ms:.3f} | {bench.ratio(summary.p50_ms, base):.2f} | "
                f"{queries} | {'' if round_trips is None else f'{round_trips:.2f}'} | "
                f"{'' if commands is None else f'{commands:.2f}'} |"
            )

        def per_request(samples) -> str:
            return f"{samples.queries / max(len(samples.seconds), 1):.2f}"

        api_s, bare_s = api.api.summary, api.bare.summary
        api_ratio_p50 = bench.ratio(api_s.p50_ms, bare_s.p50_ms)
        api_ratio_p99 = bench.ratio(api_s.p99_ms, bare_s.p99_ms)
        worst_p50 = max(TIERS, key=lambda t: by_tier[t].p50_ms)
        worst_p99 = max(TIERS, key=lambda t: by_tier[t].p99_ms)
        recommend_ok = (
            by_tier[worst_p50].p50_ms <= RECOMMEND_P50_MS
            and by_tier[worst_p99].p99_ms <= RECOMMEND_P99_MS
        )
        round_trips_ok = (
            max(rec.max_round_trips, api.api.max_round_trips) <= ROUND_TRIPS_PER_REQUEST
        )
        data = (
            f"the first {world.import_limit:,} rows of the shipped UCI Online Retail file"
            if world.import_limit
            else "the whole shipped UCI Online Retail file"
        )
        redis_rows = (
            ("`recommend()`", rec),
            ("page with the tag", tag.with_tag),
            ("API in process", api.api),
            ("bare view", api.bare),
        )
        lines = [
            "## Render path on a cache hit (`python manage.py bench_serving`)",
            "",
            f"Machine: {machine_description()}. Date: {time.strftime('%Y-%m-%d')}.",
            f"Isolated world: private redis-server and scratch SQLite DB holding {data} "
            f"({world.products:,} products, {world.purchase_events:,} purchase events, "
            f"{world.customers:,} customers; import {world.import_seconds:.0f} s), trained with "
            f"`train_models({', '.join(bench.SERVING_LEARNERS)})` in {world.train_seconds:.0f} s, "
            f"which wrote {world.candidate_lists:,} candidate lists.",
            f"Sample: {len(contexts)} page contexts, {len(contexts) // len(TIERS)} per tier, over "
            f"the placements {', '.join(bench.PLACEMENTS)}: anonymous visitors (country from the "
            "data, device mix), sessions with 1-9 replayed views (content tier), and real "
            f"customers with 10+ purchases and a cached list, some with a few views "
            f"(collaborative; drawn from {len(pool.heavy_users):,}); {views} view events applied "
            "through `recs.features.apply_events`. Products and countries are drawn as often as "
            "they sell. Each row: warm-up first, then the contexts in turn; all rows in one run, "
            f"one after the other on the same {os.cpu_count()} cores; 1-minute load average "
            f"{self.load_at_start:.2f} at the start and {self.load_at_end:.2f} at the end (other "
            "work on the machine shows in the tails).",
            "",
            "| measurement | requests | p50 ms | p95 ms | p99 ms | max ms | p50 / recommend() p50 | DB queries per request | Redis round trips per request | Redis commands per request |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *(
                line(
                    f"`recommend()`, {tier} tier",
                    by_tier[tier],
                    round_trips=rec.round_trips(lambda o, t=tier: o.expected_tier == t),
                )
                for tier in TIERS
            ),
            line("`recommend()`, all tiers", overall, per_request(rec), rec),
            line("page template without the tag", tag.without_tag.summary, redis=tag.without_tag),
            line(
                "same page with `{% recommendations %}` + `{% recommendation_carousel %}`",
                tag.with_tag.summary,
                per_request(tag.with_tag),
                tag.with_tag,
            ),
            line("added by the tag (per-pair difference)", tag.added),
            line(
                "bare DRF view, constant JSON of the same size, in process",
                bare_s,
                per_request(api.bare),
                api.bare,
            ),
            line("API view, in process (server side)", api_s, per_request(api.api), api.api),
            line(f"API over HTTP, gunicorn {web_workers} sync workers, client side", http.latency),
            line(
                "Redis down: `recommend()` (fallback)",
                down.recommend.summary,
                per_request(down.recommend),
                down.recommend,
            ),
            line(
                "Redis down: API view, in process",
                down.api.summary,
                per_request(down.api),
                down.api,
            ),
            "",
            "Ratios (p50 / p99): "
            f"API / bare view {api_ratio_p50:.2f} / {api_ratio_p99:.2f}; "
            f"API in process / `recommend()` {bench.ratio(api_s.p50_ms, base):.2f} / "
            f"{bench.ratio(api_s.p99_ms, overall.p99_ms):.2f}; "
            f"HTTP client side / API in process {bench.ratio(http.latency.p50_ms, api_s.p50_ms):.2f} / "
            f"{bench.ratio(http.latency.p99_ms, api_s.p99_ms):.2f}; "
            f"page with tag / without {bench.ratio(tag.with_tag.summary.p50_ms, tag.without_tag.summary.p50_ms):.1f} / "
            f"{bench.ratio(tag.with_tag.summary.p99_ms, tag.without_tag.summary.p99_ms):.1f}; "
            f"Redis down / cache hit `recommend()` {bench.ratio(down.recommend.summary.p50_ms, base):.2f} / "
            f"{bench.ratio(down.recommend.summary.p99_ms, overall.p99_ms):.2f}.",
            "",
            "Redis commands the server ran per request, most frequent first (top 5): "
            + "; ".join(
                f"{label}: {bench.describe_commands(samples.top_commands(5))}"
                for label, samples in redis_rows
            )
            + ". Round trips per request, most / share with more than one: "
            + "; ".join(
                f"{label} {samples.max_round_trips} / "
                f"{sum(n > 1 for n in samples.redis_sends) / max(len(samples.redis_sends), 1):.1%}"
                for label, samples in redis_rows
            )
            + ".",
            "",
            "Answers: sources by tier: "
            + "; ".join(f"{tier}: {bench.describe_sources(rec, tier)}" for tier in TIERS)
            + f". Tier router disagreed with the sample {bench.tier_mismatches(rec)} times; "
            f"{bench.empty_answers(rec)} empty answers; pages with a carousel "
            f"{tag.pages_with_carousel:,} of {tag.with_tag.summary.count:,}. API statuses in "
            f"process {sorted(api_statuses)}, over HTTP {dict(http.statuses)}.",
            "",
            "Full (generation 2) garbage collections during the timed calls, count / longest "
            "pause: "
            + "; ".join(
                f"{label} {samples.full_collections[0]} / {samples.full_collections[1]:.1f} ms"
                for label, samples in (
                    ("`recommend()`", rec),
                    ("page with the tag", tag.with_tag),
                    ("API in process", api.api),
                    ("bare view", api.bare),
                    ("Redis down API", down.api),
                )
            )
            + ".",
            "",
            "| goal | measured | result |",
            "|---|---|---|",
            f"| `recommend()` on a cache hit: p50 <= {RECOMMEND_P50_MS:g} ms and p99 <= "
            f"{RECOMMEND_P99_MS:g} ms, every tier | all tiers p50 {overall.p50_ms:.2f} ms, p99 "
            f"{overall.p99_ms:.2f} ms; slowest tier at p50 {worst_p50} "
            f"{by_tier[worst_p50].p50_ms:.2f} ms, at p99 {worst_p99} "
            f"{by_tier[worst_p99].p99_ms:.2f} ms | {'met' if recommend_ok else 'NOT met'} "
            f"(p50 {verdict(by_tier[worst_p50].p50_ms, RECOMMEND_P50_MS)}, p99 "
            f"{verdict(by_tier[worst_p99].p99_ms, RECOMMEND_P99_MS)}) |",
            f"| API view in process p50 <= {API_BARE_P50_RATIO:g}x the bare DRF view's p50 | "
            f"{api_s.p50_ms:.2f} ms / {bare_s.p50_ms:.2f} ms = {api_ratio_p50:.2f}x (at p99 "
            f"{api_ratio_p99:.2f}x) | {verdict(api_ratio_p50, API_BARE_P50_RATIO)} |",
            f"| API view p99 <= {API_P99_MS:g} ms server side (in process, one request at a "
            f"time; under load: `bench_read`) | {api_s.p99_ms:.2f} ms | "
            f"{verdict(api_s.p99_ms, API_P99_MS)} |",
            f"| template tag adds <= {TAG_ADDED_P99_MS:g} ms to a page at p99 | p99 "
            f"{tag.added.p99_ms:.2f} ms (p50 {tag.added.p50_ms:.2f} ms) | "
            f"{verdict(tag.added.p99_ms, TAG_ADDED_P99_MS)} |",
            f"| one Redis round trip per request (`recommend()` and the API) | `recommend()` "
            f"{rec.round_trips():.2f} per request (most {rec.max_round_trips}), API "
            f"{api.api.round_trips():.2f} (most {api.api.max_round_trips}); commands the server "
            f"ran per request: `recommend()` {rec.commands_per_request or 0:.2f}, API "
            f"{api.api.commands_per_request or 0:.2f} | {'met' if round_trips_ok else 'NOT met'} |",
            f"| Redis down: fallback served, API 200 | {down.fallback_share:.1%} fallback "
            f"(API {down.api_fallback_share:.1%}), API statuses {dict(down.api_statuses)} | "
            f"{'met' if down.fallback_share == 1 and set(down.api_statuses) == {200} else 'NOT met'} |",
            "",
            "How it was measured: `recommend()` timed with `time.perf_counter()` around the call. "
            "The tag: a small product page rendered by Django's template engine with a "
            "RequestFactory request carrying a session (shopper id, cart), user and headers, "
            "alternately with and without the two tags; the added cost is the per-pair "
            "difference. The API and the bare view (a DRF `APIView` with no authentication, "
            "permission or throttle returning a captured answer, mounted by the bench only) "
            "are called through Django's WSGI handler as gunicorn calls it, so middleware and "
            "URL routing count; each context has its own client address, as browsers do. "
            "Redis round trips: calls of redis-py's `send_packed_command` in the bench process "
            "during the timed calls, counted per call (redis-py sends a command, a whole "
            "pipeline or a script call at once and then waits for the replies). Redis commands: "
            "the bench Redis's `INFO commandstats` before and after the timed calls, less the "
            "INFO call itself, divided by the calls; Redis 7 counts the commands a Lua script "
            "runs as well as its `EVALSHA`, so one round trip can run several commands. Over "
            "HTTP: one load-client process, one request in flight, `http.client`; gunicorn's "
            "sync workers close the connection after every response, so each request also "
            f"pays a loopback connect ({http.closed_by_server:,} of {http.requests:,} closed "
            "by the server; `bench_read` compares them with gthread workers, which keep it "
            "open). Redis down: the reader and the throttle cache pointed at a closed "
            "loopback port in process (a connect that fails sends nothing, so those rows' round "
            "trips count only sends that reached a socket; their commands are those still "
            "reaching the bench's live Redis); the breaker retries once per "
            f"{aisle_settings.SERVING_REDIS_RETRY_S:g} s.",
            "",
            f"Command: `{self.command}`",
        ]
        return "\n".join(lines)
