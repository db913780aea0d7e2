"""Measurements of the render path on a cache hit: recommend(), the template tag, the API, Redis down."""

import copy
import gc
import http.client
import logging
import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import import_module
from io import StringIO
from typing import Any
from urllib.parse import urlencode, urlparse

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.template import engines
from django.test import RequestFactory
from django.test.utils import override_settings
from django.urls import path
from redis.connection import AbstractConnection
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from aisle.conf import aisle_settings
from bench.harness import LatencySummary, free_port
from recs import redis_clients, redis_keys
from recs.candidates.store import writer_client
from recs.events.records import EventRecord
from recs.features import apply_events
from recs.features.enrich import enrich
from recs.serving import redis as serving_redis
from recs.serving.blend_table import TIERS
from recs.serving.catalog import cards
from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext
from recs.shopper_session import signed_cookie_value
from recs.templatetags.recs import SESSION_CART_KEY
from recs.training.pipeline import train_models

# The learners whose lists the render path reads (recs.training.registry.CANDIDATE_SOURCES),
# plus the demographic one the brief names for anonymous visitors.
SERVING_LEARNERS = ("popularity", "trending", "content", "bought_together", "hybrid", "demographic")
PLACEMENTS = ("home", "product_detail", "cart", "category")
API_PATH = "/api/v1/recommendations"
BARE_PATH = "/bench/bare"
DEVICES = ("mobile", "mobile", "desktop", "desktop", "tablet")  # roughly a storefront's mix
USER_AGENTS = {
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "tablet": "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
}
MAX_SESSION_VIEWS = (
    aisle_settings.TIER_COLLABORATIVE_MIN_INTERACTIONS - 1
)  # stays in the content tier
PAGE_LIMIT = 8

# A small product page; the same text without the two tag lines is the baseline.
PAGE_HEAD = """{% load recs %}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} · Aisle demo shop</title></head>
<body><header><a href="/">Aisle</a> <a href="/cart/">Cart</a></header>
<main><h1>{{ title }}</h1><p class="price">{{ price|money:"GBP" }}</p>
<ul>{% for fact in facts %}<li>{{ fact }}</li>{% endfor %}</ul></main>
"""
PAGE_TAG = """{% recommendations placement product=product category=category limit=8 as recs %}
{% recommendation_carousel recs title="You might also like" %}
"""
PAGE_FOOT = "<footer>© Aisle</footer></body></html>\n"


# --- Setup: the shipped data, trained, and a sample of real contexts


@dataclass
class WorldSummary:
    import_limit: int | None
    import_seconds: float
    train_seconds: float
    products: int
    purchase_events: int
    customers: int
    candidate_lists: int


def load_world(import_limit: int | None) -> WorldSummary:
    """Import the shipped Online Retail data into the scratch DB and train the serving learners,
    which fills the candidate cache with real lists for real customers and products."""
    from merch.models import Product
    from recs.models import Event

    started = time.perf_counter()
    call_command("import_online_retail", limit=import_limit, stdout=StringIO())
    imported = time.perf_counter()
    run = train_models(SERVING_LEARNERS)
    return WorldSummary(
        import_limit=import_limit,
        import_seconds=imported - started,
        train_seconds=time.perf_counter() - imported,
        products=Product.objects.count(),
        purchase_events=Event.objects.filter(event_type="purchase").count(),
        customers=Event.objects.exclude(user_id="").values("user_id").distinct().count(),
        candidate_lists=run.candidate_lists,
    )


@dataclass(frozen=True)
class ContextPool:
    """Real values to draw contexts from; products and countries repeat as often as they sell."""

    heavy_users: Sequence[str]  # customers with a collaborative-tier history and a cached list
    products: Sequence[str]
    categories: Sequence[str]
    countries: Sequence[str]


@dataclass(frozen=True)
class BenchContext:
    """One page view to serve again and again: who, where, and what to replay first."""

    tier: str  # the tier it is meant to exercise
    context: RecommendationContext
    views: tuple[str, ...] = ()  # viewed before the measurement (session, and user if known)
    client_ip: str = "127.0.0.1"


