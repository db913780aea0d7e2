"""The read path under concurrent load: API, product page, a bare view and a per-request model,
under each gunicorn worker model compared."""

import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from aisle.conf import aisle_settings
from bench.harness import gunicorn_worker_args
from bench.load import LoadResult, Request, percentile_ms, run_http_load
from bench.serving import (
    USER_AGENTS,
    BenchContext,
    RedisServerStats,
    api_headers,
    api_query,
    api_url,
    redis_server_stats,
    redis_work_between,
)
from bench.urls import BARE_PATH, SYNC_MODEL_PATH
from bench.views import BARE_PAYLOAD_ENV
from bench.wsgi import SERVER_TIME_HEADER
from recs.serving.recommend import recommend
from recs.shopper_session import signed_cookie_value
from recs.templatetags.recs import SESSION_CART_KEY, SESSION_COUNTRY_KEY

TARGETS = ("bare view", "API", "product page", "sync model")
BENCH_APP = "bench.wsgi:application"
DEFAULT_WORKER_MODELS = "sync:2,gthread:2x1,gthread:2x4"
WORKER_MODELS_HELP = (
    "gunicorn worker models to compare, comma-separated CLASS:WORKERS[xTHREADS]: "
    "'sync:2' is 2 sync workers (one request at a time each, connection closed after each "
    "response); 'gthread:2x4' is 2 gthread workers with 4 threads each (HTTP/1.1 connections "
    f"kept alive). Default {DEFAULT_WORKER_MODELS}; the per-request model view runs under the "
    "first only"
)


@dataclass(frozen=True)
class WorkerModel:
    """How gunicorn serves: `workers` processes of `worker_class`, `threads` threads each."""

    worker_class: str
    workers: int
    threads: int = 1

    @property
    def name(self) -> str:
        """As written in --worker-models: 'sync:2', 'gthread:2x4'."""
        threads = f"x{self.threads}" if self.worker_class == "gthread" else ""
        return f"{self.worker_class}:{self.workers}{threads}"

    @property
    def keeps_alive(self) -> bool:
        return self.worker_class == "gthread"

    @property
    def slots(self) -> int:
        """Requests it serves at once."""
        return self.workers * self.threads

    @property
    def description(self) -> str:
        if self.keeps_alive:
            return (
                f"{self.workers} gthread workers x {self.threads} threads (keeps connections alive)"
            )
        return f"{self.workers} sync workers (closes the connection after each response)"

    @property
    def gunicorn_options(self) -> str:
        return " ".join(gunicorn_worker_args(self.workers, self.worker_class, self.threads))


def parse_worker_models(text: str) -> list[WorkerModel]:
    """'sync:2,gthread:2x4' -> the models in that order; ValueError says what is wrong."""
    models: list[WorkerModel] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        worker_class, colon, size = part.partition(":")
        workers, times, threads = size.strip().partition("x")
        if not colon or not workers.isdigit() or (times and not threads.isdigit()):
            raise ValueError(f"worker model {part!r}: write CLASS:WORKERS or CLASS:WORKERSxTHREADS")
        model = WorkerModel(worker_class.strip(), int(workers), int(threads or 1))
        try:
            gunicorn_worker_args(model.workers, model.worker_class, model.threads)
        except ValueError as error:
            raise ValueError(f"worker model {part!r}: {error}") from error
        if model in models:
            raise ValueError(f"worker model {part!r} is given twice")
        models.append(model)
    if not models:
        raise ValueError("no worker model given")
    return models


def parse_levels(text: str) -> list[int]:
    """'1,8,32' -> [1, 8, 32] (client counts, each at least 1)."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise ValueError(f"concurrency {text!r}: comma-separated client counts, each at least 1")
    return levels


def bench_server_env(payload_path: Path) -> dict[str, str]:
    """The environment of a bench gunicorn: bench URLconf, the bare view's payload."""
    return {"ROOT_URLCONF": "bench.urls", BARE_PAYLOAD_ENV: str(payload_path)}


def write_bare_payload(contexts: Sequence[BenchContext], path: Path) -> Path:
    """A real answer of the API, for the bare view to return (same size, same JSON work)."""
    path.write_text(json.dumps(recommend(contexts[0].context).to_dict()))
    return path


def shopper_headers(bench: BenchContext) -> dict[str, str]:
    """What a browser (behind one trusted proxy) sends: its address, user agent and country."""
    context = bench.context
    headers = {"X-Forwarded-For": bench.client_ip, "User-Agent": USER_AGENTS[context.device]}
    if context.country:
        headers["X-Country"] = context.country
    return headers


