"""Measurements of the event path: HTTP ingest, worker apply, online feature reads."""

import http.client
import json
import multiprocessing
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlparse

from bench.harness import LatencySummary
from bench.load import Request
from merch.services.catalog import ProductRecord, StockLevel, set_stock_levels, upsert_products
from recs.events.records import EventRecord
from recs.events.services import apply_event_batch
from recs.features import get_online

EVENT_MIX = ["view"] * 6 + ["click"] * 3 + ["add_to_cart"] * 2 + ["purchase"]
COUNTRIES = ["United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands"]
DEVICES = ["mobile", "desktop", "tablet"]


def seed_catalog(products: int) -> list[str]:
    """A synthetic catalog in the bench world's own database."""
    records = [
        ProductRecord(
            sku=f"B{n:05d}",
            title=f"Bench product {n}",
            price=Decimal("3.95"),
            category_path=("Bench", f"Category {n % 20}"),
        )
        for n in range(products)
    ]
    upsert_products(records)
    set_stock_levels(StockLevel(r.sku, 100) for r in records)
    return [r.sku for r in records]


def random_event(rng: random.Random, event_id: str, skus: Sequence[str], users: int) -> dict:
    event_type = rng.choice(EVENT_MIX)
    event = {
        "event_id": event_id,
        "type": event_type,
        "user_id": f"user-{rng.randrange(users)}",
        "session_id": f"session-{rng.randrange(users * 3)}",
        "product_id": rng.choice(skus),
        "ts": (datetime.now(tz=UTC) - timedelta(seconds=rng.uniform(0, 3600))).isoformat(),
        "context": {"device": rng.choice(DEVICES), "country": rng.choice(COUNTRIES)},
    }
    if event_type == "purchase":
        event.update(quantity=rng.randint(1, 4), price="3.95", order_id=f"order-{event_id}")
    return event


@dataclass
class IngestResult:
    batch_size: int
    clients: int
    duration_s: float
    requests: int
    accepted: int
    errors: int
    latency: LatencySummary

    @property
    def events_per_s(self) -> float:
        return self.accepted / self.duration_s if self.duration_s else 0.0


def _client_loop(args: tuple) -> tuple[int, int, int, list[float]]:
    base_url, key, bodies, duration_s = args
    url = urlparse(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    accepted = requests = errors = 0
    deadline = time.monotonic() + duration_s
    for body in bodies:
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        connection.request("POST", "/api/v1/events", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        latencies.append(time.perf_counter() - started)
        requests += 1
        if response.status == 202:
            accepted += json.loads(payload)["accepted"]
        else:
            errors += 1
    connection.close()
    return requests, accepted, errors, latencies


def measure_http_ingest(
    base_url: str, key: str, skus: list[str], *, batch_size: int, clients: int, duration_s: float,
    users: int, max_requests_per_client: int,
) -> IngestResult:  # fmt: skip
    """Post batches from `clients` processes for `duration_s` and count accepted events."""
    rng = random.Random(batch_size)
    run = uuid.uuid4().hex[:8]
    jobs = []
    for client in range(clients):
        bodies = [
            json.dumps(
                {"events": [
                    random_event(rng, f"{run}-{client}-{r}-{n}", skus, users)
                    for n in range(batch_size)
                ]}
            )
            for r in range(max_requests_per_client)
        ]  # fmt: skip
        jobs.append((base_url, key, bodies, duration_s))
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with context.Pool(clients) as pool:
        results = pool.map(_client_loop, jobs)
    elapsed = time.perf_counter() - started
    latencies = [latency for r in results for latency in r[3]]
    return IngestResult(
        batch_size=batch_size,
        clients=clients,
        duration_s=elapsed,
        requests=sum(r[0] for r in results),
        accepted=sum(r[1] for r in results),
        errors=sum(r[2] for r in results),
        latency=LatencySummary.of(latencies),
    )


def record_from_event(raw: dict) -> EventRecord:
    """The record the API makes of one event of the wire format (random_event's)."""
    return EventRecord(
        event_id=raw["event_id"],
        event_type=raw["type"],
        occurred_at=datetime.fromisoformat(raw["ts"]),
        user_id=raw["user_id"],
        session_id=raw["session_id"],
        product_sku=raw["product_id"],
        quantity=raw.get("quantity"),
        price=Decimal(raw["price"]) if "price" in raw else None,
        order_id=raw.get("order_id", ""),
        country=raw["context"]["country"],
        device=raw["context"]["device"],
    )


def measure_inprocess_apply(skus: list[str], *, batches: int, batch_size: int, users: int) -> float:
    """Events/s of apply_event_batch in this one process (log write + online update)."""
    rng = random.Random(1)
    run = uuid.uuid4().hex[:8]
    prepared = [
        (
            f"apply-{run}-{b}",
            [
                record_from_event(random_event(rng, f"apply-{run}-{b}-{n}", skus, users))
                for n in range(batch_size)
            ],
        )
        for b in range(batches)
    ]
    started = time.perf_counter()
    for batch_id, records in prepared:
        apply_event_batch(batch_id, records)
    return batches * batch_size / (time.perf_counter() - started)


def measure_feature_reads(
    entity: str, entity_ids: list[str], reads: int
) -> tuple[LatencySummary, int]:
    """Latency of reading one entity's full feature vector (one pipelined round trip)."""
    rng = random.Random(2)
    timings = []
    feature_count = len(get_online(entity, entity_ids[0]))
    for _ in range(reads):
        entity_id = rng.choice(entity_ids)
        started = time.perf_counter()
        get_online(entity, entity_id)
        timings.append(time.perf_counter() - started)
    return LatencySummary.of(timings), feature_count


# --- Event streams for the load generator (bench.load)


@dataclass(frozen=True)
class EventStream:
    """Batch `index` of unique events (a picklable request source): most from anonymous
    sessions, `customer_share` from real customers, whose events re-score their lists."""

    key: str
    prefix: str
    users: tuple[str, ...]
    skus: tuple[str, ...]
    batch_size: int
    customer_share: float = 0.2
    sessions: int = 5000

    def __call__(self, index: int) -> Request:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}
        body = json.dumps({"events": self.events(index)}).encode()
        return "POST", "/api/v1/events", body, headers

    def records(self, index: int) -> list[EventRecord]:
        """Batch `index` as the records the API would queue."""
        return [record_from_event(event) for event in self.events(index)]

    def events(self, index: int) -> list[dict]:
        rng = random.Random(f"{self.prefix}-{index}")
        events = []
        for n in range(self.batch_size):
            event = random_event(rng, f"{self.prefix}-{index}-{n}", self.skus, 1)
            if rng.random() < self.customer_share:
                event["user_id"] = rng.choice(self.users)
                event["session_id"] = f"bench-events-{event['user_id']}"
            else:
                event["user_id"] = ""
                event["session_id"] = f"bench-events-s{rng.randrange(self.sessions)}"
            events.append(event)
        return events


def event_tallies(status: int, body: bytes) -> dict[str, int]:
    """Events the API accepted (202) or rejected in one answer."""
    if status != 202:
        return {f"status:{status}": 1}
    answer = json.loads(body)
    return {"accepted": answer["accepted"], "rejected": len(answer.get("rejected", []))}
