"""Sustained event ingest: queue depth and accept-to-applied lag while posting at a fixed rate."""

import time
from dataclasses import dataclass, field

import redis as redis_py

from aisle.conf import aisle_settings
from bench import cpu_shares
from bench.events import EventStream, event_tallies
from bench.harness import celery_worker_process
from bench.load import LoadResult, background_load, percentile_ms
from recs import redis_keys
from recs.events.tasks import enqueue_events

SAMPLE_INTERVAL_S = 0.5


@dataclass
class LagSample:
    at_s: float  # seconds since the load started
    queue_batches: int  # batches waiting in the broker's `events` list
    applied_total: int  # events applied so far (m:events)
    interval_lag_s: (
        float | None
    )  # mean accept-to-applied lag of the events applied since the last sample
    interval_rate: float  # events applied per second since the last sample


@dataclass
class SustainedRun:
    worker_processes: int
    target_rate: float
    duration_s: float
    load: LoadResult
    samples: list[LagSample] = field(default_factory=list)
    drain_s: float | None = None  # from the end of the load until the queue was empty
    # Share of one core per role (bench.cpu_shares.ROLES) and for the machine while the load
    # ran; empty where /proc is not there to read.
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return self.load.tallies.get("accepted", 0)

    @property
    def posted_rate(self) -> float:
        return self.accepted / self.load.duration_s if self.load.duration_s else 0.0

    def under_load(self) -> list[LagSample]:
        return [s for s in self.samples if s.at_s <= self.duration_s]

    @property
    def applied_rate(self) -> float:
        """Events applied per second while the load ran (after the first sample)."""
        window = self.under_load()
        if len(window) < 2:
            return 0.0
        elapsed = window[-1].at_s - window[0].at_s
        return (window[-1].applied_total - window[0].applied_total) / elapsed if elapsed else 0.0

    def lag_percentile(self, p: float) -> float:
        """Percentile (s) of the per-interval mean lag, over the load and the drain after it."""
        lags = [s.interval_lag_s for s in self.samples if s.interval_lag_s is not None]
        return percentile_ms(lags, p) / 1000

    @property
    def max_queue(self) -> int:
        return max((s.queue_batches for s in self.samples), default=0)

    @property
    def final_lag_s(self) -> float | None:
        """The lag of the last events applied while the load ran."""
        lags = [s.interval_lag_s for s in self.under_load() if s.interval_lag_s is not None]
        return lags[-1] if lags else None


def monitor_client() -> redis_py.Redis:
    """A client of its own with a patient timeout: the project's clients give up after 50 ms,
    which a loaded machine exceeds."""
    return redis_py.Redis.from_url(aisle_settings.REDIS_URL, socket_timeout=5)


def reset_queue_and_metrics() -> None:
    """Start from an empty events queue and fresh lag counters (bench data only)."""
    monitor_client().delete("events", redis_keys.EVENTS_METRICS)


def read_metrics(client) -> tuple[int, float, int]:
    pipe = client.pipeline(transaction=False)
    pipe.llen("events")
    pipe.hmget(redis_keys.EVENTS_METRICS, "applied_total", "lag_seconds_total")
    queue, (applied, lag_total) = pipe.execute()
    return int(applied or 0), float(lag_total or 0.0), int(queue)


def measure_sustained(
    base_url: str, stream: EventStream, *, rate_per_s: float, duration_s: float,
    worker_processes: int, drain_timeout_s: float, clients: int = 8,
) -> SustainedRun:  # fmt: skip
    """Post `rate_per_s` events/s for `duration_s` with a worker of `worker_processes` processes
    on the events queue, sampling queue depth and lag; then wait for the queue to drain."""
    reset_queue_and_metrics()
    client = monitor_client()
    with celery_worker_process("events", concurrency=worker_processes):
        time.sleep(3)  # the worker's processes start before the clock does
        started = time.monotonic()
        samples: list[LagSample] = []
        last_applied, last_lag_total, last_at = 0, 0.0, 0.0

        def take() -> LagSample:
            nonlocal last_applied, last_lag_total, last_at
            applied, lag_total, queue = read_metrics(client)
            at = time.monotonic() - started
            delta = applied - last_applied
            taken = LagSample(
                at_s=at,
                queue_batches=queue,
                applied_total=applied,
                interval_lag_s=(lag_total - last_lag_total) / delta if delta else None,
                interval_rate=delta / (at - last_at) if at > last_at else 0.0,
            )
            last_applied, last_lag_total, last_at = applied, lag_total, at
            samples.append(taken)
            return taken

        with background_load(
            base_url, stream, concurrency=clients, duration_s=duration_s,
            rate_per_s=rate_per_s / stream.batch_size, inspect=event_tallies, timeout_s=30,
        ) as handle:  # fmt: skip
            cpu_start = cpu_shares.snapshot(client) if cpu_shares.available() else None
            while time.monotonic() - started < duration_s:
                take()
                time.sleep(SAMPLE_INTERVAL_S)
            cpu_end = cpu_shares.snapshot(client) if cpu_start else None
        load = handle.result()
        ended = time.monotonic()
        drain_s = None
        while time.monotonic() - ended < drain_timeout_s:
            taken = take()
            if taken.queue_batches == 0 and taken.applied_total >= load.tallies.get("accepted", 0):
                drain_s = time.monotonic() - ended
                break
            time.sleep(SAMPLE_INTERVAL_S)
    return SustainedRun(
        worker_processes=worker_processes, target_rate=rate_per_s, duration_s=duration_s,
        load=load, samples=samples, drain_s=drain_s,
        cpu=cpu_shares.shares(cpu_start, cpu_end) if cpu_start and cpu_end else {},
    )  # fmt: skip


@dataclass
class DrainRun:
    """A worker emptying a queue that was filled before it started."""

    worker_processes: int
    batch_size: int
    events: int
    applied_rate: float  # events/s between the first and the last applied sample
    drained: bool  # every queued event applied before the timeout


DRAIN_SAMPLE_S = 0.02


def measure_drain(
    stream: EventStream, *, batches: int, worker_processes: int, timeout_s: float
) -> DrainRun:
    """Queue `batches` batches with no worker running, then start a worker of
    `worker_processes` processes and time how fast it applies them: the worker's own rate,
    with the API, the load clients and the worker's start-up off the clock."""
    reset_queue_and_metrics()
    for index in range(batches):
        enqueue_events(stream.records(index))
    total = batches * stream.batch_size
    client = monitor_client()
    first: tuple[float, int] | None = None
    last: tuple[float, int] | None = None
    with celery_worker_process("events", concurrency=worker_processes):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            applied = read_metrics(client)[0]
            now = time.monotonic()
            if applied and first is None:
                first = (now, applied)
            if applied:
                last = (now, applied)
            if applied >= total:
                break
            time.sleep(DRAIN_SAMPLE_S)
    rate = 0.0
    if first and last and last[0] > first[0]:
        rate = (last[1] - first[1]) / (last[0] - first[0])
    return DrainRun(
        worker_processes=worker_processes, batch_size=stream.batch_size, events=total,
        applied_rate=rate, drained=bool(last and last[1] >= total),
    )  # fmt: skip