def create_sessions(contexts: Sequence[BenchContext]) -> dict[str, str]:
    """A stored Django session per shopper holding its cart and country, as a returning
    visitor's browser would present it (with its signed shopper cookie, see page_requests);
    {shopper session id: session key}."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    keys = {}
    for bench in contexts:
        context = bench.context
        session = store()
        if context.cart_skus:
            session[SESSION_CART_KEY] = {sku: 1 for sku in context.cart_skus}
        if context.country:
            session[SESSION_COUNTRY_KEY] = context.country
        session.save()
        keys[context.session_id] = session.session_key
    return keys


def api_requests(contexts: Sequence[BenchContext]) -> list[Request]:
    return [("GET", api_url(c.context), None, {**shopper_headers(c), **api_headers()})
            for c in contexts]  # fmt: skip


def bare_requests(contexts: Sequence[BenchContext]) -> list[Request]:
    return [("GET", BARE_PATH, None, shopper_headers(c)) for c in contexts]


def sync_model_requests(contexts: Sequence[BenchContext]) -> list[Request]:
    return [
        (
            "GET",
            f"{SYNC_MODEL_PATH}?{urlencode(api_query(c.context))}",
            None,
            {**shopper_headers(c), **api_headers()},
        )
        for c in contexts
    ]


def page_requests(
    contexts: Sequence[BenchContext], session_keys: Mapping[str, str], products: Sequence[str],
    seed: int = 11,
) -> list[Request]:  # fmt: skip
    """The storefront's product page (`/p/<sku>/`, the template tag on it) for each shopper;
    a context without a product views one drawn as often as it sells."""
    rng = random.Random(seed)
    requests = []
    for bench in contexts:
        sku = bench.context.product_sku or rng.choice(products)
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={session_keys[bench.context.session_id]}; "
            f"{aisle_settings.SHOPPER_SESSION_COOKIE}={signed_cookie_value(bench.context.session_id)}"
        )
        requests.append(("GET", f"/p/{sku}/", None, {**shopper_headers(bench), "Cookie": cookie}))
    return requests


def answer_tallies(status: int, body: bytes) -> dict[str, int]:
    """Counts of one recommendations answer: its source and each fallback reason (API only)."""
    if status != 200:
        return {f"status:{status}": 1}
    try:
        answer = json.loads(body)
    except ValueError:
        return {"unparsable": 1}
    tallies = {f"source:{answer.get('source') or 'empty'}": 1}
    for reason in answer.get("fallbacks", []):
        tallies[f"fallback:{reason}"] = 1
    if not answer.get("items"):
        tallies["empty"] = 1
    return tallies


@dataclass
class Cell:
    """One target at one concurrency under one worker model."""

    target: str
    concurrency: int
    result: LoadResult
    model: str = ""  # WorkerModel.name
    redis: RedisServerStats | None = None  # what the bench's Redis ran during the cell

    @property
    def server_p50_ms(self) -> float:
        return percentile_ms(self.result.header_values, 50)

    @property
    def server_p99_ms(self) -> float:
        return percentile_ms(self.result.header_values, 99)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.result.statuses.items() if not 200 <= status < 300)

    @property
    def sent(self) -> int:
        """Requests sent: answered or failed."""
        return self.result.requests + self.result.errors

    @property
    def redis_commands_per_request(self) -> float | None:
        if self.redis is None:
            return None
        return sum(self.redis.calls.values()) / max(self.sent, 1)

    @property
    def redis_reads_per_request(self) -> float | None:
        """Read events of the Redis server per request: its round trips, seen from the server."""
        return None if self.redis is None else self.redis.reads / max(self.sent, 1)


def measure_cell(
    base_url: str, target: str, requests: Sequence[Request], *, concurrency: int,
    duration_s: float, timeout_s: float, model: str = "", redis_stats: Any = None,
) -> Cell:  # fmt: skip
    """One load run; with `redis_stats` (a client of the bench's Redis) also what the Redis
    server ran meanwhile (for all the load's requests, from every gunicorn worker)."""
    before = redis_server_stats(redis_stats) if redis_stats is not None else None
    result = run_http_load(
        base_url, requests, concurrency=concurrency, duration_s=duration_s, timeout_s=timeout_s,
        inspect=answer_tallies if target == "API" else None, capture_header=SERVER_TIME_HEADER,
    )  # fmt: skip
    redis = None
    if before is not None:
        redis = redis_work_between(before, redis_server_stats(redis_stats))
    return Cell(target, concurrency, result, model, redis)


def warm_up(base_url: str, targets: Mapping[str, Sequence[Request]], duration_s: float) -> None:
    """Every gunicorn worker loads its catalog copy, templates and the model before timing."""
    for requests in targets.values():
        run_http_load(base_url, requests, concurrency=4, duration_s=duration_s, timeout_s=60)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


def goal_level(levels: Sequence[int], preferred: int = 32) -> int:
    """The concurrency the server-side p99 goal is read at: `preferred` if measured, else the
    highest."""
    return preferred if preferred in levels else max(levels)


def choice_levels(levels: Sequence[int]) -> list[int]:
    """The concurrencies a model is chosen by: the goal's 8 and 32 clients where measured,
    else every level (one noisy cell must not choose the demo's server)."""
    return [level for level in levels if level in CHOICE_LEVELS] or list(levels)


CHOICE_LEVELS = (8, 32)


def chosen_model(
    cells: Sequence[Cell], models: Sequence[WorkerModel], levels: Sequence[int]
) -> WorkerModel:
    """The model that served the API at the highest rate summed over `levels` clients: the
    demo's model (the first one given wins a tie)."""
    rates: Counter = Counter()
    for c in cells:
        if c.target == "API" and c.concurrency in levels:
            rates[c.model] += c.result.throughput
    return max(models, key=lambda m: rates.get(m.name, 0.0))


def redis_per_request(cells: Sequence[Cell]) -> tuple[float, float, Counter]:
    """(server reads, commands, {command: calls}) per request over `cells`, from the Redis
    server's counters."""
    counted = [c for c in cells if c.redis is not None]
    sent = max(sum(c.sent for c in counted), 1)
    calls: Counter = sum((c.redis.calls for c in counted), Counter())
    reads = sum(c.redis.reads for c in counted)
    per_command = Counter({name: n / sent for name, n in calls.items()})
    return reads / sent, sum(calls.values()) / sent, per_command
