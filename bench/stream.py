"""Shopper traffic for the freshness benches: an API client, the history replayed, Redis writes seen."""

import http.client
import json
import multiprocessing
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlparse

import redis

from aisle.conf import aisle_settings
from bench.harness import LatencySummary
from recs import redis_keys
from recs.events.records import EventRecord
from recs.shopper_tokens import HEADER as SHOPPER_TOKEN_HEADER
from recs.shopper_tokens import mint_shopper_token

EVENTS_PATH = "/api/v1/events"
RECOMMENDATIONS_PATH = "/api/v1/recommendations"
MAX_BATCH = 500  # EVENTS_MAX_BATCH's default
REPLAY_ROWS = 20000  # rows of the file after the imported ones: hours of history at 100x
TICK_S = 0.1  # the replayer posts what fell due every tick, as a storefront's beacons batch up
DEVICES = ("mobile", "mobile", "desktop", "desktop", "tablet")


# --- One storefront's calls, in this process


@dataclass(frozen=True)
class Timed:
    """One API call: status, decoded JSON, and perf_counter() at send and at the full answer."""

    status: int
    data: Any
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started


class StorefrontClient:
    """Sequential calls over one keep-alive connection (re-opened when the server closes it):
    events with the storefront's write key, recommendations as a shopper's browser asks."""

    def __init__(self, base_url: str, write_key: str, client_ip: str = "10.250.0.1") -> None:
        url = urlparse(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.write_key = write_key
        self.client_ip = client_ip
        self._connection: http.client.HTTPConnection | None = None

    def _call(self, method: str, target: str, body: bytes | None, headers: dict) -> Timed:
        started = time.perf_counter()
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self._connection.request(method, target, body=body, headers=headers)
                response = self._connection.getresponse()
                raw = response.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()  # the server closed a kept-alive connection: once more, fresh
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                self.close()
            break
        ended = time.perf_counter()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        return Timed(response.status, data, started, ended)

    def post_events(self, events: Sequence[dict]) -> Timed:
        body = json.dumps({"events": list(events)}).encode()
        headers = {"Authorization": f"Bearer {self.write_key}",
                   "Content-Type": "application/json"}  # fmt: skip
        return self._call("POST", EVENTS_PATH, body, headers)

    def recommendations(self, query: dict[str, str]) -> Timed:
        """As the shopper's browser asks: with the shopper token its page carries (minted by
        `{% aisle_head %}`), without which the API ignores the session and user named."""
        target = f"{RECOMMENDATIONS_PATH}?{urlencode(query)}"
        headers = {"X-Forwarded-For": self.client_ip}
        user_id, session_id = query.get("user_id", ""), query.get("session_id", "")
        if user_id or session_id:
            headers[SHOPPER_TOKEN_HEADER] = mint_shopper_token(
                user_id=user_id, session_id=session_id
            )
        return self._call("GET", target, None, headers)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def answer_skus(data: Any) -> list[str]:
    """The SKUs of a recommendations answer, in order (none for an error answer)."""
    if not isinstance(data, dict):
        return []
    return [item.get("sku", "") for item in data.get("items", [])]


def rank_in(data: Any, sku: str) -> int | None:
    """0-based position of `sku` in a recommendations answer, None when absent."""
    skus = answer_skus(data)
    return skus.index(sku) if sku in skus else None


# --- The purchase history, replayed through the events API


def replay_offsets(times_s: Sequence[float], speed: float, max_gap_s: float) -> list[float]:
    """Wall-clock offsets (s) for events at these history times (epoch s, ascending): history
    runs `speed` times faster, and quiet spells (nights, weekends) longer than `max_gap_s` of
    history are cut to that, so a replay of a few minutes is busy throughout."""
    offsets: list[float] = []
    wall = 0.0
    previous: float | None = None
    for t in times_s:
        if previous is not None:
            wall += min(max(t - previous, 0.0), max_gap_s) / speed
        offsets.append(wall)
        previous = t
    return offsets


def purchase_payload(record: EventRecord, prefix: str) -> dict:
    """A historic purchase as the storefront would post it now (no ts: the API stamps it)."""
    event = {
        "event_id": f"{prefix}{record.event_id}"[:64],
        "type": "purchase",
        "user_id": record.user_id,
        "session_id": record.session_id,
        "product_id": record.product_sku,
        "quantity": record.quantity or 1,
        "price": str(record.price),
        "order_id": record.order_id,
    }
    if record.country:
        event["context"] = {"country": record.country}
    return event


def view_payload(event_id: str, session_id: str, sku: str, device: str) -> dict:
    return {"event_id": event_id, "type": "view", "session_id": session_id,
            "product_id": sku, "context": {"device": device}}  # fmt: skip


@dataclass
class ReplayStats:
    """What one replay run posted."""

    purchases: int = 0
    views: int = 0
    accepted: int = 0
    rejected: int = 0
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    post_seconds: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    history_s: float = 0.0  # history covered by the purchases posted
    behind_s: float = 0.0  # the most the replayer fell behind its schedule

    @property
    def post_latency(self) -> LatencySummary:
        return LatencySummary.of(self.post_seconds)

    @property
    def events_per_s(self) -> float:
        return (self.purchases + self.views) / self.wall_s if self.wall_s else 0.0


@dataclass(frozen=True)
class _ReplayJob:
    base_url: str
    write_key: str
    payloads: list[dict]  # purchases, in history order
    offsets: list[float]  # wall offset per purchase
    history_times: list[float]
    views_per_s: float
    view_products: list[str]
    run_tag: str
    max_seconds: float


def _replay_child(job: _ReplayJob, stop: Any, results: Any) -> None:
    try:
        results.put(_replay(job, stop))
    except BaseException as error:  # report, so the parent does not wait for nothing
        results.put(error)


def _replay(job: _ReplayJob, stop: Any) -> ReplayStats:
    client = StorefrontClient(job.base_url, job.write_key)
    rng = random.Random(job.run_tag)
    stats = ReplayStats()
    start = time.monotonic()
    next_purchase, tick, views_due = 0, 0, 0.0
    while not stop.is_set():
        tick += 1
        due_at = tick * TICK_S
        delay = start + due_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elapsed = time.monotonic() - start
        if elapsed >= job.max_seconds:
            break
        stats.behind_s = max(stats.behind_s, -delay)
        batch: list[dict] = []
        first = next_purchase
        while next_purchase < len(job.payloads) and job.offsets[next_purchase] <= elapsed:
            batch.append(job.payloads[next_purchase])
            next_purchase += 1
        if next_purchase > first:
            stats.purchases += next_purchase - first
            stats.history_s = job.history_times[next_purchase - 1] - job.history_times[0]
        views_due += job.views_per_s * TICK_S
        while views_due >= 1 and job.view_products:
            views_due -= 1
            stats.views += 1
            batch.append(view_payload(
                f"browse-{job.run_tag}-{stats.views}", f"browse-{job.run_tag}-{rng.randrange(500)}",
                rng.choice(job.view_products), rng.choice(DEVICES),
            ))  # fmt: skip
        for part in range(0, len(batch), MAX_BATCH):
            answer = client.post_events(batch[part : part + MAX_BATCH])
            stats.requests += 1
            stats.statuses[answer.status] += 1
            stats.post_seconds.append(answer.seconds)
            if isinstance(answer.data, dict) and "accepted" in answer.data:
                stats.accepted += answer.data["accepted"]
                stats.rejected += len(answer.data.get("rejected", []))
    stats.wall_s = time.monotonic() - start
    client.close()
    return stats


class HistoryReplay:
    """The shipped purchase history after the imported part, posted through the events API at
    `speed` times real time, with a steady stream of anonymous views on top. Each run continues
    where the previous one stopped, in a child process of its own."""

    def __init__(
        self, records: Sequence[EventRecord], *, speed: float, max_gap_s: float,
        views_per_s: float, view_products: Sequence[str],
    ) -> None:  # fmt: skip
        self.records = list(records)
        self.speed = speed
        self.max_gap_s = max_gap_s
        self.views_per_s = views_per_s
        self.view_products = list(view_products)
        self.cursor = 0
        self.runs: list[ReplayStats] = []

    @property
    def customers(self) -> set[str]:
        return {r.user_id for r in self.records if r.user_id}

    @contextmanager
    def running(
        self, base_url: str, write_key: str, max_seconds: float = 900.0
    ) -> Iterator[ReplayStats]:
        """Replay while the block runs; the yielded stats are filled in when it exits."""
        records = self.records[self.cursor :]
        times = [r.occurred_at.timestamp() for r in records]
        tag = f"r{len(self.runs)}-{int(time.time())}"
        job = _ReplayJob(
            base_url=base_url, write_key=write_key,
            payloads=[purchase_payload(r, f"replay-{tag}-") for r in records],
            offsets=replay_offsets(times, self.speed, self.max_gap_s), history_times=times,
            views_per_s=self.views_per_s, view_products=self.view_products, run_tag=tag,
            max_seconds=max_seconds,
        )  # fmt: skip
        context = multiprocessing.get_context("fork")
        stop, results = context.Event(), context.Queue()
        process = context.Process(target=_replay_child, args=(job, stop, results), daemon=True)
        stats = ReplayStats()
        process.start()
        try:
            yield stats
        finally:
            stop.set()
            outcome = results.get(timeout=60)
            process.join(timeout=10)
            if isinstance(outcome, BaseException):
                raise RuntimeError(f"the history replay failed: {outcome!r}") from outcome
            stats.__dict__.update(outcome.__dict__)
            self.cursor += stats.purchases
            self.runs.append(stats)


def history_after(
    records: Sequence[EventRecord], after: datetime | None, skus: set[str]
) -> list[EventRecord]:
    """Purchases later than `after` (the end of the imported history) of products in the
    catalog, oldest first."""
    later = [
        r for r in records if (after is None or r.occurred_at > after) and r.product_sku in skus
    ]
    return sorted(later, key=lambda r: r.occurred_at)


def later_history(import_limit: int | None, rows: int = REPLAY_ROWS) -> list[EventRecord]:
    """The shipped file's purchases after the imported part (the next `rows` rows); with the
    whole file imported, its last purchases again (under new event ids when replayed)."""
    from django.db.models import Max

    from recs.datasets.online_retail import DEFAULT_FILE, parse_online_retail
    from recs.models import Event
    from recs.serving.catalog import cards

    limit = import_limit + rows if import_limit else None
    events = parse_online_retail(DEFAULT_FILE, limit=limit).events
    imported_until = Event.objects.aggregate(last=Max("occurred_at"))["last"]
    catalog = set(cards(None))
    later = history_after(events, imported_until, catalog)
    if not later:
        later = history_after(events[-rows // 2 :], None, catalog)
    return later


# --- Writes to cached lists, as Redis announces them


class KeyspaceWatcher:
    """Records when Redis reports a SET on a key matching `pattern` (keyspace notifications,
    switched on in the bench's private Redis), stamped with time.time() on receipt in a thread
    of its own, so a list rewritten by a worker is seen within a millisecond or so."""

    def __init__(self, pattern: str = redis_keys.CANDIDATE_LIST_PREFIX + "*") -> None:
        self.client = redis.Redis.from_url(aisle_settings.REDIS_URL)
        db = self.client.connection_pool.connection_kwargs.get("db", 0)
        self.prefix = f"__keyspace@{db}__:"
        self.pattern = pattern
        self.writes: list[tuple[float, str]] = []  # (epoch s, key), in order of receipt
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "KeyspaceWatcher":
        self.client.config_set("notify-keyspace-events", "K$")
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        pubsub.psubscribe(self.prefix + self.pattern)

        def listen() -> None:
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.2)
                if message and message["data"] == b"set":
                    received = time.time()
                    self.writes.append((received, message["channel"].decode()[len(self.prefix) :]))
            pubsub.close()

        self._thread = threading.Thread(target=listen, name="keyspace-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.client.config_set("notify-keyspace-events", "")

    def first_write_after(self, key: str, after: float) -> float | None:
        return next((t for t, k in self.writes if k == key and t >= after), None)
