"""Faults under load: a slow model, stopped workers, a Redis restart, each beside a baseline."""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import redis as redis_py
from django.conf import settings
from django.db import OperationalError

from aisle.conf import aisle_settings
from bench.events import EventStream, event_tallies
from bench.harness import BASE_DIR, celery_worker_process, wait_until
from bench.load import LoadResult, Request, background_load
from bench.read import answer_tallies
from bench.serving import api_headers
from merch.services.catalog import StockLevel, set_stock_levels
from recs import redis_keys

WORKER_QUEUES = "default,events,scoring,training"
SAMPLE_INTERVAL_S = 0.5
PENDING_RESCORE_MATCH = redis_keys.rescore_pending("*")


# --- The load: reads on the API and a stream of event batches


@dataclass(frozen=True)
class ReadTallies:
    """answer_tallies, plus how many answers held a product that was sold out at the start."""

    sold_out: frozenset[str] = frozenset()

    def __call__(self, status: int, body: bytes) -> dict[str, int]:
        tallies = answer_tallies(status, body)
        if status == 200 and self.sold_out:
            skus = {item["sku"] for item in json.loads(body).get("items", [])}
            if skus & self.sold_out:
                tallies["sold_out_served"] = 1
        return tallies


# --- The machinery the faults act on


class Workers:
    """The Celery worker process(es), started and stopped on demand."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._stack: ExitStack | None = None
        self._process: subprocess.Popen | None = None
        self.killed_after_timeout = 0  # warm shutdowns that did not finish in time

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        self.stop()
        self._stack = ExitStack()
        self._process = self._stack.enter_context(
            celery_worker_process(WORKER_QUEUES, self.concurrency, extra_env=extra_env)
        )

    def alive(self) -> bool:
        """Whether the worker still runs (Celery exits on an error it cannot recover from)."""
        return self._process is not None and self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def stop(self) -> float:
        """Warm shutdown (running tasks finish); a worker still busy after the harness's wait is
        killed. Returns the seconds it took."""
        started = time.perf_counter()
        if self._stack is not None:
            process = self._process
            try:
                self._stack.close()
            except subprocess.TimeoutExpired:
                self.killed_after_timeout += 1
                if process is not None:
                    process.kill()
                    process.wait(timeout=30)
            self._stack = None
            self._process = None
        return time.perf_counter() - started


def redis_client(timeout_s: float = 0.2) -> redis_py.Redis:
    return redis_py.Redis.from_url(
        aisle_settings.REDIS_URL, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )


class RedisRestarter:
    """Kills the world's redis-server (found by the pid it reports) and starts a new one with
    the same options on the same port; the new one is stopped by `close()`."""

    def __init__(self) -> None:
        self.port = urlparse(aisle_settings.REDIS_URL).port
        self.process: subprocess.Popen | None = None

    def kill(self) -> int:
        pid = int(redis_client(1.0).info("server")["process_id"])
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not answers(), timeout_s=5)
        return pid

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind",
             "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(settings.VAR_DIR)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if not wait_until(answers, timeout_s=10):
            raise RuntimeError("the restarted redis-server does not answer")

    def close(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def answers() -> bool:
    try:
        return bool(redis_client().ping())
    except redis_py.RedisError:
        return False


def set_stock(skus: Sequence[str], on_hand: int, attempts: int = 20) -> int:
    """Set these products' stock through the merchandising service; retried, because SQLite
    refuses a transaction that must upgrade to a write lock while a worker writes (it does not
    wait for it); returns the attempts it took."""
    for attempt in range(1, attempts + 1):
        try:
            set_stock_levels(StockLevel(sku, on_hand) for sku in skus)
            return attempt
        except OperationalError:
            time.sleep(0.1 * attempt)
    raise RuntimeError(f"could not set stock of {list(skus)} in {attempts} attempts")


def unavailable_count() -> int | None:
    """Products in the render path's sold-out set (`avail:unavailable`); None: Redis down."""
    try:
        return int(redis_client().scard(redis_keys.UNAVAILABLE))
    except redis_py.RedisError:
        return None


def serving_totals() -> dict[str, int] | None:
    """The render path's cumulative counters (m:serving:total), None while Redis is down."""
    try:
        return {
            k.decode(): int(v) for k, v in redis_client().hgetall(redis_keys.SERVING_TOTALS).items()
        }
    except redis_py.RedisError:
        return None


# --- Watching a phase


@dataclass
class Probe:
    """One answer for a known customer's home page, asked by the bench itself."""

    at: float
    status: int
    source: str
    fallbacks: tuple[str, ...]


def probe(base_url: str, target: str) -> Probe:
    url = urlparse(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=2)
    try:
        connection.request(
            "GET", target, headers={"X-Forwarded-For": "10.255.255.254", **api_headers()}
        )
        response = connection.getresponse()
        body = response.read()
        answer = json.loads(body) if response.status == 200 else {}
        return Probe(
            time.time(), response.status, answer.get("source") or "empty",
            tuple(answer.get("fallbacks", ())),
        )  # fmt: skip
    except (OSError, ValueError):
        return Probe(time.time(), 0, "no answer", ())
    finally:
        connection.close()


