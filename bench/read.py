"""The read path under concurrent load: API, product page, a bare view and a per-request model."""

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings

from aisle.conf import aisle_settings
from bench.load import LoadResult, Request, percentile_ms, run_http_load
from bench.serving import USER_AGENTS, BenchContext, api_headers, api_query, api_url
from bench.urls import BARE_PATH, SYNC_MODEL_PATH
from bench.views import BARE_PAYLOAD_ENV
from bench.wsgi import SERVER_TIME_HEADER
from recs.serving.recommend import recommend
from recs.shopper_session import signed_cookie_value
from recs.templatetags.recs import SESSION_CART_KEY, SESSION_COUNTRY_KEY

TARGETS = ("bare view", "API", "product page", "sync model")
BENCH_APP = "bench.wsgi:application"


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
    """One target at one concurrency."""

    target: str
    concurrency: int
    result: LoadResult

    @property
    def server_p50_ms(self) -> float:
        return percentile_ms(self.result.header_values, 50)

    @property
    def server_p99_ms(self) -> float:
        return percentile_ms(self.result.header_values, 99)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.result.statuses.items() if not 200 <= status < 300)


def measure_cell(
    base_url: str, target: str, requests: Sequence[Request], *, concurrency: int,
    duration_s: float, timeout_s: float,
) -> Cell:  # fmt: skip
    result = run_http_load(
        base_url, requests, concurrency=concurrency, duration_s=duration_s, timeout_s=timeout_s,
        inspect=answer_tallies if target == "API" else None, capture_header=SERVER_TIME_HEADER,
    )  # fmt: skip
    return Cell(target, concurrency, result)


def warm_up(base_url: str, targets: Mapping[str, Sequence[Request]], duration_s: float) -> None:
    """Every gunicorn worker loads its catalog copy, templates and the model before timing."""
    for requests in targets.values():
        run_http_load(base_url, requests, concurrency=4, duration_s=duration_s, timeout_s=60)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")
