"""manage.py bench_read: the read path under 1-128 concurrent clients, beside a bare view and the
anti-pattern of scoring a model per request.

Runs in an isolated world (private Redis, scratch SQLite DB) with gunicorn on loopback serving the
bench URLconf, prints a report and writes it to docs/PERFORMANCE.md. A benchmark, not a test.
"""

import os
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from aisle.conf import aisle_settings
from bench import plots
from bench import read as bench
from bench.harness import (
    command_line,
    gunicorn_server,
    load_note,
    run_in_isolated_world,
    write_report_section,
)
from bench.serving import build_contexts, load_world, pool_from_world, replay_views
from recs.evaluation.report import machine_description

REPORT = Path(settings.BASE_DIR) / "docs" / "PERFORMANCE.md"
SERVER_P99_BUDGET_MS = 5.0
BARE_RATIO_BUDGET = 2.0


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


class Command(BaseCommand):
    help = "Benchmark the read path (API, product page) under concurrent load; writes a report."

    def add_arguments(self, parser):
        parser.add_argument("--inner", action="store_true", help="(internal) run inside the world")
        parser.add_argument("--concurrency", default="1,8,32,128", help="clients in flight")
        parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
        parser.add_argument("--sync-duration", type=float, default=10.0,
                            help="seconds per cell of the per-request model view")  # fmt: skip
        parser.add_argument("--warmup", type=float, default=2.0, help="seconds per target first")
        parser.add_argument("--contexts-per-tier", type=int, default=200)
        parser.add_argument("--import-limit", type=int, default=150000,
                            help="rows of the shipped data set to import (0: all)")  # fmt: skip
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
        parser.add_argument("--no-report", action="store_true", help="do not write the docs")

    def handle(self, *args, inner, **options):
        if not inner:
            run_in_isolated_world(
                "bench_read", {"TRUSTED_PROXY_COUNT": "1"}
            )  # one address per simulated shopper
            return
        self.command = command_line("bench_read")
        self.run_benchmark(**options)

    def say(self, text: str = "") -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def run_benchmark(self, concurrency, duration, sync_duration, warmup, contexts_per_tier,
                      import_limit, web_workers, no_report, **_):  # fmt: skip
        levels = [int(c) for c in concurrency.split(",")]
        self.load_at_start = os.getloadavg()[0]
        self.say(f"Machine: {machine_description()}")
        self.say(f"Importing the shipped data set ({import_limit or 'all'} rows) and training ...")
        world = load_world(import_limit or None)
        pool = pool_from_world()
        contexts = build_contexts(pool, contexts_per_tier)
        views = replay_views(contexts)
        sessions = bench.create_sessions(contexts)
        self.say(
            f"  {world.products:,} products, {world.customers:,} customers, "
            f"{world.candidate_lists:,} candidate lists; {len(contexts)} contexts, {views} views "
            f"replayed, {len(sessions)} stored sessions"
        )
        targets = {
            "bare view": bench.bare_requests(contexts),
            "API": bench.api_requests(contexts),
            "product page": bench.page_requests(contexts, sessions, pool.products),
            "sync model": bench.sync_model_requests(contexts),
        }
        # The world runs with DEBUG off, so pages need the hashed static files (as demo.sh does).
        call_command("collectstatic", interactive=False, verbosity=0)
        payload = bench.write_bare_payload(contexts, Path(settings.VAR_DIR) / "bare-payload.json")
        cells: list[bench.Cell] = []
        with gunicorn_server(
            workers=web_workers, app=bench.BENCH_APP, extra_env=bench.bench_server_env(payload)
        ) as base_url:
            bench.warm_up(base_url, targets, warmup)
            for level in levels:
                for target, requests in targets.items():
                    cell = bench.measure_cell(
                        base_url, target, requests, concurrency=level,
                        duration_s=sync_duration if target == "sync model" else duration,
                        timeout_s=60,
                    )  # fmt: skip
                    cells.append(cell)
                    self.row(cell)
        self.load_at_end = os.getloadavg()[0]
        images = [] if no_report else self.plot(cells, levels)  # plots belong to the report
        body = self.report(world, contexts, cells, levels, web_workers, images)
        self.say()
        self.say(body)
        if not no_report:
            write_report_section(REPORT, "bench_read", body)
            self.say(f"Report written to {REPORT.relative_to(settings.BASE_DIR)}")

    def row(self, cell: bench.Cell) -> None:
        r = cell.result
        self.say(
            f"c={cell.concurrency:>3} {cell.target:<13} {r.throughput:8.1f} req/s  "
            f"p50 {r.percentile(50):8.2f}  p95 {r.percentile(95):8.2f}  p99 {r.percentile(99):8.2f} "
            f"ms  server p50 {cell.server_p50_ms:7.2f} p99 {cell.server_p99_ms:7.2f} ms  "
            f"n={r.requests:,} statuses {dict(r.statuses)} errors {r.errors}"
        )

    def plot(self, cells: list[bench.Cell], levels: list[int]) -> list[Path]:
        throughput = {
            t: [(c.concurrency, c.result.throughput) for c in cells if c.target == t]
            for t in bench.TARGETS
        }
        p99 = {
            t: [(c.concurrency, c.result.percentile(99)) for c in cells if c.target == t]
            for t in bench.TARGETS
        }
        server = {
            f"{t} (server side)": [(c.concurrency, c.server_p99_ms) for c in cells if c.target == t]
            for t in bench.TARGETS
        }
        return [
            plots.line_plot(
                plots.IMAGE_DIR / "bench_read_throughput.png", throughput,
                "Read path throughput by concurrent clients (gunicorn, loopback)",
                "concurrent clients", "requests/s", log_x=True, log_y=True,
            ),
            plots.line_plot(
                plots.IMAGE_DIR / "bench_read_p99.png", {**p99, **server},
                "p99 latency by concurrent clients: client side and inside Django",
                "concurrent clients", "p99 ms", log_x=True, log_y=True,
            ),
        ]  # fmt: skip

    def report(self, world, contexts, cells, levels, web_workers, images) -> str:
        by = {(c.target, c.concurrency): c for c in cells}
        lines = [
            "## Read path under concurrent load (`python manage.py bench_read`)",
            "",
            f"Machine: {machine_description()}. Date: {time.strftime('%Y-%m-%d')}. 1-minute load "
            f"average {self.load_at_start:.2f} at the start, {self.load_at_end:.2f} at the end.",
            f"Isolated world: private redis-server, scratch SQLite DB with the first "
            f"{world.import_limit or 'all':,} rows of the shipped UCI Online Retail file "
            f"({world.products:,} products, {world.customers:,} customers), trained "
            f"({world.candidate_lists:,} candidate lists); {len(contexts)} page contexts from "
            "`bench.serving.build_contexts` (anonymous, content and collaborative shoppers "
            "over home, product, cart and category placements), one stored Django session each.",
            load_note(self.load_at_start, self.load_at_end),
            f"Server: gunicorn, {web_workers} sync workers (as the demo runs it, which closes the "
            "connection after each response), the bench URLconf `bench.urls` and WSGI "
            "wrapper `bench.wsgi` (adds `X-Bench-Server-Time`: Django's time per request, "
            "middleware included, queueing excluded). Client: `bench.load`, one asyncio "
            "process with at most N requests in flight, on the same cores as the server, "
            "so the client's CPU is taken from the server's at high N.",
            "",
            "Targets: **bare view** a DRF view with no authentication, throttle or work returning "
            "a captured API answer (the framework floor); **API** `GET /api/v1/recommendations`; "
            "**product page** `/p/<sku>/` of the demo storefront with the template tag (session "
            "load, product query, `recommend()`, carousel); **sync model** the anti-pattern: "
            "per request, load the serving hybrid model's artifact from disk (`load_serving`), "
            "score the shopper with it and read the products from the database.",
            "",
            "| clients | target | req/s | p50 ms | p95 ms | p99 ms | server p50 ms | server p99 ms | requests | non-2xx | errors |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for cell in cells:
            r = cell.result
            lines.append(
                f"| {cell.concurrency} | {cell.target} | {r.throughput:,.1f} | "
                f"{r.percentile(50):.2f} | {r.percentile(95):.2f} | {r.percentile(99):.2f} | "
                f"{cell.server_p50_ms:.2f} | {cell.server_p99_ms:.2f} | {r.requests:,} | "
                f"{cell.non_2xx} | {r.errors} |"
            )
        lines += [
            "",
            "| clients | API / bare req/s | API / bare p50 | API / bare p99 | API / bare server p99 | page / API req/s | API / sync model req/s |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for level in levels:
            api, bare = by[("API", level)], by[("bare view", level)]
            page, sync = by[("product page", level)], by[("sync model", level)]
            lines.append(
                f"| {level} | {bench.ratio(api.result.throughput, bare.result.throughput):.2f} | "
                f"{bench.ratio(api.result.percentile(50), bare.result.percentile(50)):.2f} | "
                f"{bench.ratio(api.result.percentile(99), bare.result.percentile(99)):.2f} | "
                f"{bench.ratio(api.server_p99_ms, bare.server_p99_ms):.2f} | "
                f"{bench.ratio(page.result.throughput, api.result.throughput):.2f} | "
                f"{bench.ratio(api.result.throughput, sync.result.throughput):.1f} |"
            )
        api_cells = [by[("API", level)] for level in levels]
        sources = sum(
            (c.result.tallies for c in api_cells), start=type(api_cells[0].result.tallies)()
        )
        answered = sum(v for k, v in sources.items() if k.startswith("source:"))
        fallback = sources.get("source:fallback", 0) + sources.get("source:empty", 0)
        server_ok = [c for c in api_cells if c.server_p99_ms <= SERVER_P99_BUDGET_MS]
        ratio_ok = [
            c.concurrency for c in api_cells
            if bench.ratio(c.result.percentile(99), by[("bare view", c.concurrency)].result.percentile(99))
            <= BARE_RATIO_BUDGET
        ]  # fmt: skip
        first = api_cells[0]
        lines += [
            "",
            f"API answers: {answered:,}, of which {fallback:,} from the fallback or empty "
            f"(the rest are cache hits); sources "
            + ", ".join(
                f"{k.removeprefix('source:')} {v / max(answered, 1):.0%}"
                for k, v in sources.most_common()
                if k.startswith("source:")
            )
            + ".",
            "",
            "| goal | measured | result |",
            "|---|---|---|",
            "| API p99 <= 5 ms server side on a cache hit | "
            + ", ".join(f"{c.server_p99_ms:.2f} ms at {c.concurrency}" for c in api_cells)
            + f" | {verdict(len(server_ok) == len(api_cells))} "
            f"({'at every level' if len(server_ok) == len(api_cells) else 'met at ' + ', '.join(str(c.concurrency) for c in server_ok) + ' clients' if server_ok else 'at no level'}) |",
            "| API <= 2x the bare view (client-side p99) | "
            + ", ".join(
                f"{bench.ratio(c.result.percentile(99), by[('bare view', c.concurrency)].result.percentile(99)):.1f}x at {c.concurrency}"
                for c in api_cells
            )
            + f" | {verdict(len(ratio_ok) == len(api_cells))} |",
            "",
            "Reading the numbers: with one client the client-side time is Django's time plus a "
            f"loopback connect (API p50 {first.result.percentile(50):.2f} ms client side, "
            f"{first.server_p50_ms:.2f} ms inside Django). With more clients than the "
            f"{web_workers} sync workers, requests wait in the listen queue: client-side "
            "latency grows with the number of clients (about clients / throughput), while the "
            "server-side column shows what one request costs inside Django, inflated only by "
            "the CPU that the client, the other worker and Redis take on the same cores. The "
            "bare view is the floor of a DRF request; the API adds `recommend()` (three "
            "pipelined Redis round trips and an in-process re-rank) and its throttle, so its "
            "ratio to a view that does nothing is well above 2 whenever the floor is a fraction "
            "of a millisecond. A fallback answer on a cache hit means Redis took longer than "
            f"`REDIS_SOCKET_TIMEOUT_S` ({aisle_settings.REDIS_SOCKET_TIMEOUT_S * 1000:g} ms) to answer "
            "on a loaded machine. The per-request model is what Aisle exists to avoid: the "
            "render path never loads or scores a model.",
            "",
            *(f"![{image.stem}](img/{image.name})" for image in images),
            "",
            f"Command: `{self.command}`",
        ]
        return "\n".join(lines)