@dataclass
class Sample:
    at: float
    events_queue: int | None  # batches waiting in the broker's `events` list; None: Redis down
    scoring_queue: int | None
    unacked: int | None  # messages taken by workers, not yet acknowledged (incl. countdowns)
    pending_rescores: int | None  # users whose re-score is scheduled and has not started
    probe: Probe


def sample(base_url: str, probe_target: str) -> Sample:
    try:
        client = redis_client()
        pipe = client.pipeline(transaction=False)
        pipe.llen("events")
        pipe.llen("scoring")
        pipe.hlen("unacked")
        events_queue, scoring_queue, unacked = pipe.execute()
        pending = sum(1 for _ in client.scan_iter(match=PENDING_RESCORE_MATCH, count=5000))
    except redis_py.RedisError:
        events_queue = scoring_queue = unacked = pending = None
    return Sample(
        time.time(), events_queue, scoring_queue, unacked, pending,
        probe(base_url, probe_target),
    )  # fmt: skip


@dataclass
class Phase:
    name: str
    fault: str  # "" for a baseline
    started: float
    ended: float
    reads: LoadResult
    events: LoadResult
    samples: list[Sample]
    marks: dict[str, float] = field(default_factory=dict)  # event name -> epoch seconds
    serving_delta: dict[str, int] | None = None  # m:serving:total over the phase (None: lost)
    notes: dict[str, Any] = field(default_factory=dict)

    def reads_between(self, start_mark: str, end_mark: str) -> LoadResult:
        return self.reads.between(self.marks[start_mark], self.marks[end_mark])


class PhaseRun:
    """A phase in progress: the load handles, the samples and the marks, for actions to use."""

    def __init__(self, base_url: str, probe_target: str) -> None:
        self.base_url = base_url
        self.probe_target = probe_target
        self.samples: list[Sample] = []
        self.marks: dict[str, float] = {}
        self.notes: dict[str, Any] = {}

    def mark(self, name: str) -> float:
        self.marks[name] = time.time()
        return self.marks[name]

    def watch(self, seconds: float, until: Callable[[Sample], bool] | None = None) -> bool:
        """Sample every SAMPLE_INTERVAL_S for `seconds`, or until `until(sample)` holds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            taken = sample(self.base_url, self.probe_target)
            self.samples.append(taken)
            if until is not None and until(taken):
                return True
            time.sleep(max(0.0, SAMPLE_INTERVAL_S - (time.time() - taken.at)))
        return False

    def run_manage(self, *args: str) -> float:
        """Run a management command as an operator would (its own process), watching
        meanwhile; returns its seconds."""
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=BASE_DIR,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while process.poll() is None:
            self.watch(SAMPLE_INTERVAL_S)
        if process.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({process.returncode})")
        return time.perf_counter() - started


def run_phase(
    name: str, fault: str, base_url: str, *, reads: Sequence[Request], read_clients: int,
    read_inspect: Callable[[int, bytes], dict[str, int]], events: EventStream,
    event_rate_per_s: float, duration_s: float, probe_target: str,
    script: Callable[[PhaseRun], None] | None = None,
) -> Phase:  # fmt: skip
    """Run the steady load for the phase: either `duration_s` of watching, or `script` (which
    applies and removes the fault, watching as it goes)."""
    before = serving_totals()
    run = PhaseRun(base_url, probe_target)
    started = time.time()
    with (
        background_load(base_url, reads, concurrency=read_clients, inspect=read_inspect,
                        timeout_s=10) as read_handle,
        background_load(base_url, events, concurrency=4, rate_per_s=event_rate_per_s,
                        inspect=event_tallies, timeout_s=10) as event_handle,
    ):  # fmt: skip
        if script is None:
            run.watch(duration_s)
        else:
            script(run)
    ended = time.time()
    after = serving_totals()
    delta = None
    if (
        before is not None
        and after is not None
        and all(after.get(k, 0) >= v for k, v in before.items())
    ):
        delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
    return Phase(
        name=name, fault=fault, started=started, ended=ended, reads=read_handle.result(),
        events=event_handle.result(), samples=run.samples, marks=run.marks,
        serving_delta=delta, notes=run.notes,
    )  # fmt: skip


# --- Summaries


def fallback_shares(tallies: Counter) -> dict[str, float]:
    """Share of answered reads per fallback reason and per non-cached source."""
    answered = sum(v for k, v in tallies.items() if k.startswith("source:"))
    if not answered:
        return {}
    shares = {k: v / answered for k, v in tallies.items() if k.startswith("fallback:")}
    for source in ("fallback", "empty"):
        if tallies.get(f"source:{source}"):
            shares[f"source:{source}"] = tallies[f"source:{source}"] / answered
    return shares


def first_sample_after(
    samples: Sequence[Sample], start: float, predicate: Callable[[Sample], bool]
) -> float | None:
    """Seconds from `start` to the first sample at or after it for which `predicate` holds."""
    for taken in samples:
        if taken.at >= start and predicate(taken):
            return taken.at - start
    return None


def persisted_events(prefix: str) -> int:
    from recs.models import Event

    return Event.objects.filter(event_id__startswith=f"{prefix}-").count()
