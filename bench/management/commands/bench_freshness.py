"""manage.py bench_freshness: click-to-answer freshness, a flash sale and trending, with a report."""

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from bench import flash_sale, freshness, trending
from bench import freshness_report as report
from bench import serving as serving_bench
from bench.harness import (
    celery_worker_process,
    command_line,
    gunicorn_server,
    run_in_isolated_world,
    write_report_section,
)
from bench.load import background_load
from bench.stream import HistoryReplay, KeyspaceWatcher, later_history
from recs.api_keys import create_api_key
from recs.candidates.refresh import unavailable_now
from recs.evaluation.report import machine_description

REPORT = Path(settings.BASE_DIR) / "docs" / "PERFORMANCE.md"
SCENARIOS = ("freshness", "flash_sale", "trending")


class Command(BaseCommand):
    help = (
        "Benchmark freshness (click to updated answer, re-score), a flash sale (stock-outs "
        "under read load) and trending (bursts on cold products); writes a report."
    )

    def add_arguments(self, parser):
        parser.add_argument("--inner", action="store_true", help="(internal) run inside the world")
        parser.add_argument(
            "--freshness", action="store_true", help="run scenario 1 (default: all)"
        )
        parser.add_argument("--flash-sale", action="store_true", help="run scenario 2")
        parser.add_argument("--trending", action="store_true", help="run scenario 3")
        parser.add_argument(
            "--import-limit",
            type=int,
            default=150000,
            help="rows of the shipped data set to import (0: all)",
        )
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
        parser.add_argument(
            "--event-workers",
            type=int,
            default=2,
            help="processes of the Celery worker on the events queue",
        )
        parser.add_argument(
            "--replay-speed",
            type=float,
            default=100.0,
            help="purchase history replayed this many times faster",
        )
        parser.add_argument(
            "--replay-max-gap-min",
            type=float,
            default=5.0,
            help="quiet spells of history longer than this are cut to it",
        )
        parser.add_argument(
            "--views-per-s",
            type=float,
            default=20.0,
            help="anonymous product views posted per second on top",
        )
        parser.add_argument("--trials", type=int, default=200, help="click trials (scenario 1)")
        parser.add_argument("--poll-interval-ms", type=float, default=5.0)
        parser.add_argument("--trial-timeout", type=float, default=5.0, help="seconds per trial")
        parser.add_argument(
            "--read-clients", type=int, default=16, help="background read load during scenario 1"
        )
        parser.add_argument(
            "--read-rate",
            type=float,
            default=100.0,
            help="requests/s the background readers send together (0: as fast as answered)",
        )
        parser.add_argument("--flash-clients", type=int, default=32, help="readers in scenario 2")
        parser.add_argument("--waves", type=int, default=4)
        parser.add_argument("--wave-size", type=int, default=5, help="top sellers per wave")
        parser.add_argument("--wave-interval", type=float, default=12.0, help="seconds")
        parser.add_argument(
            "--refill-limit",
            type=float,
            default=45.0,
            help="seconds after the last wave to wait for refills",
        )
        parser.add_argument("--bursts", default="5,20,50", help="burst sizes (scenario 3)")
        parser.add_argument(
            "--track-seconds",
            type=float,
            default=10.0,
            help="how long each burst's rank is followed",
        )
        parser.add_argument("--no-report", action="store_true", help="do not write the docs")  # fmt: skip

    def handle(self, *args, inner, **options):
        if not inner:
            # Each reader stands for a shopper behind one proxy, throttled on its own.
            run_in_isolated_world("bench_freshness", {"TRUSTED_PROXY_COUNT": "1"})
            return
        self.command = command_line("bench_freshness")
        chosen = [s for s in SCENARIOS if options[s]] or list(SCENARIOS)
        self.run_benchmark(chosen, **options)

    def say(self, text: str = "") -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def run_benchmark(self, chosen, *, import_limit, web_workers, event_workers, replay_speed,
                      replay_max_gap_min, views_per_s, trials, poll_interval_ms, trial_timeout,
                      read_clients, read_rate, flash_clients, waves, wave_size, wave_interval, refill_limit,
                      bursts, track_seconds, no_report, **_):  # fmt: skip
        load_at_start = os.getloadavg()[0]
        self.say(f"Machine: {machine_description()}")
        self.say(f"Importing the shipped data set ({import_limit or 'all'} rows) and training ...")
        world = serving_bench.load_world(import_limit or None)
        self.say(f"  {world.products:,} products, {world.purchase_events:,} purchase events, "
                 f"{world.customers:,} customers; {world.candidate_lists:,} candidate lists")  # fmt: skip
        pool = serving_bench.pool_from_world()
        contexts = serving_bench.build_contexts(pool, per_tier=40)
        serving_bench.replay_views(contexts)
        background = [("GET", serving_bench.api_url(c.context), None,
                       {"X-Forwarded-For": c.client_ip, **serving_bench.api_headers()})
                      for c in contexts]  # fmt: skip
        _, write_key = create_api_key("bench_freshness", "secret", ["write", "read"])
        trending.ensure_trending_placement()
        burst_sizes = [int(size) for size in bursts.split(",") if size.strip()]
        cold = trending.cold_products(len(burst_sizes))
        replay = HistoryReplay(
            later_history(import_limit or None), speed=replay_speed,
            max_gap_s=replay_max_gap_min * 60, views_per_s=views_per_s,
            view_products=pool.products,
        )  # fmt: skip
        self.say(f"  {len(replay.records):,} later purchases to replay; cold products {cold}")
        heavy = [u for u in pool.heavy_users if u not in replay.customers]
        content_products, cf_products = freshness.products_with_neighbours(pool.products)
        plans = freshness.plan_trials(
            trials, heavy[1:], content_products, cf_products,
            freshness.titles_of(list(dict.fromkeys(pool.products))),
        )  # fmt: skip
        info = report.RunInfo(
            command=self.command, world=world, web_workers=web_workers,
            event_workers=event_workers, load_at_start=load_at_start, replay_speed=replay_speed,
            replay_max_gap_s=replay_max_gap_min * 60, views_per_s=views_per_s, warm_up_s=0.0,
            read_rate=read_rate,
        )  # fmt: skip
        apply_idle = freshness.measure_apply(pool.products) if "freshness" in chosen else None
        fresh = load = flash = burst_results = None
        watcher = KeyspaceWatcher().start()
        try:
            with (
                gunicorn_server(workers=web_workers) as base_url,
                celery_worker_process("events", event_workers),
                celery_worker_process("scoring", 1),
            ):
                out = sorted(unavailable_now())
                info.warm_up_s = freshness.warm_up(
                    base_url, write_key, watcher, heavy[0], cf_products[0], out[0] if out else None
                )
                self.say(f"Servers up, workers warm ({info.warm_up_s:.1f} s)")
                if "freshness" in chosen:
                    self.say(f"1. Freshness: {len(plans)} click trials under {read_clients} "
                             "background readers and the event stream ...")  # fmt: skip
                    with (
                        replay.running(base_url, write_key) as info.replays["freshness"],
                        background_load(base_url, background, concurrency=read_clients,
                                        processes=2, rate_per_s=read_rate or None,
                                        inspect=freshness.count_fallbacks) as handle,
                    ):  # fmt: skip
                        fresh = freshness.run_freshness(
                            base_url, write_key, plans, watcher,
                            poll_interval_s=poll_interval_ms / 1000, timeout_s=trial_timeout,
                        )  # fmt: skip
                    load = handle.result()
                    fresh.apply_in_process = apply_idle
                    total = fresh.reflected()
                    self.say(f"  click -> reflected p50 {total.p50_ms:.0f} ms, p95 "
                             f"{total.p95_ms:.0f} ms, p99 {total.p99_ms:.0f} ms; in the feature "
                             f"store p95 {fresh.applied().p95_ms:.0f} ms; re-score p50 "
                             f"{fresh.rescored().p50_ms / 1000:.2f} s")  # fmt: skip
                if "flash_sale" in chosen:
                    sellers = flash_sale.top_sellers(waves * wave_size)
                    wave_skus = flash_sale.split_waves(sellers, waves)
                    pages = flash_sale.reader_pages(sellers, pool.heavy_users, pool.countries)
                    self.say(f"2. Flash sale: {len(wave_skus)} waves of {wave_size} top sellers, "
                             f"{flash_clients} readers over {len(pages)} pages ...")  # fmt: skip
                    with replay.running(base_url, write_key) as info.replays["flash_sale"]:
                        flash = flash_sale.run_flash_sale(
                            base_url, wave_skus, pages, watcher, clients=flash_clients,
                            wave_interval_s=wave_interval, refill_limit_s=refill_limit,
                        )  # fmt: skip
                    self.say(f"  {len(flash.served):,} answers; servings after commit: "
                             f"{len(flash.violations)}")  # fmt: skip
                    for wave in flash.waves:
                        if wave.not_rewritten_keys:
                            self.say(f"  wave {wave.index}: not rewritten, e.g. "
                                     f"{', '.join(wave.not_rewritten_keys)}")  # fmt: skip
                if "trending" in chosen:
                    self.say(f"3. Trending: bursts of {burst_sizes} clicks on cold products ...")
                    with replay.running(base_url, write_key) as info.replays["trending"]:
                        burst_results = trending.run_trending(
                            base_url, write_key, burst_sizes, cold, track_s=track_seconds
                        )
        finally:
            watcher.stop()
        info.load_at_end = os.getloadavg()[0]
        body = report.build(info, fresh, load, flash, burst_results, track_seconds)
        self.say()
        self.say(body)
        if no_report:
            return
        if len(chosen) < len(SCENARIOS):
            self.say("Partial run: docs/PERFORMANCE.md left as it was (run all three to write).")
            return
        for path in report.write_plots(fresh, flash, burst_results):
            self.say(f"Plot written to {path.relative_to(settings.BASE_DIR)}")
        write_report_section(REPORT, "bench_freshness", body)
        self.say(f"Report written to {REPORT.relative_to(settings.BASE_DIR)}")