def client_ip(n: int) -> str:
    """A distinct private address per shopper, so that each is throttled on its own."""
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def build_contexts(pool: ContextPool, per_tier: int, seed: int = 7) -> list[BenchContext]:
    """`per_tier` contexts for each tier, the placements in turn, interleaved by tier."""
    rng = random.Random(seed)
    heavy = list(pool.heavy_users)
    rng.shuffle(heavy)
    by_tier: dict[str, list[BenchContext]] = {tier: [] for tier in TIERS}
    number = 0
    for i in range(per_tier):
        for tier in TIERS:
            number += 1
            placement = PLACEMENTS[(i + TIERS.index(tier)) % len(PLACEMENTS)]
            page: dict[str, Any] = {}
            if placement == "product_detail":
                page["product_sku"] = rng.choice(pool.products)
            elif placement == "category":
                page["category_path"] = rng.choice(pool.categories)
            elif placement == "cart":
                page["cart_skus"] = tuple(dict.fromkeys(rng.choices(pool.products, k=3)))[
                    : rng.randint(1, 3)
                ]
            views: tuple[str, ...] = ()
            user_id = ""
            if tier == "content":
                views = tuple(rng.choices(pool.products, k=rng.randint(1, MAX_SESSION_VIEWS)))
            elif tier == "collaborative":
                user_id = heavy[i % len(heavy)] if heavy else ""
                views = tuple(rng.choices(pool.products, k=rng.randint(0, 4)))
            context = RecommendationContext(
                placement=placement,
                user_id=user_id,
                session_id=f"bench-{tier}-{i}",
                country=rng.choice(pool.countries) if pool.countries else "",
                device=rng.choice(DEVICES),
                limit=PAGE_LIMIT,
                **page,
            )
            by_tier[tier].append(BenchContext(tier, context, views, client_ip(number)))
    return [c for i in range(per_tier) for c in (by_tier[tier][i] for tier in TIERS)]


def pool_from_world(sample_events: int = 20000, seed: int = 7) -> ContextPool:
    """Customers, products, categories and countries as they occur in the imported event log."""
    from recs.models import Event

    rng = random.Random(seed)
    counts = (
        Event.objects.exclude(user_id="")
        .values("user_id")
        .annotate(n=Count("id"))
        .filter(n__gte=aisle_settings.TIER_COLLABORATIVE_MIN_INTERACTIONS)
        .values_list("user_id", flat=True)
    )
    candidates = sorted(counts)
    pipe = writer_client().pipeline(transaction=False)
    for user in candidates:
        pipe.exists(redis_keys.user_list(user))
    heavy = [user for user, cached in zip(candidates, pipe.execute(), strict=True) if cached]
    events = list(Event.objects.values_list("product_sku", "country").order_by("?")[:sample_events])
    rng.shuffle(events)
    card_map = cards(None)
    products = [sku for sku, _ in events if sku in card_map]
    categories = sorted({card_map[sku].category_path for sku in products} - {""})
    countries = [country for _, country in events if country]
    return ContextPool(heavy, products, categories, countries)


def replay_views(contexts: Sequence[BenchContext]) -> int:
    """Apply each context's views to the online store, as the event workers would have."""
    now = datetime.now(tz=UTC)
    records = [
        EventRecord(
            event_id=f"bench-view-{c.context.session_id}-{n}",
            event_type="view",
            occurred_at=now - timedelta(seconds=60 * (len(c.views) - n)),
            user_id=c.context.user_id,
            session_id=c.context.session_id,
            product_sku=sku,
            country=c.context.country,
            device=c.context.device,
        )
        for c in contexts
        for n, sku in enumerate(c.views)
    ]
    return apply_events(enrich(records))


# --- Timing helpers


