"""manage.py bench_faults: a slow model, stopped workers and a Redis restart under steady read load
and a steady event stream, each beside a no-fault baseline in the same run.

Runs in an isolated world (private Redis, scratch SQLite DB) with gunicorn, Celery workers and beat
on loopback, prints a report and writes it to docs/PERFORMANCE.md. A benchmark, not a test.
"""

import json
import os
import time
import uuid
from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from bench import faults as bench
from bench import plots
from bench.events import EventStream
from bench.harness import (
    celery_beat_process,
    command_line,
    gunicorn_server,
    load_note,
    run_in_isolated_world,
    wait_until,
    write_report_section,
)
from bench.read import api_requests
from bench.serving import api_url, build_contexts, load_world, pool_from_world, replay_views
from recs.api_keys import create_api_key
from recs.evaluation.report import machine_description
from recs.serving import fallback

REPORT = Path(settings.BASE_DIR) / "docs" / "PERFORMANCE.md"
SLOW_MODEL_S = 1.2
UNCHANGED_RATIO = 1.25  # "read latency unchanged": p99 within 25 % of its baseline


class Command(BaseCommand):
    help = "Benchmark reads and events under faults (slow model, workers down, Redis restart)."

    def add_arguments(self, parser):
        parser.add_argument("--inner", action="store_true", help="(internal) run inside the world")
        parser.add_argument("--baseline", type=float, default=30.0, help="seconds per baseline")
        parser.add_argument("--slow-model", type=float, default=30.0,
                            help="seconds of the slow-model phase")  # fmt: skip
        parser.add_argument("--workers-down", type=float, default=60.0,
                            help="seconds all Celery workers stay stopped")  # fmt: skip
        parser.add_argument("--redis-down", type=float, default=5.0,
                            help="seconds between killing and restarting Redis")  # fmt: skip
        parser.add_argument("--heal-window", type=float, default=240.0,
                            help="seconds to wait for Aisle to recover from a Redis restart "
                                 "by itself before recovering by hand")  # fmt: skip
        parser.add_argument("--tail", type=float, default=10.0,
                            help="seconds watched after recovery")  # fmt: skip
        parser.add_argument("--read-clients", type=int, default=16)
        parser.add_argument("--event-rate", type=float, default=200.0, help="events/s posted")
        parser.add_argument("--event-batch", type=int, default=10, help="events per request")
        parser.add_argument("--import-limit", type=int, default=150000,
                            help="rows of the shipped data set to import (0: all)")  # fmt: skip
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
        parser.add_argument("--worker-concurrency", type=int, default=2,
                            help="Celery worker processes")  # fmt: skip
        parser.add_argument("--no-report", action="store_true", help="do not write the docs")

    def handle(self, *args, inner, **options):
        if not inner:
            run_in_isolated_world(
                "bench_faults", {"TRUSTED_PROXY_COUNT": "1"}
            )  # one address per simulated shopper
            return
        self.command = command_line("bench_faults")
        self.options = options
        self.run_benchmark(**options)

    def say(self, text: str = "") -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def run_benchmark(self, baseline, slow_model, workers_down, redis_down, heal_window, tail,
                      read_clients, event_rate, event_batch, import_limit, web_workers,
                      worker_concurrency, no_report, **_):  # fmt: skip
        self.load_at_start = os.getloadavg()[0]
        self.say(f"Machine: {machine_description()}")
        self.say(f"Importing the shipped data set ({import_limit or 'all'} rows) and training ...")
        world = load_world(import_limit or None)
        pool = pool_from_world()
        contexts = build_contexts(pool, 100)
        replay_views(contexts)
        reads = api_requests(contexts)
        _, key = create_api_key("bench-faults", "secret", ["write"])
        run_id = uuid.uuid4().hex[:8]
        users = tuple(pool.heavy_users[:500])
        skus = tuple(dict.fromkeys(pool.products))
        collaborative = next(c for c in contexts if c.tier == "collaborative")
        probe_context = collaborative.context.__class__(
            placement="home", user_id=collaborative.context.user_id, limit=8
        )
        probe_target = api_url(probe_context)
        popular = [sku for sku, _ in json.loads(fallback.snapshot_path().read_text())["items"]]
        self.say(
            f"  {world.products:,} products, {world.customers:,} customers, "
            f"{world.candidate_lists:,} lists; reads: {len(reads)} contexts, {read_clients} "
            f"clients; events: {event_rate:g}/s in batches of {event_batch} from "
            f"{len(users)} customers"
        )

        def stream(phase_number: int) -> EventStream:
            return EventStream(key, f"{run_id}p{phase_number}", users, skus, event_batch)

        phases: list[bench.Phase] = []
        workers = bench.Workers(worker_concurrency)
        restarter = bench.RedisRestarter()
        workers.start()
        try:
            with (
                celery_beat_process(str(settings.VAR_DIR)),
                gunicorn_server(workers=web_workers) as base_url,
            ):

                def phase(name, fault, script=None, sold_out=frozenset(), duration=baseline):
                    result = bench.run_phase(
                        name, fault, base_url, reads=reads, read_clients=read_clients,
                        read_inspect=bench.ReadTallies(sold_out), events=stream(len(phases)),
                        event_rate_per_s=event_rate / event_batch, duration_s=duration,
                        probe_target=probe_target, script=script,
                    )  # fmt: skip
                    phases.append(result)
                    self.phase_line(result)
                    return result

                # Warm every web worker's in-process copies before the first baseline.
                phase("warm-up", "", duration=5)
                phases.pop()

                # (a) the model slowed to 1.2 s where models run: the worker-side scoring tasks.
                def stock_outs(run, skus_out):
                    run.watch(baseline / 3)
                    bench.set_stock(skus_out, 0)
                    run.mark("stock-out")
                    run.watch(baseline * 2 / 3)

                phase("baseline (a)", "", lambda run: stock_outs(run, popular[40:43]))
                workers.start({"SCORING_DELAY_S": str(SLOW_MODEL_S)})
                phase(
                    f"(a) scoring slowed to {SLOW_MODEL_S:g} s", "slow_model",
                    lambda run: stock_outs(run, popular[43:46]), duration=slow_model,
                )  # fmt: skip
                workers.start()

                # (b) every Celery worker stopped, then started again.
                phase("baseline (b)", "")

                def workers_stopped(run):
                    run.mark("stop")
                    workers.stop()
                    run.notes["killed"] = workers.killed_after_timeout
                    run.mark("stopped")
                    run.watch(workers_down)
                    run.mark("restart")
                    workers.start()
                    drained = run.watch(
                        max(workers_down * 3, 60), until=lambda s: s.events_queue == 0
                    )
                    run.mark("drained")
                    run.notes["drained"] = drained
                    run.watch(tail)
                    run.mark("end")

                phase("(b) workers stopped", "workers_stopped", workers_stopped)

                # (c) Redis killed and restarted (no persistence, as in this world), once the
                # backlog of (b) is stored, so that the loss counted is the restart's own.
                wait_until(lambda: bench.redis_client().llen("events") == 0, timeout_s=600)
                sold_out = self.sold_out = frozenset(popular[:5])
                bench.set_stock(sorted(sold_out), 0)
                phase("baseline (c)", "", sold_out=sold_out)
                baseline_source = phases[-1].samples[-1].probe.source

                def redis_restart(run):
                    run.notes["baseline_source"] = baseline_source
                    run.notes["unavailable_before_kill"] = bench.unavailable_count()
                    run.mark("kill")
                    run.notes["killed_pid"] = restarter.kill()
                    run.watch(redis_down)
                    restarter.start()
                    run.mark("restarted")
                    run.notes["unavailable_after_restart"] = bench.unavailable_count()
                    # The product's own recovery first (readers, the periodic repair task), with
                    # the worker supervised: restarted at once if it exits, as systemd would.
                    run.notes["worker_restarts"] = 0
                    deadline = time.monotonic() + heal_window
                    healed = False
                    while not healed and time.monotonic() < deadline:
                        if not workers.alive():
                            run.notes.setdefault("worker_exit_code", workers.exit_code)
                            run.notes["worker_restarts"] += 1
                            workers.start()
                        healed = run.watch(1.0, until=lambda s: s.probe.source == baseline_source)
                    run.mark("healed")
                    run.notes["healed_by_itself"] = healed
                    run.notes["unavailable_after_heal"] = bench.unavailable_count()
                    if not healed:  # by hand, as an operator would
                        run.notes["train_s"] = run.run_manage("train", "--if-untrained")
                        run.notes["rebuild_s"] = run.run_manage("rebuild_online_features")
                        run.notes["healed_by_hand"] = run.watch(
                            30, until=lambda s: s.probe.source == baseline_source
                        )
                    run.mark("recovered")
                    run.watch(tail)
                    run.mark("end")

                phase("(c) Redis restarted", "redis_restart", redis_restart, sold_out=sold_out)

                if not workers.alive():
                    # A supervisor would restart it; without one the queue would never drain.
                    self.say("The Celery worker exited during the Redis restart; restarting it.")
                    workers.start()
                self.say("Draining the event queue ...")
                drained = wait_until(
                    lambda: bench.redis_client().llen("events") == 0, timeout_s=300, interval_s=1
                )
                time.sleep(5)  # batches taken by a worker finish
                self.queue_left = bench.redis_client(5).llen("events")
        finally:
            workers.stop()
            restarter.close()
        lost = {
            p.name: (p.events.tallies.get("accepted", 0), bench.persisted_events(f"{run_id}p{i}"))
            for i, p in enumerate(phases)
        }
        self.say(f"Event queue drained: {drained}")
        images = [] if no_report else self.plot(phases)  # plots belong to the report
        body = self.report(world, phases, lost, read_clients, event_rate, event_batch,
                           web_workers, worker_concurrency, images)  # fmt: skip
        self.say()
        self.say(body)
        if not no_report:
            write_report_section(REPORT, "bench_faults", body)
            self.say(f"Report written to {REPORT.relative_to(settings.BASE_DIR)}")

    def phase_line(self, phase: bench.Phase) -> None:
        r = phase.reads
        self.say(
            f"{phase.name:<28} {phase.ended - phase.started:5.0f} s  reads {r.throughput:6.0f}/s "
            f"p50 {r.percentile(50):6.1f} p99 {r.percentile(99):6.1f} ms  statuses "
            f"{dict(r.statuses)} errors {r.errors}  events accepted "
            f"{phase.events.tallies.get('accepted', 0):,} statuses {dict(phase.events.statuses)}"
        )

    def plot(self, phases: list[bench.Phase]) -> list[Path]:
        start = phases[0].started
        p99, queue, unacked = [], [], []
        spans = []
        for phase in phases:
            for offset, value, _ in phase.reads.timeline(1.0):
                p99.append((phase.reads.started - start + offset, value))
            for s in phase.samples:
                if s.events_queue is not None:
                    queue.append((s.at - start, s.events_queue))
                    unacked.append((s.at - start, s.unacked))
            if phase.fault:
                spans.append((phase.started - start, phase.ended - start, phase.name))
        return [
            plots.line_plot(
                plots.IMAGE_DIR / "bench_faults_read_p99.png", {"API read p99 per second": p99},
                "Read p99 through the faults (shaded: fault phases)", "seconds", "p99 ms",
                log_y=True, spans=spans,
            ),
            plots.line_plot(
                plots.IMAGE_DIR / "bench_faults_queues.png",
                {"events queue (batches)": queue, "unacknowledged messages": unacked},
                "Broker during the faults (gaps: Redis down)", "seconds", "messages",
                spans=spans,
            ),
        ]  # fmt: skip

    def report(self, world, phases, lost, read_clients, event_rate, event_batch, web_workers,
               worker_concurrency, images) -> str:  # fmt: skip
        lines = [
            "## Faults under load (`python manage.py bench_faults`)",
            "",
            f"Machine: {machine_description()}. Date: {time.strftime('%Y-%m-%d')}. 1-minute load "
            f"average {self.load_at_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end.",
            load_note(self.load_at_start, os.getloadavg()[0]),
            f"Isolated world: private redis-server (no persistence), scratch SQLite DB with the "
            f"first {world.import_limit or 'all':,} rows of the shipped data set, trained "
            f"({world.candidate_lists:,} candidate lists). gunicorn {web_workers} sync workers, "
            f"one Celery worker ({worker_concurrency} processes, queues "
            f"`{bench.WORKER_QUEUES}`) and Celery beat, all on the same cores as the load: "
            f"{read_clients} clients in flight on `GET /api/v1/recommendations` (300 contexts "
            f"of all tiers) and {event_rate:g} events/s posted in batches of {event_batch} from "
            "real customers (views, clicks, carts, purchases; each triggers the debounced "
            "re-score of the customer's list). Each fault phase follows its own baseline.",
            "",
            "| phase | seconds | reads/s | p50 ms | p99 ms | p99 / baseline | read 5xx | read errors | not cache hits (share of answers) | events accepted | events refused (status) | events stored | lost |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---:|",
        ]
        baseline = None
        for phase in phases:
            r = phase.reads
            if not phase.fault:
                baseline = phase
            ratio = r.percentile(99) / baseline.reads.percentile(99) if phase.fault else 1.0
            shares = bench.fallback_shares(r.tallies)
            refused = {s: n for s, n in phase.events.statuses.items() if s != 202}
            accepted, stored = lost[phase.name]
            lines.append(
                f"| {phase.name} | {phase.ended - phase.started:.0f} | {r.throughput:,.0f} | "
                f"{r.percentile(50):.1f} | {r.percentile(99):.1f} | {ratio:.2f} | "
                f"{r.server_errors} | {r.errors} | "
                + (", ".join(f"{k} {v:.1%}" for k, v in sorted(shares.items())) or "none")
                + f" | {accepted:,} | {refused or 'none'} | {stored:,} | {accepted - stored:,} |"
            )
        if self.queue_left:
            lines += [
                "",
                f"**The events queue did not drain** after the run: {self.queue_left:,} batches "
                "were still queued (counted as lost above).",
            ]
        lines += ["", *self.fault_details(phases), ""]
        lines += self.goals(phases, lost)
        lines += [
            "",
            *(f"![{image.stem}](img/{image.name})" for image in images),
            "",
            f"Command: `{self.command}`",
        ]
        return "\n".join(lines)

    def fault_details(self, phases) -> list[str]:
        by = {p.fault: p for p in phases if p.fault}
        base = {p.name: p for p in phases}
        lines = []
        slow = by.get("slow_model")
        if slow:
            peak = {
                name: (
                    max((s.pending_rescores or 0 for s in p.samples), default=0),
                    max((s.unacked or 0 for s in p.samples), default=0),
                )
                for name, p in (("baseline", base["baseline (a)"]), ("slow", slow))
            }
            lines.append(
                f"(a) Slow model: `SCORING_DELAY_S={SLOW_MODEL_S:g}` in the worker, honoured "
                "where a worker takes up a model to score with (`serving_learner_by_key`: "
                "re-scores after events, sell-out list refreshes, shadow scoring); three "
                "popular products sold out a third into each phase to queue refreshes. Peak "
                f"re-scores waiting to start / unacknowledged broker messages: baseline {peak['baseline'][0]} / "
                f"{peak['baseline'][1]}, slow model {peak['slow'][0]} / {peak['slow'][1]}. "
                "The render path reads precomputed lists and never waits for a model."
            )
        stopped = by.get("workers_stopped")
        if stopped:
            m = stopped.marks
            peak = max((s.events_queue or 0 for s in stopped.samples), default=0)
            down = stopped.reads_between("stopped", "restart")
            drain = stopped.reads_between("restart", "drained")
            lines.append(
                f"(b) Workers stopped for {m['restart'] - m['stopped']:.0f} s (warm shutdown "
                f"took {m['stopped'] - m['stop']:.1f} s"
                + (", then it was killed" if stopped.notes.get("killed") else "")
                + f"): the events queue peaked at {peak:,} "
                f"batches and drained {m['drained'] - m['restart']:.1f} s after the restart"
                f"{'' if stopped.notes.get('drained') else ' (NOT drained within the window)'}. "
                f"Reads while stopped: p50 {down.percentile(50):.1f} ms, p99 "
                f"{down.percentile(99):.1f} ms, 5xx {down.server_errors}; while the restarted "
                f"workers caught up: p50 {drain.percentile(50):.1f} ms, p99 "
                f"{drain.percentile(99):.1f} ms (the backlog's apply competes with gunicorn for "
                "the same cores)."
            )
        redis = by.get("redis_restart")
        if redis:
            lines.append(self.redis_details(redis, base["baseline (c)"]))
        return [line + "\n" for line in lines]

    def goals(self, phases, lost) -> list[str]:
        lines = ["| goal | fault | measured | result |", "|---|---|---|---|"]
        baseline = None
        for phase in phases:
            if not phase.fault:
                baseline = phase
                continue
            ratio = phase.reads.percentile(99) / baseline.reads.percentile(99)
            # A fault may lose what its baseline accepted just before it (e.g. batches still
            # queued when Redis dies), so both phases count.
            accepted = lost[phase.name][0] + lost[baseline.name][0]
            stored = lost[phase.name][1] + lost[baseline.name][1]
            checks = [
                (
                    f"read p99 unchanged (<= {UNCHANGED_RATIO:g}x baseline)",
                    f"{ratio:.2f}x",
                    ratio <= UNCHANGED_RATIO,
                ),
                ("no 5xx on reads", f"{phase.reads.server_errors}", phase.reads.server_errors == 0),
                (
                    "every read answered (fallback where needed)",
                    f"{phase.reads.errors} without answer, "
                    f"{phase.reads.tallies.get('empty', 0)} empty",
                    phase.reads.errors == 0 and not phase.reads.tallies.get("empty"),
                ),
                (
                    "no accepted event lost (fault phase and its baseline)",
                    f"{accepted - stored:,} of {accepted:,}", accepted == stored,
                ),
            ]  # fmt: skip
            for goal, measured, ok in checks:
                lines.append(
                    f"| {goal} | {phase.name} | {measured} | {'met' if ok else 'NOT met'} |"
                )
        return lines

    def redis_details(self, redis: bench.Phase, baseline: bench.Phase) -> str:
        m, notes, samples = redis.marks, redis.notes, redis.samples
        down = redis.reads_between("kill", "restarted")
        healing = redis.reads_between("restarted", "healed")
        after = redis.reads_between("recovered", "end")
        first_cached = bench.first_sample_after(
            samples, m["restarted"],
            lambda s: s.probe.status == 200 and "redis_down" not in s.probe.fallbacks,
        )  # fmt: skip
        recovered = bench.first_sample_after(
            samples, m["restarted"], lambda s: s.probe.source == notes["baseline_source"]
        )
        sources = Counter(s.probe.source for s in samples if m["restarted"] <= s.at < m["healed"])
        sold_out_served = redis.reads.tallies.get("sold_out_served", 0)

        def seconds(value: float | None) -> str:
            return "never" if value is None else f"{value:.1f} s"

        text = (
            f"(c) Redis killed (SIGKILL, pid {notes['killed_pid']}) and restarted "
            f"{m['restarted'] - m['kill']:.1f} s later on the same port, empty: this world runs "
            "it without persistence, so the candidate lists, the online feature store, the "
            "sold-out set, the counters and any event batches still in the broker queue are "
            f"gone. While down: {down.requests:,} reads, p99 {down.percentile(99):.1f} ms, 5xx "
            f"{down.server_errors}, served from the in-process popularity copy. After the "
            "restart, a known customer's home page (probed every 0.5 s) was answered from Redis "
            f"again after {seconds(first_cached)} and was back to its `{notes['baseline_source']}` "
            f"list after {seconds(recovered)} "
        )
        if notes["healed_by_itself"]:
            text += (
                "with no operator action (the periodic repair task queued the list refill and "
                "the feature-store replay); "
            )
        else:
            text += (
                f"(Aisle did not recover by itself within {m['healed'] - m['restarted']:.0f} s; "
                f"then by hand: `manage.py train --if-untrained` {notes['train_s']:.1f} s, "
                f"`manage.py rebuild_online_features` {notes['rebuild_s']:.1f} s); "
            )
        text += (
            "its answers meanwhile: "
            + ", ".join(f"{k} {v}" for k, v in sources.most_common())
            + f". Reads p99 while recovering {healing.percentile(99):.1f} ms, after "
            f"{after.percentile(99):.1f} ms. Sold-out set: {notes['unavailable_before_kill']} "
            f"products before the kill, {notes['unavailable_after_restart']} just after the "
            f"restart, {notes['unavailable_after_heal']} after recovery; answers holding one of "
            f"{len(self.sold_out)} popular products sold out before the restart: "
            f"{sold_out_served:,} (baseline: {baseline.reads.tallies.get('sold_out_served', 0)})."
        )
        if notes["worker_restarts"]:
            text += (
                f" **The Celery worker did not survive the restart**: it exited (code "
                f"{notes.get('worker_exit_code')}) with Celery's 'Unrecoverable error' when the "
                f"broker connection dropped; the bench restarted it {notes['worker_restarts']} "
                "time(s), as a process supervisor would. Without one, nothing consumes the "
                "queues, and nothing heals."
            )
        else:
            text += " The Celery worker survived the restart (it reconnected to the broker)."
        return text
