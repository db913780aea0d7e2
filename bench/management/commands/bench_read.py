"""manage.py bench_read: the read path under 1-128 concurrent clients, beside a bare view and the
anti-pattern of scoring a model per request, under each gunicorn worker model compared (sync
workers, which close every connection, and gthread workers, which keep them alive).

Runs in an isolated world (private Redis, scratch SQLite DB) with gunicorn on loopback serving the
bench URLconf, prints a report and writes it to docs/PERFORMANCE.md. A benchmark, not a test.
"""

import os
import time
from contextlib import ExitStack
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

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
from bench.serving import (
    build_contexts,
    describe_commands,
    load_world,
    pool_from_world,
    redis_stats_client,
    replay_views,
)
from recs.evaluation.report import machine_description

REPORT = Path(settings.BASE_DIR) / "docs" / "PERFORMANCE.md"
# The goals of issue 14 ("render path at cache speed"), judged under the chosen worker model.
SERVER_P99_BUDGET_MS = 5.0
SERVER_P99_CLIENTS = 32
BARE_RATE_SHARE = 0.5  # API req/s at least this share of the bare view's
BARE_RATE_CLIENTS = (8, 32)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def listed(parts: list[str]) -> str:
    return ", ".join(parts) if parts else "none"


class Command(BaseCommand):
    help = (
        "Benchmark the read path (API, product page) under concurrent load, under each gunicorn "
        "worker model compared; writes a report."
    )

    def add_arguments(self, parser):
        parser.add_argument("--inner", action="store_true", help="(internal) run inside the world")
        parser.add_argument("--concurrency", default="1,8,32,128",
                            help="clients in flight, comma-separated (default 1,8,32,128)")  # fmt: skip
        parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
        parser.add_argument("--sync-duration", type=float, default=10.0,
                            help="seconds per cell of the per-request model view")  # fmt: skip
        parser.add_argument("--warmup", type=float, default=2.0,
                            help="seconds per target and worker model first")  # fmt: skip
        parser.add_argument("--contexts-per-tier", type=int, default=200)
        parser.add_argument("--import-limit", type=int, default=150000,
                            help="rows of the shipped data set to import (0: all)")  # fmt: skip
        parser.add_argument("--worker-models", default=bench.DEFAULT_WORKER_MODELS,
                            help=bench.WORKER_MODELS_HELP)  # fmt: skip
        parser.add_argument("--no-report", action="store_true", help="do not write the docs")

    def handle(self, *args, inner, **options):
        try:  # before the world starts: a typo should not cost an import and a training
            bench.parse_worker_models(options["worker_models"])
            bench.parse_levels(options["concurrency"])
        except ValueError as error:
            raise CommandError(str(error)) from error
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
                      import_limit, worker_models, no_report, **_):  # fmt: skip
        levels = bench.parse_levels(concurrency)
        models = bench.parse_worker_models(worker_models)
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
        stats = redis_stats_client()
        cells: list[bench.Cell] = []
        with ExitStack() as servers:
            # All models' servers run at once and are measured in turn at each concurrency, so
            # that a change in the machine's other work hits them alike.
            urls = {}
            for n, model in enumerate(models):
                urls[model] = servers.enter_context(
                    gunicorn_server(
                        workers=model.workers, worker_class=model.worker_class,
                        threads=model.threads, app=bench.BENCH_APP,
                        extra_env=bench.bench_server_env(payload),
                    )
                )  # fmt: skip
                self.say(f"Worker model {model.name}: {model.description}; warming up ...")
                bench.warm_up(urls[model], self.targets_of(targets, n), warmup)
            for level in levels:
                for n, model in enumerate(models):
                    for target, requests in self.targets_of(targets, n).items():
                        cell = bench.measure_cell(
                            urls[model], target, requests, concurrency=level,
                            duration_s=sync_duration if target == "sync model" else duration,
                            timeout_s=60, model=model.name, redis_stats=stats,
                        )  # fmt: skip
                        cells.append(cell)
                        self.row(cell)
        self.load_at_end = os.getloadavg()[0]
        images = [] if no_report else self.plot(cells, models)  # plots belong to the report
        body = self.report(world, contexts, cells, levels, models, images)
        self.say()
        self.say(body)
        if not no_report:
            write_report_section(REPORT, "bench_read", body)
            self.say(f"Report written to {REPORT.relative_to(settings.BASE_DIR)}")

    @staticmethod
    def targets_of(targets: dict, model_index: int) -> dict:
        """All targets under the first worker model; the slow per-request model only there."""
        return {t: r for t, r in targets.items() if model_index == 0 or t != "sync model"}

    def row(self, cell: bench.Cell) -> None:
        r = cell.result
        commands, reads = cell.redis_commands_per_request, cell.redis_reads_per_request
        redis = (
            f"  Redis per request: {reads:.2f} reads, {commands:.2f} commands"
            if commands is not None and reads is not None
            else ""
        )
        self.say(
            f"{cell.model:<12} c={cell.concurrency:>3} {cell.target:<13} "
            f"{r.throughput:8.1f} req/s  p50 {r.percentile(50):8.2f}  p99 {r.percentile(99):8.2f} "
            f"ms  server p50 {cell.server_p50_ms:7.2f} p99 {cell.server_p99_ms:7.2f} ms  "
            f"n={r.requests:,} connections {r.connections:,} statuses {dict(r.statuses)} "
            f"errors {r.errors}{redis}"
        )

    def plot(self, cells: list[bench.Cell], models: list[bench.WorkerModel]) -> list[Path]:
        def series(target: str, model: str, value) -> list[tuple[float, float]]:
            return [(c.concurrency, value(c)) for c in cells
                    if c.target == target and c.model == model]  # fmt: skip

        names = [m.name for m in models]
        throughput = {
            f"{t} ({m})": series(t, m, lambda c: c.result.throughput)
            for m in names
            for t in bench.TARGETS
        }
        p99 = {
            f"{t} ({m})": series(t, m, lambda c: c.result.percentile(99))
            for m in names
            for t in bench.TARGETS
        }
        server = {f"API ({m}, server side)": series("API", m, lambda c: c.server_p99_ms)
                  for m in names}  # fmt: skip

        def drop_empty(lines: dict) -> dict:
            return {label: points for label, points in lines.items() if points}

        return [
            plots.line_plot(
                plots.IMAGE_DIR / "bench_read_throughput.png", drop_empty(throughput),
                "Read path throughput by concurrent clients and gunicorn worker model (loopback)",
                "concurrent clients", "requests/s", log_x=True, log_y=True,
            ),
            plots.line_plot(
                plots.IMAGE_DIR / "bench_read_p99.png", drop_empty({**p99, **server}),
                "p99 latency by concurrent clients: client side, and the API inside Django",
                "concurrent clients", "p99 ms", log_x=True, log_y=True,
            ),
        ]  # fmt: skip

    def model_tables(self, model: bench.WorkerModel, cells, levels) -> list[str]:
        """The cells of one worker model, and its ratios per concurrency."""
        by = {(c.target, c.concurrency): c for c in cells if c.model == model.name}
        lines = [
            f"### Worker model `{model.name}`: {model.description}",
            "",
            f"gunicorn `{model.gunicorn_options}`.",
            "",
            "| clients | target | req/s | p50 ms | p95 ms | p99 ms | server p50 ms | server p99 ms | connections opened | Redis reads per request | Redis commands per request | requests | non-2xx | errors |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for cell in (c for c in cells if c.model == model.name):
            r = cell.result
            reads, commands = cell.redis_reads_per_request, cell.redis_commands_per_request
            lines.append(
                f"| {cell.concurrency} | {cell.target} | {r.throughput:,.1f} | "
                f"{r.percentile(50):.2f} | {r.percentile(95):.2f} | {r.percentile(99):.2f} | "
                f"{cell.server_p50_ms:.2f} | {cell.server_p99_ms:.2f} | {r.connections:,} | "
                f"{'' if reads is None else f'{reads:.2f}'} | "
                f"{'' if commands is None else f'{commands:.2f}'} | {r.requests:,} | "
                f"{cell.non_2xx} | {r.errors} |"
            )
        lines += [
            "",
            "| clients | API / bare req/s | API / bare p50 | API / bare p99 | API / bare server p99 | page / API req/s | API / sync model req/s |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for level in levels:
            api, bare = by.get(("API", level)), by.get(("bare view", level))
            page, sync = by.get(("product page", level)), by.get(("sync model", level))
            if api is None or bare is None or page is None:
                continue
            versus_sync = (
                f"{bench.ratio(api.result.throughput, sync.result.throughput):.1f}"
                if sync is not None
                else "(not run)"
            )
            lines.append(
                f"| {level} | {bench.ratio(api.result.throughput, bare.result.throughput):.2f} | "
                f"{bench.ratio(api.result.percentile(50), bare.result.percentile(50)):.2f} | "
                f"{bench.ratio(api.result.percentile(99), bare.result.percentile(99)):.2f} | "
                f"{bench.ratio(api.server_p99_ms, bare.server_p99_ms):.2f} | "
                f"{bench.ratio(page.result.throughput, api.result.throughput):.2f} | "
                f"{versus_sync} |"
            )
        return lines

    def comparison_table(self, cells, levels, models) -> list[str]:
        """Per concurrency, the API under each worker model side by side."""
        by = {(c.model, c.target, c.concurrency): c for c in cells}
        head = ["clients"]
        for m in models:
            head += [f"`{m.name}` API req/s", f"`{m.name}` API / bare req/s",
                     f"`{m.name}` API server p99 ms", f"`{m.name}` API connections"]  # fmt: skip
        lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
        for level in levels:
            row = [str(level)]
            for m in models:
                api, bare = by.get((m.name, "API", level)), by.get((m.name, "bare view", level))
                if api is None or bare is None:
                    row += ["", "", "", ""]
                    continue
                row += [
                    f"{api.result.throughput:,.1f}",
                    f"{bench.ratio(api.result.throughput, bare.result.throughput):.2f}",
                    f"{api.server_p99_ms:.2f}",
                    f"{api.result.connections:,}",
                ]
            lines.append("| " + " | ".join(row) + " |")
        return lines

    def goals(self, cells, levels, models, chosen, level) -> list[str]:
        """The issue's goals under the chosen model (the other models' numbers alongside)."""
        by = {(c.model, c.target, c.concurrency): c for c in cells}

        def server_p99(model) -> str:
            api = by.get((model.name, "API", SERVER_P99_CLIENTS))
            return "not measured" if api is None else f"{api.server_p99_ms:.2f} ms"

        def rate_share(model, clients) -> float | None:
            api, bare = (
                by.get((model.name, "API", clients)),
                by.get((model.name, "bare view", clients)),
            )
            if api is None or bare is None:
                return None
            return bench.ratio(api.result.throughput, bare.result.throughput)

        others = [m for m in models if m != chosen]
        chosen_api = by.get((chosen.name, "API", SERVER_P99_CLIENTS))
        if chosen_api is None:
            p99_result = f"not measured ({SERVER_P99_CLIENTS} clients not in --concurrency)"
        else:
            p99_result = verdict(chosen_api.server_p99_ms <= SERVER_P99_BUDGET_MS)
        shares = {clients: rate_share(chosen, clients) for clients in BARE_RATE_CLIENTS}
        measured = {k: v for k, v in shares.items() if v is not None}
        if not measured:
            share_result = "not measured (neither 8 nor 32 clients in --concurrency)"
        else:
            share_result = verdict(all(v >= BARE_RATE_SHARE for v in measured.values()))
            missing = [str(k) for k in shares if k not in measured]
            if missing:
                share_result += f" (not measured at {', '.join(missing)} clients)"

        def shares_of(model) -> str:
            return listed([f"{share:.2f}x at {clients}" for clients in BARE_RATE_CLIENTS
                           if (share := rate_share(model, clients)) is not None])  # fmt: skip

        return [
            "| goal (under the chosen model) | measured | result |",
            "|---|---|---|",
            f"| API p99 <= {SERVER_P99_BUDGET_MS:g} ms server side at {SERVER_P99_CLIENTS} "
            f"clients | `{chosen.name}` {server_p99(chosen)}"
            + "".join(f"; `{m.name}` {server_p99(m)}" for m in others)
            + f" | {p99_result} |",
            f"| API req/s >= {BARE_RATE_SHARE:g}x the bare view's at "
            f"{' and at '.join(str(c) for c in BARE_RATE_CLIENTS)} clients | `{chosen.name}` "
            f"{shares_of(chosen)}"
            + "".join(f"; `{m.name}` {shares_of(m)}" for m in others)
            + f" | {share_result} |",
        ]

    def report(self, world, contexts, cells, levels, models, images) -> str:
        level = bench.goal_level(levels, SERVER_P99_CLIENTS)
        choice_levels = bench.choice_levels(levels)
        chosen = bench.chosen_model(cells, models, choice_levels)
        by = {(c.model, c.target, c.concurrency): c for c in cells}
        api_cells = [c for c in cells if c.target == "API"]
        sources = sum(
            (c.result.tallies for c in api_cells), start=type(api_cells[0].result.tallies)()
        )
        answered = sum(v for k, v in sources.items() if k.startswith("source:"))
        fallback = sources.get("source:fallback", 0) + sources.get("source:empty", 0)
        chosen_api = [c for c in api_cells if c.model == chosen.name]
        reads, commands, per_command = bench.redis_per_request(chosen_api)
        page_reads, page_commands, _ = bench.redis_per_request(
            [c for c in cells if c.target == "product page" and c.model == chosen.name]
        )
        rates = "; ".join(
            f"`{m.name}` "
            + " + ".join(
                f"{by[(m.name, 'API', n)].result.throughput:,.1f}"
                for n in choice_levels
                if (m.name, "API", n) in by
            )
            + " req/s"
            for m in models
        )
        clients = f"{levels[0]} client" + ("" if levels[0] == 1 else "s")
        first_level = listed(
            [
                f"`{m.name}` {api.result.percentile(50):.2f} / {api.server_p50_ms:.2f} ms"
                for m in models
                if (api := by.get((m.name, "API", levels[0]))) is not None
            ]
        )
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
            "Servers: gunicorn under each worker model compared, "
            + "; ".join(f"`{m.name}` {m.description}" for m in models)
            + ". All of them run at once and are measured in turn at each concurrency; the bench "
            "URLconf `bench.urls` and WSGI wrapper `bench.wsgi` (adds `X-Bench-Server-Time`: "
            "Django's time per request, middleware included, queueing excluded). Client: "
            "`bench.load`, one asyncio process with at most N requests in flight, each client "
            "keeping its HTTP/1.1 connection alive and opening a new one when the server closes "
            "it (the connections column shows which the server did), on the same cores as the "
            "server, so the client's CPU is taken from the server's at high N. Redis per "
            "request: the bench Redis's `INFO commandstats` and `total_reads_processed` before "
            "and after each cell, less the INFO calls, divided by the requests sent (commands "
            "include those a Lua script runs; a read event is about one round trip of one client).",
            "",
            "Targets: **bare view** a DRF view with no authentication, throttle or work returning "
            "a captured API answer (the framework floor); **API** `GET /api/v1/recommendations`; "
            "**product page** `/p/<sku>/` of the demo storefront with the template tag (session "
            "load, product query, `recommend()`, carousel); **sync model** the anti-pattern: "
            "per request, load the serving hybrid model's artifact from disk (`load_serving`), "
            f"score the shopper with it and read the products from the database (under "
            f"`{models[0].name}` only).",
            "",
        ]
        for model in models:
            lines += [*self.model_tables(model, cells, levels), ""]
        lines += [
            "### Worker models side by side",
            "",
            *self.comparison_table(cells, levels, models),
            "",
            f"**Chosen model: `{chosen.name}`**, {chosen.description}: the one serving the API "
            f"at the highest rate summed over {' and '.join(map(str, choice_levels))} clients ({rates})"
            + (
                ""
                if level == SERVER_P99_CLIENTS
                else f"; {SERVER_P99_CLIENTS} clients were not measured, so at the highest level"
            )
            + f". The demo should serve the API with it: `gunicorn config.wsgi "
            f"{chosen.gunicorn_options}`.",
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
            *self.goals(cells, levels, models, chosen, level),
            "",
            f"Reading the numbers: at {clients} the client-side time is Django's time plus, "
            "under a model that closes connections, a loopback connect per request (API p50 "
            f"client side / inside Django: {first_level}). With more clients than a model "
            "serves at once ("
            + ", ".join(f"{m.slots} for `{m.name}`" for m in models)
            + "), requests wait (sync: in the listen queue; gthread: accepted, for a free "
            "thread): client-side latency grows with the number of clients (about clients / "
            "throughput), while the server-side column shows what one request costs inside "
            "Django, inflated by the CPU that the client, the other workers and Redis take on "
            "the same cores (and, under gthread, by the other threads of the same process "
            "holding the GIL). The bare view is the floor of a DRF request; the API adds "
            f"`recommend()` and its throttle, which under `{chosen.name}` cost "
            f"{reads:.2f} Redis reads (round trips) and {commands:.2f} commands per request "
            f"as the server counted them ({describe_commands(per_command.most_common(5))}); the "
            f"product page {page_reads:.2f} reads and {page_commands:.2f} commands. A fallback "
            "answer on a cache hit means Redis took longer than `REDIS_SOCKET_TIMEOUT_S` "
            f"({aisle_settings.REDIS_SOCKET_TIMEOUT_S * 1000:g} ms) to answer on a loaded "
            "machine. The per-request model is what Aisle exists to avoid: the render path "
            "never loads or scores a model.",
            "",
            *(f"![{image.stem}](img/{image.name})" for image in images),
            "",
            f"Command: `{self.command}`",
        ]
        return "\n".join(lines)