@dataclass
class Samples:
    """Timed calls: seconds per call and what each call returned, in order."""

    seconds: list[float] = field(default_factory=list)
    outcomes: list[Any] = field(default_factory=list)
    queries: int = 0  # database queries issued during the timed calls
    gc_pauses: list[tuple[int, float]] = field(default_factory=list)  # (generation, seconds)
    redis_sends: list[int] = field(default_factory=list)  # round trips to Redis, per call
    redis_work: "RedisServerStats | None" = None  # what the server ran for all the calls

    def round_trips(self, predicate: Callable[[Any], bool] | None = None) -> float:
        """Mean Redis round trips per call (of the calls whose outcome matches `predicate`)."""
        sends = [
            n for n, outcome in zip(self.redis_sends, self.outcomes, strict=True)
            if predicate is None or predicate(outcome)
        ]  # fmt: skip
        return sum(sends) / len(sends) if sends else 0.0

    @property
    def max_round_trips(self) -> int:
        return max(self.redis_sends, default=0)

    @property
    def commands_per_request(self) -> float | None:
        """Commands the Redis server ran per call (scripts' inner commands included), or None
        when the server was not asked."""
        if self.redis_work is None:
            return None
        return sum(self.redis_work.calls.values()) / max(len(self.seconds), 1)

    def top_commands(self, n: int = 5) -> list[tuple[str, float]]:
        """The server's most frequent commands, per call: [("evalsha", 1.0), ...]."""
        if self.redis_work is None:
            return []
        calls = max(len(self.seconds), 1)
        return [(name, count / calls) for name, count in self.redis_work.calls.most_common(n)]

    @property
    def full_collections(self) -> tuple[int, float]:
        """How many generation-2 collections ran during the timed calls, and the longest (ms)."""
        full = [seconds for generation, seconds in self.gc_pauses if generation == 2]
        return len(full), max(full, default=0.0) * 1000

    @property
    def summary(self) -> LatencySummary:
        return LatencySummary.of(self.seconds)

    def where(self, predicate: Callable[[Any], bool]) -> LatencySummary:
        return LatencySummary.of(
            [
                s
                for s, outcome in zip(self.seconds, self.outcomes, strict=True)
                if predicate(outcome)
            ]
        )


@contextmanager
def counting_queries() -> Iterator[list[int]]:
    """Count database queries (the render path should issue none on a cache hit)."""
    counter = [0]

    def count(execute, sql, params, many, context):
        counter[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield counter


@contextmanager
def tracking_gc() -> Iterator[list[tuple[int, float]]]:
    """Record the garbage collector's pauses: they explain the odd slow request."""
    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], time.perf_counter() - started[0]))

    gc.callbacks.append(callback)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(callback)


# --- Counting Redis traffic: round trips seen from the client, commands seen by the server


@dataclass
class RedisCount:
    """Redis traffic of a block of code: this process's sends, and (when a stats client was
    given) what the server ran meanwhile, filled in when the block ends."""

    sends: int = 0
    work: "RedisServerStats | None" = None


@contextmanager
def counting_redis_sends() -> Iterator[RedisCount]:
    """Count this process's sends to Redis while the block runs. redis-py writes a command, a
    whole pipeline or a script call with one `send_packed_command` and then waits for the
    replies, so each send is one round trip (a send whose replies nobody waits for counts too)."""
    count = RedisCount()
    original = AbstractConnection.send_packed_command

    def counted_send(self, *args, **kwargs):
        count.sends += 1
        return original(self, *args, **kwargs)

    AbstractConnection.send_packed_command = counted_send
    try:
        yield count
    finally:
        AbstractConnection.send_packed_command = original


@dataclass(frozen=True)
class RedisServerStats:
    """The Redis server's counters at one moment (INFO commandstats and stats): calls per
    command, which in Redis 7 include the commands a script runs, and read events on client
    sockets (about one per round trip of any client)."""

    calls: Counter
    reads: int


