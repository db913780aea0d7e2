"""manage.py bench_ingest: how fast one event-worker process applies events, on SQLite and on
PostgreSQL side by side, and the accept-to-applied lag while events are posted at a fixed rate.

Each database gets an isolated world of its own (private redis-server; a scratch SQLite file or
a private PostgreSQL cluster, bench.private_postgres), where this command runs again with
--inner and leaves its results in a JSON file; the outer run writes the report, with plots, to
docs/PERFORMANCE.md. A benchmark, not a test.
"""

import json
import os
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from bench import cpu_shares, plots
from bench import events as bench_events
from bench import ingest as bench
from bench.harness import (
    DATABASES,
    command_line,
    gunicorn_server,
    load_note,
    run_in_isolated_world,
    write_report_section,
)
from recs.api_keys import create_api_key
from recs.evaluation.report import machine_description

REPORT = Path(settings.BASE_DIR) / "docs" / "PERFORMANCE.md"
USERS = 5000
CATALOG = 2000
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
# Done-when targets of the write path (docs/PERFORMANCE.md says where they come from).
ONE_PROCESS_TARGET = {"sqlite": 3000.0, "postgresql": 5000.0}
LAG_TARGET_S = 1.0
LAG_TARGET_RATE = 5000.0
LAG_TARGET_PROCESSES = 2


