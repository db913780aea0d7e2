"""manage.py bench_supervision: the demo's supervised processes healing by themselves.

Starts supervisord with the demo's config (scripts/supervisord.conf) in an isolated world
(private Redis, scratch SQLite DB), SIGKILLs the web server and the Celery worker in turn and
times how long until each serves again, then kills the broker's Redis, starts an empty one and
checks that the same worker process applies the events posted after it. Prints a report and
writes it to docs/PERFORMANCE.md. A benchmark, not a test (tests/bench/test_supervision.py is).
"""

import os
import statistics
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from bench import supervision
from bench.harness import (
    command_line,
    free_port,
    load_note,
    run_in_isolated_world,
    write_report_section,
)
from recs.api_keys import create_api_key
from recs.evaluation.report import machine_description
from recs.models import Event

REPORT = Path(settings.BASE_DIR) / "docs" / "PERFORMANCE.md"
BACK_WITHIN_S = 10.0  # issue 17: a killed process serves again within 10 s, by itself
PRODUCT_SKU = "SUPERVISION-1"


def stored_events(prefix: str) -> int:
    return Event.objects.filter(event_id__startswith=f"{prefix}-").count()


class Command(BaseCommand):
    help = "Kill the demo's supervised web and worker, restart Redis: time until they serve again."

    def add_arguments(self, parser):
        parser.add_argument("--inner", action="store_true", help="(internal) run inside the world")
        parser.add_argument("--trials", type=int, default=5, help="kills of each program")
        parser.add_argument("--redis-down", type=float, default=3.0,
                            help="seconds between killing and restarting Redis")  # fmt: skip
        parser.add_argument("--events", type=int, default=50, help="events posted after it")
        parser.add_argument("--no-report", action="store_true", help="do not write the docs")

    def handle(self, *args, inner, **options):
        if not inner:
            # The demo's own mode: debug pages on (its admin login page is the web's probe).
            run_in_isolated_world("bench_supervision", {"DJANGO_DEBUG": "true"})
            return
        self.command = command_line("bench_supervision")
        self.run_benchmark(**options)

    def say(self, text: str = "") -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def run_benchmark(self, trials, redis_down, events, no_report, **_):
        load_at_start = os.getloadavg()[0]
        self.say(f"Machine: {machine_description()}")
        env = dict(os.environ)
        redis_url = env["REDIS_URL"]
        workdir = Path(settings.VAR_DIR)
        layout = supervision.Layout(workdir / "supervised", free_port())
        _, key = create_api_key("bench-supervision", "secret", ["write", "catalog"])
        recoveries: dict[str, list[supervision.Recovery]] = {"web": [], "worker": []}
        restarted_redis = None
        started = time.perf_counter()
        try:
            with supervision.supervised(layout, env) as supervisor:
                self.say(f"Supervised world up in {time.perf_counter() - started:.1f} s")
                supervision.add_product(layout.base_url, key, PRODUCT_SKU)
                serving = {
                    "web": lambda: supervision.web_serving(layout.base_url),
                    "worker": lambda: supervision.worker_serving(
                        supervision.broker_url_of(env), redis_url
                    ),
                }
                for trial in range(trials):
                    for program, probe in serving.items():
                        recovery = supervision.kill_and_wait(supervisor, program, probe())
                        recoveries[program].append(recovery)
                        self.say(f"  trial {trial + 1}: {program} back after {seconds(recovery)}")
                        time.sleep(1)  # let the new process settle before the next kill
                restart, restarted_redis = supervision.restart_redis_and_post(
                    supervisor, redis_url, workdir, key, PRODUCT_SKU, stored_events,
                    down_s=redis_down, events=events,
                )  # fmt: skip
                self.say(f"  Redis restart: {restart}")
        finally:
            if restarted_redis is not None:
                restarted_redis.terminate()
                restarted_redis.wait(timeout=10)
        body = self.report(recoveries, restart, load_at_start)
        self.say()
        self.say(body)
        if not no_report:
            write_report_section(REPORT, "bench_supervision", body)
            self.say(f"Report written to {REPORT.relative_to(settings.BASE_DIR)}")

    def report(self, recoveries, restart, load_at_start) -> str:
        lines = [
            "## Supervised processes healing by themselves (`python manage.py bench_supervision`)",
            "",
            f"Machine: {machine_description()}. Date: {time.strftime('%Y-%m-%d')}. 1-minute load "
            f"average {load_at_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end.",
            load_note(load_at_start, os.getloadavg()[0]),
            "supervisord runs the demo's own config (`scripts/supervisord.conf`: gunicorn with 3 "
            "gthread workers, one Celery worker with 2 processes, Celery beat) in an isolated "
            "world (private redis-server without persistence, scratch SQLite DB). Each program "
            "is killed with SIGKILL in turn, as a crash or the OOM killer would; *back* is from "
            "the kill until the killed process's children are gone too and a new one serves: "
            "the web answers `GET /admin/login/` (its new master and workers booted), or the "
            "worker has run a heartbeat task queued right after the kill.",
            "",
            f"| program | kills | back after: median | min | max | within {BACK_WITHIN_S:g} s |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for program, runs in recoveries.items():
            times = [r.seconds for r in runs if r.seconds is not None]
            within = sum(1 for t in times if t < BACK_WITHIN_S)
            lines.append(
                f"| {program} | {len(runs)} | "
                + (
                    f"{statistics.median(times):.1f} s | {min(times):.1f} s | {max(times):.1f} s"
                    if times
                    else "never | - | -"
                )
                + f" | {within} of {len(runs)} |"
            )
        lines += ["", redis_text(restart), "", f"Command: `{self.command}`"]
        return "\n".join(lines)


def seconds(recovery: supervision.Recovery) -> str:
    return "never" if recovery.seconds is None else f"{recovery.seconds:.1f} s"


def redis_text(restart: supervision.RedisRestart) -> str:
    def after(value: float | None) -> str:
        return "never" if value is None else f"{value:.1f} s"

    worker = (
        "The Celery worker rode it out: the same process reconnected to the broker"
        if restart.worker_kept
        else "**The Celery worker exited** (supervisord started a new one)"
    )
    return (
        f"Redis (the broker and the engine's store) killed with SIGKILL and started again, "
        f"empty, {restart.down_s:g} s later on the same port. {worker}; the web server "
        f"{'kept running' if restart.web_kept else 'was restarted'}. `POST /api/v1/events` "
        f"accepted a batch of {restart.events} events {after(restart.accepted_after_s)} after "
        f"the restart, and {restart.applied} of {restart.events} were in the event log "
        f"{after(restart.applied_after_s)} after it (the worker's reconnection backs off 2 s, "
        "then 4 s, ...)."
    )