def parse_redis_stats(info: Mapping[str, Any]) -> RedisServerStats:
    """From redis-py's parsed INFO: {"cmdstat_get": {"calls": 3, ...}, "total_reads_processed": 9}."""
    calls = Counter(
        {
            name.removeprefix("cmdstat_"): int(stats["calls"])
            for name, stats in info.items()
            if name.startswith("cmdstat_") and isinstance(stats, Mapping)
        }
    )
    return RedisServerStats(calls, int(info.get("total_reads_processed", 0)))


def redis_server_stats(client: Any) -> RedisServerStats:
    """One INFO call (both sections at once, so one command to subtract later)."""
    return parse_redis_stats(client.info("commandstats", "stats"))


def redis_work_between(before: RedisServerStats, after: RedisServerStats) -> RedisServerStats:
    """What the server did between two snapshots, without the snapshots themselves: the first
    INFO is counted in commandstats only once it has answered (so in the second snapshot), and
    the second INFO's read is counted before it runs (so in its own snapshot)."""
    calls = after.calls - before.calls
    calls.subtract({"info": 1})
    return RedisServerStats(+calls, max(after.reads - before.reads - 1, 0))


@contextmanager
def counting_redis(stats_client: Any = None) -> Iterator[RedisCount]:
    """Count the block's Redis traffic: this process's sends and, with `stats_client` (a client
    of the same server, used for nothing else), the commands the server ran meanwhile. The
    INFO calls happen outside the counted sends."""
    before = redis_server_stats(stats_client) if stats_client is not None else None
    with counting_redis_sends() as count:
        yield count
    if before is not None:
        count.work = redis_work_between(before, redis_server_stats(stats_client))


def redis_stats_client() -> Any:
    """A client of the bench's Redis for INFO snapshots, apart from the clients measured."""
    return redis_clients.make_client(socket_timeout=10, connect_timeout=10, cluster=False)


def describe_commands(top: Sequence[tuple[str, float]]) -> str:
    """'evalsha 1.00, xadd 0.10' (per request)."""
    return ", ".join(f"{name} {per_request:.2f}" for name, per_request in top) or "none"


def time_calls(
    call: Callable[[int], Any], *, requests: int, warmup: int, max_seconds: float,
    redis_stats: Any = None,
) -> Samples:  # fmt: skip
    """`warmup` untimed calls, then up to `requests` timed ones within `max_seconds`; counts
    the timed calls' Redis round trips (and, given `redis_stats`, the server's commands)."""
    for i in range(warmup):
        call(i)
    samples = Samples()
    deadline = time.monotonic() + max_seconds
    gc.collect()
    with (
        counting_queries() as queries,
        tracking_gc() as pauses,
        counting_redis(redis_stats) as redis_count,
    ):
        for i in range(requests):
            if time.monotonic() >= deadline:
                break
            sent = redis_count.sends
            started = time.perf_counter()
            outcome = call(warmup + i)
            samples.seconds.append(time.perf_counter() - started)
            samples.redis_sends.append(redis_count.sends - sent)
            samples.outcomes.append(outcome)
    samples.queries = queries[0]
    samples.gc_pauses = pauses
    samples.redis_work = redis_count.work
    return samples


def paired_differences(with_s: Sequence[float], without_s: Sequence[float]) -> list[float]:
    """Per-pair added time (may be negative when noise exceeds the difference)."""
    return [a - b for a, b in zip(with_s, without_s, strict=True)]


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


# --- a. recommend() in process


@dataclass(frozen=True)
class Served:
    tier: str
    source: str
    expected_tier: str
    fallbacks: tuple[str, ...]
    items: int


def measure_recommend(
    contexts: Sequence[BenchContext], *, requests: int, warmup: int, max_seconds: float,
    redis_stats: Any = None,
) -> Samples:  # fmt: skip
    def call(i: int) -> Served:
        bench = contexts[i % len(contexts)]
        result = recommend(bench.context)
        return Served(
            result.tier, result.source, bench.tier, tuple(result.fallbacks), len(result.items)
        )

    return time_calls(
        call, requests=requests, warmup=warmup, max_seconds=max_seconds, redis_stats=redis_stats
    )