def database_version() -> str:
    """The server's version as it reports it (this world's database)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
        else:
            cursor.execute("SELECT sqlite_version()")
        return str(cursor.fetchone()[0]).split()[0]


def numbers(text: str, kind=int) -> list:
    return [kind(part) for part in text.split(",") if part.strip()]


def cores_needed(run: dict) -> str:
    """What the run's CPU per event says the target rate needs: the load clients and the web
    per posted event, the workers, Redis and the database per applied event."""
    cpu = run.get("cpu")
    if not cpu or not run["posted_rate"] or not run["applied_rate"]:
        return ""
    per_posted = (cpu["load clients and bench"] + cpu["web (gunicorn)"]) / run["posted_rate"]
    per_applied = (cpu["event workers"] + cpu["Redis"] + cpu["PostgreSQL"]) / run["applied_rate"]
    needed = (per_posted + per_applied) * run["target_rate"] / 100
    cores = os.cpu_count() or 1
    return (
        f"; at this run's CPU per event, {run['target_rate']:,.0f} events/s posted and applied "
        f"would need {needed:.1f} cores of this machine's {cores}"
    )


def drained(seconds: float | None) -> str:
    return f"{seconds:.1f} s" if seconds is not None else "not drained"


class Command(BaseCommand):
    help = "Benchmark the event write path on SQLite and PostgreSQL; writes a report."

    def add_arguments(self, parser):
        parser.add_argument("--inner", action="store_true", help="(internal) run inside a world")
        parser.add_argument("--results-file", help="(internal) where an inner run leaves results")
        parser.add_argument("--databases", default=",".join(DATABASES),
                            help="worlds to compare, of: " + ", ".join(DATABASES))  # fmt: skip
        parser.add_argument("--drain-batch-sizes", default="100,500",
                            help="events per queued batch in the drain runs")  # fmt: skip
        parser.add_argument("--drain-events", type=int, default=30000,
                            help="events queued before each drain run's worker starts")  # fmt: skip
        parser.add_argument("--drain-workers", default="1,2", help="worker processes to drain")
        parser.add_argument("--rates", default="2000,5000", help="sustained events/s to post")
        parser.add_argument("--workers", default="1,2", help="worker processes under the load")
        parser.add_argument("--sustained-batch", type=int, default=100,
                            help="events per request in the sustained runs")  # fmt: skip
        parser.add_argument("--duration", type=float, default=30.0,
                            help="seconds of each sustained run")  # fmt: skip
        parser.add_argument("--clients", type=int, default=4, help="load-client processes")
        parser.add_argument("--drain-timeout", type=float, default=120.0)
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
        parser.add_argument("--no-report", action="store_true", help="do not write the docs")

    def say(self, text: str = "") -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def handle(self, *args, inner, results_file, databases, **options):
        if inner:
            results = self.measure(**options)
            Path(results_file).write_text(json.dumps(results))
            return
        chosen = [d.strip() for d in databases.split(",") if d.strip()]
        unknown = set(chosen) - set(DATABASES)
        if unknown or not chosen:
            raise CommandError(f"--databases: use some of {', '.join(DATABASES)}")
        self.command = command_line("bench_ingest")
        self.load_at_start = os.getloadavg()[0]
        worlds = []
        with tempfile.TemporaryDirectory(prefix="aisle-bench-ingest-") as scratch:
            for database in chosen:
                self.say(f"== {LABELS[database]} world")
                path = Path(scratch) / f"{database}.json"
                run_in_isolated_world(
                    "bench_ingest", database=database, extra_args=["--results-file", str(path)]
                )
                worlds.append(json.loads(path.read_text()))
        self.load_at_end = os.getloadavg()[0]
        images = [] if options["no_report"] else self.plot(worlds)
        body = self.report(worlds, images, **options)
        self.say()
        self.say(body)
        if not options["no_report"]:
            write_report_section(REPORT, "bench_ingest", body)
            self.say(f"Report written to {REPORT.relative_to(settings.BASE_DIR)}")

    # --- inside one world

    def measure(self, drain_batch_sizes, drain_events, drain_workers, rates, workers,
                sustained_batch, duration, clients, drain_timeout, web_workers, **_) -> dict:  # fmt: skip
        database = connection.vendor  # "sqlite" or "postgresql", the keys of LABELS
        label = LABELS[database]
        skus = bench_events.seed_catalog(CATALOG)
        _, key = create_api_key("bench-ingest", "secret", ["write"])
        users = tuple(f"user-{n}" for n in range(USERS))
        run_id = uuid.uuid4().hex[:8]
        inprocess = bench_events.measure_inprocess_apply(
            skus, batches=20, batch_size=500, users=USERS
        )
        self.say(f"{label}: apply_event_batch in this process, batches of 500: "
                 f"{inprocess:,.0f} events/s")  # fmt: skip
        drains = []
        for batch_size in numbers(drain_batch_sizes):
            for processes in numbers(drain_workers):
                stream = bench_events.EventStream(
                    key, f"{run_id}d{batch_size}p{processes}", users, tuple(skus), batch_size,
                    customer_share=0.5,
                )  # fmt: skip
                run = bench.measure_drain(
                    stream, batches=max(1, drain_events // batch_size),
                    worker_processes=processes, timeout_s=drain_timeout,
                )  # fmt: skip
                drains.append(asdict(run))
                self.say(f"{label}: worker of {processes} process(es) draining {run.events:,} "
                         f"queued events in batches of {batch_size}: {run.applied_rate:,.0f} "
                         f"events/s{'' if run.drained else ' (not drained)'}")  # fmt: skip
        sustained = []
        with gunicorn_server(workers=web_workers) as base_url:
            for rate in numbers(rates, float):
                for processes in numbers(workers):
                    stream = bench_events.EventStream(
                        key, f"{run_id}r{rate:.0f}w{processes}", users, tuple(skus),
                        sustained_batch, customer_share=0.5,
                    )  # fmt: skip
                    run = bench.measure_sustained(
                        base_url, stream, rate_per_s=rate, duration_s=duration,
                        worker_processes=processes, drain_timeout_s=drain_timeout,
                        clients=clients,
                    )  # fmt: skip
                    sustained.append(self.summary(run))
                    self.say(
                        f"{label}: {rate:,.0f} events/s posted, {processes} process(es): "
                        f"posted {run.posted_rate:,.0f}/s, applied {run.applied_rate:,.0f}/s, "
                        f"lag p50 {run.lag_percentile(50):.2f} s max "
                        f"{run.lag_percentile(100):.2f} s, drain {drained(run.drain_s)}"
                    )
        return {
            "database": database, "version": database_version(), "inprocess_rate": inprocess,
            "drains": drains, "sustained": sustained, "duration_s": duration,
            "batch": sustained_batch,
        }  # fmt: skip

    @staticmethod
    def summary(run: bench.SustainedRun) -> dict:
        under_load = [s.interval_lag_s for s in run.under_load() if s.interval_lag_s is not None]
        return {
            "worker_processes": run.worker_processes,
            "target_rate": run.target_rate,
            "posted_rate": run.posted_rate,
            "applied_rate": run.applied_rate,
            "max_queue": run.max_queue,
            "lag_p50_s": run.lag_percentile(50),
            "lag_p95_s": run.lag_percentile(95),
            "lag_max_s": run.lag_percentile(100),
            "lag_max_under_load_s": max(under_load, default=None),
            "final_lag_s": run.final_lag_s,
            "drain_s": run.drain_s,
            "cpu": run.cpu,
            "samples": [asdict(s) for s in run.samples],
        }

    # --- the report

    def plot(self, worlds: list[dict]) -> list[Path]:
        images = []
        rates = sorted({r["target_rate"] for w in worlds for r in w["sustained"]})
        for rate in rates:
            runs = [(w, r) for w in worlds for r in w["sustained"] if r["target_rate"] == rate]
            lag = {
                f"{LABELS[w['database']]}, {r['worker_processes']} process(es)": [
                    (s["at_s"], s["interval_lag_s"]) for s in r["samples"]
                    if s["interval_lag_s"] is not None
                ]
                for w, r in runs
            }  # fmt: skip
            spans = [(0.0, runs[0][0]["duration_s"], "load running")] if runs else []
            images.append(plots.line_plot(
                plots.IMAGE_DIR / f"bench_ingest_lag_{rate:.0f}.png", lag,
                f"Accept-to-applied lag, {rate:,.0f} events/s posted (mean per 0.5 s)",
                "seconds", "lag s", spans=spans,
            ))  # fmt: skip
        bars = {
            f"{LABELS[w['database']]}\nbatches of {d['batch_size']}": d["applied_rate"]
            for w in worlds
            for d in w["drains"]
            if d["worker_processes"] == 1
        }
        if bars:
            images.append(plots.bar_plot(
                plots.IMAGE_DIR / "bench_ingest_one_process.png", bars,
                "Events applied per second by one worker process (queue drained)", "events/s",
            ))  # fmt: skip
        return images

    @staticmethod
    def cpu_table(worlds: list[dict]) -> list[str]:
        """Where the cores went while the load ran: the share of one core each role used
        (bench.cpu_shares), and the workers' CPU per applied event."""
        runs = [(w, r) for w in worlds for r in w["sustained"] if r.get("cpu")]
        if not runs:
            return []
        cores = os.cpu_count() or 1
        lines = [
            "",
            "**Where the cores went** while the load ran (CPU time from /proc, "
            "`bench.cpu_shares`; 100 % = one core busy throughout, this machine has "
            f"{cores} core{'s' if cores != 1 else ''}, {cores * 100} % in all). The web and "
            "worker columns divided by the rates give the CPU each event costs them.",
            "",
            "| database | posted target /s | worker processes | "
            + " | ".join(f"{role} %" for role in cpu_shares.ROLES)
            + " | machine busy % | web µs per posted event | worker µs per applied event |",
            "|---|---:|---:|" + "---:|" * (len(cpu_shares.ROLES) + 3),
        ]
        for world, r in runs:
            cpu = r["cpu"]
            web = cpu["web (gunicorn)"] * 1e4 / r["posted_rate"] if r["posted_rate"] else 0.0
            workers = cpu["event workers"] * 1e4 / r["applied_rate"] if r["applied_rate"] else 0.0
            lines.append(
                f"| {LABELS[world['database']]} | {r['target_rate']:,.0f} | "
                f"{r['worker_processes']} | "
                + " | ".join(f"{cpu[role]:.0f}" for role in cpu_shares.ROLES)
                + f" | {cpu['machine']:.0f} | {web:,.0f} | {workers:,.0f} |"
            )
        return lines

    def report(self, worlds: list[dict], images: list[Path], *, duration, sustained_batch,
               clients, web_workers, **_) -> str:  # fmt: skip
        lines = [
            "## Event write path (`python manage.py bench_ingest`)",
            "",
            f"Machine: {machine_description().split(', database')[0]}; "
            + ", ".join(f"{LABELS[w['database']]} {w['version']}" for w in worlds)
            + f". Date: {time.strftime('%Y-%m-%d')}. 1-minute load average "
            f"{self.load_at_start:.2f} at the start, {self.load_at_end:.2f} at the end.",
            load_note(self.load_at_start, self.load_at_end),
            "One isolated world per database, one after the other: a private redis-server and "
            "a scratch SQLite file (WAL, IMMEDIATE transactions) or a private PostgreSQL "
            f"cluster (bench.private_postgres: fsync off, as a throwaway cluster); a synthetic "
            f"catalog of {CATALOG:,} products and {USERS:,} shoppers, half the events from "
            "known shoppers; everything on the same cores.",
            "",
            "**One worker process.** The queue is filled first, then a Celery worker starts on "
            "the `events` queue and its rate is timed from the first applied batch to the last "
            "(`bench.ingest.measure_drain`): the worker alone, with the API and the load "
            "clients off the clock. Each event is written to the log and folded into the online "
            "feature store, and its shopper's re-score is scheduled. For reference, "
            "`apply_event_batch` called in a loop in one process, without Celery.",
            "",
            "| database | worker processes | events per batch | events queued | applied events/s |",
            "|---|---:|---:|---:|---:|",
        ]
        for world in worlds:
            label = LABELS[world["database"]]
            for drain in world["drains"]:
                note = "" if drain["drained"] else " (not drained in time)"
                lines.append(
                    f"| {label} | {drain['worker_processes']} | {drain['batch_size']} | "
                    f"{drain['events']:,} | {drain['applied_rate']:,.0f}{note} |"
                )
            lines.append(f"| {label} | `apply_event_batch` in a loop | 500 | 10,000 | "
                         f"{world['inprocess_rate']:,.0f} |")  # fmt: skip
        lines += [
            "",
            f"**Lag under a posted rate.** Events posted through `POST /api/v1/events` at a "
            f"fixed rate in batches of {sustained_batch} by {clients} client processes to "
            f"gunicorn ({web_workers} workers) for {duration:g} s, while a worker of 1 or 2 "
            "processes applies them; queue depth and the accept-to-applied lag (`m:events`: "
            "lag_seconds_total / applied_total per 0.5 s) sampled every 0.5 s, then the queue "
            "left to drain. Lag p50 and p95 are over the load and the drain; the posted rate "
            "falls short of the target when the load clients, gunicorn and the workers use up "
            "the cores between them.",
            "",
            "| database | posted target /s | worker processes | posted /s | applied /s under load | max queue (batches) | lag p50 s | lag p95 s | lag max under load s | lag at the end of the load s | drain after the load |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for world in worlds:
            for r in world["sustained"]:
                worst = r["lag_max_under_load_s"]
                final = r["final_lag_s"]
                lines.append(
                    f"| {LABELS[world['database']]} | {r['target_rate']:,.0f} | "
                    f"{r['worker_processes']} | {r['posted_rate']:,.0f} | "
                    f"{r['applied_rate']:,.0f} | {r['max_queue']:,} | {r['lag_p50_s']:.2f} | "
                    f"{r['lag_p95_s']:.2f} | {worst if worst is not None else float('nan'):.2f} | "
                    f"{final if final is not None else float('nan'):.2f} | "
                    f"{drained(r['drain_s'])} |"
                )
        lines += self.cpu_table(worlds)
        lines += ["", "Targets:", ""]
        for world in worlds:
            target = ONE_PROCESS_TARGET[world["database"]]
            best = max(
                (d["applied_rate"] for d in world["drains"] if d["worker_processes"] == 1),
                default=0.0,
            )
            if any(d["worker_processes"] == 1 for d in world["drains"]):
                verdict = "met" if best >= target else "NOT met"
                lines.append(f"- {LABELS[world['database']]}: one worker process >= "
                             f"{target:,.0f} events/s: {verdict} (best {best:,.0f} events/s).")  # fmt: skip
            for r in world["sustained"]:
                if (r["target_rate"] == LAG_TARGET_RATE
                        and r["worker_processes"] == LAG_TARGET_PROCESSES):  # fmt: skip
                    worst = r["lag_max_under_load_s"]
                    ok = worst is not None and worst < LAG_TARGET_S and r["drain_s"] is not None
                    lines.append(
                        f"- {LABELS[world['database']]}: lag under {LAG_TARGET_S:g} s with "
                        f"{LAG_TARGET_PROCESSES} processes at {LAG_TARGET_RATE:,.0f} events/s "
                        f"posted: {'met' if ok else 'NOT met'} (worst 0.5 s mean "
                        f"{worst if worst is not None else float('nan'):.2f} s, posted "
                        f"{r['posted_rate']:,.0f}/s){cores_needed(r)}."
                    )
        lines += [
            "",
            *(f"![{image.stem}](img/{image.name})" for image in images),
            "",
            f"Command: `{self.command}`",
        ]
        return "\n".join(lines)
