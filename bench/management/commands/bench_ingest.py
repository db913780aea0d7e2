"""manage.py bench_ingest: events/s through the API by batch size, and worker lag under a sustained
2,000 events/s with 1 and 2 worker processes.

Runs in an isolated world (private Redis, scratch SQLite DB) with gunicorn and Celery workers on
loopback, prints a report and writes it to docs/PERFORMANCE.md. A benchmark, not a test.
"""

import os
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from bench import events as bench_events
from bench import ingest as bench
from bench import plots
from bench.harness import (
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


def drained(seconds: float | None) -> str:
    return f"{seconds:.1f} s" if seconds is not None else "not drained"


class Command(BaseCommand):
    help = "Benchmark event ingest by batch size and worker lag under a sustained rate; writes a report."

    def add_arguments(self, parser):
        parser.add_argument("--inner", action="store_true", help="(internal) run inside the world")
        parser.add_argument("--batch-sizes", default="1,10,100")
        parser.add_argument("--burst-duration", type=float, default=8.0,
                            help="seconds per batch size (workers stopped)")  # fmt: skip
        parser.add_argument("--clients", type=int, default=4, help="load-client processes")
        parser.add_argument("--rate", type=float, default=2000.0, help="sustained events/s")
        parser.add_argument("--sustained-batch", type=int, default=100,
                            help="events per request in the sustained run")  # fmt: skip
        parser.add_argument("--duration", type=float, default=45.0,
                            help="seconds of each sustained run")  # fmt: skip
        parser.add_argument("--workers", default="1,2", help="worker processes to compare")
        parser.add_argument("--drain-timeout", type=float, default=180.0)
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
        parser.add_argument("--no-report", action="store_true", help="do not write the docs")

    def handle(self, *args, inner, **options):
        if not inner:
            run_in_isolated_world("bench_ingest")
            return
        self.command = command_line("bench_ingest")
        self.run_benchmark(**options)

    def say(self, text: str = "") -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def run_benchmark(self, batch_sizes, burst_duration, clients, rate, sustained_batch, duration,
                      workers, drain_timeout, web_workers, no_report, **_):  # fmt: skip
        self.load_at_start = os.getloadavg()[0]
        self.say(f"Machine: {machine_description()}")
        skus = bench_events.seed_catalog(CATALOG)
        _, key = create_api_key("bench-ingest", "secret", ["write"])
        run_id = uuid.uuid4().hex[:8]
        users = tuple(f"user-{n}" for n in range(USERS))
        bursts, sustained = [], []
        with gunicorn_server(workers=web_workers) as base_url:
            # Bursts: the API alone (no worker runs), bench_events' own measurement.
            for batch_size in [int(b) for b in batch_sizes.split(",")]:
                result = bench_events.measure_http_ingest(
                    base_url, key, skus, batch_size=batch_size, clients=clients,
                    duration_s=burst_duration, users=USERS,
                    max_requests_per_client=max(50, int(40000 / batch_size)),
                )  # fmt: skip
                bursts.append(result)
                self.say(
                    f"burst, batches of {batch_size:>3}: {result.events_per_s:>9,.0f} events/s "
                    f"({result.requests / result.duration_s:,.0f} req/s, p99 "
                    f"{result.latency.p99_ms:.1f} ms, errors {result.errors})"
                )
            for processes in [int(w) for w in workers.split(",")]:
                stream = bench_events.EventStream(
                    key, f"{run_id}w{processes}", users, tuple(skus), sustained_batch,
                    customer_share=0.5,
                )  # fmt: skip
                run = bench.measure_sustained(
                    base_url, stream, rate_per_s=rate, duration_s=duration,
                    worker_processes=processes, drain_timeout_s=drain_timeout,
                )  # fmt: skip
                sustained.append(run)
                self.say(
                    f"sustained {rate:,.0f} events/s, {processes} worker process(es): posted "
                    f"{run.posted_rate:,.0f}/s, applied {run.applied_rate:,.0f}/s, max queue "
                    f"{run.max_queue:,} batches, lag p50 {run.lag_percentile(50):.2f} s p95 "
                    f"{run.lag_percentile(95):.2f} s max {run.lag_percentile(100):.2f} s, drain "
                    f"{drained(run.drain_s)}"
                )
        self.load_at_end = os.getloadavg()[0]
        images = [] if no_report else self.plot(sustained)  # plots belong to the report
        body = self.report(bursts, sustained, clients, web_workers, rate, sustained_batch,
                           duration, images)  # fmt: skip
        self.say()
        self.say(body)
        if not no_report:
            write_report_section(REPORT, "bench_ingest", body)
            self.say(f"Report written to {REPORT.relative_to(settings.BASE_DIR)}")

    def plot(self, sustained: list[bench.SustainedRun]) -> list[Path]:
        queue = {
            f"{r.worker_processes} worker process(es)": [
                (s.at_s, s.queue_batches) for s in r.samples
            ]
            for r in sustained
        }
        lag = {
            f"{r.worker_processes} worker process(es)": [
                (s.at_s, s.interval_lag_s) for s in r.samples if s.interval_lag_s is not None
            ]
            for r in sustained
        }
        spans = [(0.0, sustained[0].duration_s, "load running")] if sustained else []
        rate = f"{sustained[0].target_rate:,.0f}" if sustained else ""
        return [
            plots.line_plot(
                plots.IMAGE_DIR / "bench_ingest_queue.png", queue,
                f"Events queue depth at {rate} events/s, then draining", "seconds",
                "batches waiting", spans=spans,
            ),
            plots.line_plot(
                plots.IMAGE_DIR / "bench_ingest_lag.png", lag,
                f"Accept-to-applied lag at {rate} events/s (mean per 0.5 s)", "seconds",
                "lag s", spans=spans,
            ),
        ]  # fmt: skip

    def report(self, bursts, sustained, clients, web_workers, rate, batch, duration,
               images) -> str:  # fmt: skip
        lines = [
            "## Event ingest and worker lag (`python manage.py bench_ingest`)",
            "",
            f"Machine: {machine_description()}. Date: {time.strftime('%Y-%m-%d')}. 1-minute load "
            f"average {self.load_at_start:.2f} at the start, {self.load_at_end:.2f} at the end.",
            load_note(self.load_at_start, self.load_at_end),
            f"Isolated world: private redis-server and scratch SQLite DB, a synthetic catalog of "
            f"{CATALOG:,} products and {USERS:,} shoppers; gunicorn with {web_workers} sync "
            "workers, everything on the same cores.",
            "",
            f"Bursts through `POST /api/v1/events` with a write key, no worker running (the API "
            f"only validates and queues), {clients} client processes for "
            f"{bursts[0].duration_s if bursts else 0:.0f} s per batch size "
            "(`bench.events.measure_http_ingest`, as bench_events):",
            "",
            "| batch size | events/s | requests/s | request p50 ms | p99 ms | errors |",
            "|---:|---:|---:|---:|---:|---:|",
            *(
                f"| {r.batch_size} | {r.events_per_s:,.0f} | {r.requests / r.duration_s:,.0f} | "
                f"{r.latency.p50_ms:.1f} | {r.latency.p99_ms:.1f} | {r.errors} |"
                for r in bursts
            ),
            "",
            f"Sustained: {rate:,.0f} events/s posted at a fixed rate (batches of {batch}, half "
            f"from known shoppers) for {duration:g} s to a Celery worker on the `events` queue "
            "with 1 or 2 processes; queue depth (`LLEN events`) and the accept-to-applied lag "
            "(the `m:events` hash that `record_event_lag` keeps: lag_seconds_total / "
            "applied_total per 0.5 s) sampled every 0.5 s, then the queue left to drain.",
            "",
            "| worker processes | posted events/s | applied events/s under load | max queue (batches) | lag p50 s | lag p95 s | lag max s | lag at the end of the load s | drain after the load |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in sustained:
            final = r.final_lag_s
            lines.append(
                f"| {r.worker_processes} | {r.posted_rate:,.0f} | {r.applied_rate:,.0f} | "
                f"{r.max_queue:,} | {r.lag_percentile(50):.2f} | {r.lag_percentile(95):.2f} | "
                f"{r.lag_percentile(100):.2f} | {final if final is not None else float('nan'):.2f} | "
                f"{drained(r.drain_s)} |"
            )
        keeps_up = [r.worker_processes for r in sustained if r.applied_rate >= 0.95 * r.posted_rate]
        lines += [
            "",
            f"Keeps up with {rate:,.0f} events/s (applied >= 95 % of posted, the queue does not "
            "grow): "
            + (
                ", ".join(f"{w} process(es)" for w in keeps_up) + ": yes"
                if keeps_up
                else "no worker configuration did"
            )
            + "; "
            + ", ".join(
                f"{r.worker_processes} process(es): {r.applied_rate / r.posted_rate:.0%} of posted"
                for r in sustained
                if r.posted_rate
            )
            + ". A worker that does not keep up shows a queue and a lag that grow linearly for "
            "as long as the load lasts; the lag is what a shopper waits for a click to count.",
            "",
            *(f"![{image.stem}](img/{image.name})" for image in images),
            "",
            f"Command: `{self.command}`",
        ]
        return "\n".join(lines)