# --- b. the template tag


def page_request(bench: BenchContext, factory: RequestFactory) -> Any:
    """A storefront request as middleware leaves it: session (id, cart), user, headers."""
    context = bench.context
    request = factory.get(
        f"/p/{context.product_sku}/" if context.product_sku else "/",
        HTTP_USER_AGENT=USER_AGENTS[context.device],
        HTTP_X_COUNTRY=context.country,
        REMOTE_ADDR=bench.client_ip,
    )
    request.COOKIES[aisle_settings.SHOPPER_SESSION_COOKIE] = signed_cookie_value(context.session_id)
    session = import_module(settings.SESSION_ENGINE).SessionStore()  # no key: no database
    if context.cart_skus:
        session[SESSION_CART_KEY] = {sku: 1 for sku in context.cart_skus}
    request.session = session
    request.user = User(username=context.user_id) if context.user_id else AnonymousUser()
    return request


@dataclass
class TagResult:
    with_tag: Samples
    without_tag: Samples
    added: LatencySummary
    pages_with_carousel: int


def measure_template_tag(
    contexts: Sequence[BenchContext], *, requests: int, warmup: int, max_seconds: float,
    redis_stats: Any = None,
) -> TagResult:  # fmt: skip
    """The page with and without `{% recommendations %}` + `{% recommendation_carousel %}`,
    rendered alternately for the same request so that drift hits both alike. Redis traffic
    is put on the page with the tag (the page without it makes none)."""
    engine = engines["django"]
    with_tag = engine.from_string(PAGE_HEAD + PAGE_TAG + PAGE_FOOT)
    without_tag = engine.from_string(PAGE_HEAD + PAGE_FOOT)
    factory = RequestFactory()
    requests_by_context = [page_request(bench, factory) for bench in contexts]
    card_map = cards(None)
    pages = []
    for bench in contexts:
        card = card_map.get(bench.context.product_sku)
        pages.append(
            {
                "placement": bench.context.placement,
                "product": bench.context.product_sku or None,
                "category": bench.context.category_path or None,
                "title": card.title if card else "Home",
                "price": card.price if card else "",
                "facts": [card.sku, card.category_path] if card else [],
            }
        )

    def render(template, i: int) -> str:
        n = i % len(contexts)
        return template.render(pages[n], requests_by_context[n])

    for i in range(warmup):
        render(with_tag, i)
        render(without_tag, i)
    timed_with, timed_without = Samples(), Samples()
    deadline = time.monotonic() + max_seconds
    gc.collect()
    with (
        counting_queries() as queries,
        tracking_gc() as pauses,
        counting_redis(redis_stats) as redis_count,
    ):
        for i in range(requests):
            if time.monotonic() >= deadline:
                break
            order = (with_tag, timed_with), (without_tag, timed_without)
            for template, samples in order if i % 2 else reversed(order):
                sent = redis_count.sends
                started = time.perf_counter()
                html = render(template, warmup + i)
                samples.seconds.append(time.perf_counter() - started)
                samples.redis_sends.append(redis_count.sends - sent)
                samples.outcomes.append("data-aisle-carousel" in html)
    timed_with.queries, timed_with.gc_pauses = queries[0], pauses
    timed_with.redis_work = redis_count.work
    return TagResult(
        with_tag=timed_with,
        without_tag=timed_without,
        added=LatencySummary.of(paired_differences(timed_with.seconds, timed_without.seconds)),
        pages_with_carousel=sum(timed_with.outcomes),
    )


# --- c. the API in process (server-side) and over HTTP


class BareView(APIView):
    """The floor of a DRF GET: no authentication, permission or throttle, no work; returns a
    constant payload the size of a real answer, so JSON rendering costs the same."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    payload: dict = {}

    def get(self, request):
        return Response(self.payload)


class BenchUrls:
    """A URLconf object (Django accepts one in ROOT_URLCONF): the project's URLs plus the bare
    view, mounted only inside the bench process."""

    def __init__(self, bare_payload: dict) -> None:
        from config.urls import urlpatterns

        self.urlpatterns = [path(BARE_PATH.lstrip("/"), BareView.as_view(payload=bare_payload))]
        self.urlpatterns += urlpatterns


def api_query(context: RecommendationContext) -> dict[str, str]:
    """The query string a storefront sends for this context."""
    query = {
        "placement": context.placement,
        "user_id": context.user_id,
        "session_id": context.session_id,
        "product_id": context.product_sku,
        "category": context.category_path,
        "cart": ",".join(context.cart_skus),
        "country": context.country,
        "device": context.device,
        "limit": str(context.limit or PAGE_LIMIT),
    }
    return {name: value for name, value in query.items() if value}


def api_url(context: RecommendationContext) -> str:
    return f"{API_PATH}?{urlencode(api_query(context))}"


@dataclass(frozen=True)
class Answer:
    status: int
    source: str


_read_key: str | None = None


def bench_read_key() -> str:
    """A secret key with the read scope, made once per process: the benchmarks read shoppers'
    personal lists as a shop's server does (anonymous callers only get context-only lists)."""
    global _read_key
    if _read_key is None:
        from recs.api_keys import create_api_key

        _, _read_key = create_api_key("bench (read)", "secret", ["read"])
    return _read_key


def api_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {bench_read_key()}"}


def wsgi_caller(paths: Sequence[tuple[str, str]]) -> Callable[[int], Answer]:
    """Calls of Django's WSGI handler, as gunicorn makes them, for (path?query, client ip),
    with the bench's read key; the environ is built before the clock starts."""
    handler = WSGIHandler()
    factory = RequestFactory()
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def environ(n: int) -> dict:
        url, ip = paths[n % len(paths)]
        route, _, query = url.partition("?")
        return factory.get(route, REMOTE_ADDR=ip, QUERY_STRING=query, headers=api_headers()).environ

    prepared = [environ(n) for n in range(len(paths))]

    def call(i: int) -> Answer:
        response = handler(dict(prepared[i % len(paths)]), start_response)
        body = b"".join(response)
        response.close()
        status = int(statuses.pop().split()[0])
        source = "fallback" if b'"source":"fallback"' in body else ""
        return Answer(status, source)

    return call


@dataclass
class ApiResult:
    api: Samples
    bare: Samples


def measure_api_inprocess(
    contexts: Sequence[BenchContext], *, requests: int, warmup: int, max_seconds: float,
    redis_stats: Any = None,
) -> ApiResult:  # fmt: skip
    """Server-side cost of the API (middleware, DRF, throttle, recommend(), JSON) next to the
    bare DRF view, both through Django's WSGI handler, alternately."""
    sample = recommend(contexts[0].context).to_dict()
    api_calls = [(api_url(c.context), c.client_ip) for c in contexts]
    bare_calls = [(BARE_PATH, c.client_ip) for c in contexts]
    with override_settings(ROOT_URLCONF=BenchUrls(sample)):
        call_api, call_bare = wsgi_caller(api_calls), wsgi_caller(bare_calls)
        limits = {"requests": requests, "warmup": warmup, "max_seconds": max_seconds / 2}
        api = time_calls(call_api, **limits, redis_stats=redis_stats)
        bare = time_calls(call_bare, **limits, redis_stats=redis_stats)
    return ApiResult(api=api, bare=bare)


def _http_client(job: tuple) -> tuple[list[float], list[int], int]:
    """One load client: sequential GETs over one http.client connection (re-opened when the
    server closes it), client-side latency per request."""
    base_url, calls, max_seconds = job
    url = urlparse(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    latencies: list[float] = []
    statuses: list[int] = []
    closed_by_server = 0
    deadline = time.monotonic() + max_seconds
    for target, ip in calls:
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        connection.request("GET", target, headers={"X-Forwarded-For": ip})
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        statuses.append(response.status)
        if response.will_close:
            closed_by_server += 1
            connection.close()
    connection.close()
    return latencies, statuses, closed_by_server


@dataclass
class HttpResult:
    latency: LatencySummary
    statuses: Counter
    requests: int
    closed_by_server: int


def measure_api_http(
    base_url: str, contexts: Sequence[BenchContext], *, requests: int, warmup: int,
    max_seconds: float,
) -> HttpResult:  # fmt: skip
    """Client-side latency from one load-client process (one request in flight)."""
    calls = [(api_url(c.context), c.client_ip) for c in contexts]
    plan = [calls[i % len(calls)] for i in range(warmup + requests)]
    fork = multiprocessing.get_context("fork")
    with fork.Pool(1) as pool:
        pool.apply(_http_client, ((base_url, plan[:warmup], max_seconds),))
        latencies, statuses, closed = pool.apply(
            _http_client, ((base_url, plan[warmup:], max_seconds),)
        )
    return HttpResult(LatencySummary.of(latencies), Counter(statuses), len(latencies), closed)


# --- d. Redis down


@contextmanager
def redis_unreachable() -> Iterator[str]:
    """The render path's reader and Django's cache (throttle counters) pointed at a closed
    loopback port; restored, with fresh clients, afterwards. The breaker's warning (one per
    retry, once a second) is kept out of the bench's output."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = url
    render_path_log = logging.getLogger("recs.serving.recommend")
    level = render_path_log.level
    with override_settings(AISLE={**settings.AISLE, "REDIS_URL": url}, CACHES=caches):
        serving_redis.reset()
        render_path_log.setLevel(logging.ERROR)
        try:
            yield url
        finally:
            render_path_log.setLevel(level)
            serving_redis.reset()
    serving_redis.reset()


@dataclass
class RedisDownResult:
    recommend: Samples
    api: Samples

    @property
    def fallback_share(self) -> float:
        outcomes = self.recommend.outcomes
        return sum(o.source == "fallback" for o in outcomes) / len(outcomes) if outcomes else 0.0

    @property
    def api_statuses(self) -> Counter:
        return Counter(answer.status for answer in self.api.outcomes)

    @property
    def api_fallback_share(self) -> float:
        outcomes = self.api.outcomes
        return sum(o.source == "fallback" for o in outcomes) / len(outcomes) if outcomes else 0.0


def measure_redis_down(
    contexts: Sequence[BenchContext], *, requests: int, warmup: int, max_seconds: float,
    redis_stats: Any = None,
) -> RedisDownResult:  # fmt: skip
    """The render path and the throttle cache pointed at a closed port; `redis_stats` (a
    client of the bench's live Redis) shows that nothing reaches it meanwhile."""
    limits = {"requests": requests, "warmup": warmup, "max_seconds": max_seconds / 2}
    with redis_unreachable():
        rec = measure_recommend(contexts, **limits, redis_stats=redis_stats)
        calls = [(api_url(c.context), c.client_ip) for c in contexts]
        api = time_calls(wsgi_caller(calls), **limits, redis_stats=redis_stats)
    return RedisDownResult(recommend=rec, api=api)


def describe_sources(samples: Samples, tier: str | None = None) -> str:
    """'user_list 61%, similar 30%, ...' for the answers of one expected tier (or all)."""
    sources = Counter(
        o.source or "empty" for o in samples.outcomes if tier is None or o.expected_tier == tier
    )
    total = sum(sources.values()) or 1
    return ", ".join(f"{name} {n / total:.0%}" for name, n in sources.most_common(4))


def tier_mismatches(samples: Samples) -> int:
    return sum(o.tier != o.expected_tier for o in samples.outcomes)


def empty_answers(samples: Samples) -> int:
    return sum(o.items == 0 for o in samples.outcomes)


def fallback_reasons(samples: Samples) -> Counter:
    return Counter(reason for o in samples.outcomes for reason in o.fallbacks)
