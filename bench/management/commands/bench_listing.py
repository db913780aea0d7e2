"""manage.py bench_listing: how long the storefront's sorted listings take to render.

Runs against the database and Redis the settings name (the demo, after `scripts/demo.sh`), in
process with Django's test client: server-side render time of whole pages, no network. It reads
only; signing the customer in writes one Django session row. A benchmark, not a test.
"""

import os
import time
from collections.abc import Callable
from functools import partial

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.test import Client

from bench.harness import LatencySummary
from bench.serving import counting_redis_sends
from merch.models import Category
from recs.serving.listing import order_for_shopper
from recs.serving.types import RecommendationContext
from storefront.selectors import products_in_category

# (label, who, URL): the rows of the report. "anonymous" has no history: "Recommended for you"
# falls back to the popular order; "customer" is signed in with a precomputed list.
ROWS = (
    ("search 'heart'", "anonymous", "/?q=heart"),
    ("search 'red heart'", "anonymous", "/?q=red+heart"),
    ("category Home, Popular", "anonymous", "/c/home/"),
    ("category Home, Name", "anonymous", "/c/home/?sort=name"),
    ("category Home, Recommended (no history: popular)", "anonymous", "/c/home/?sort=recommended"),
    ("category Home, Recommended (signed-in customer)", "customer", "/c/home/?sort=recommended"),
    ("category Home > Candles & Lights, Recommended (customer)", "customer",
     "/c/home/candles-lights/?sort=recommended"),
)  # fmt: skip


class Command(BaseCommand):
    help = "Render time of search and category pages per sort (median, p95), against this DB."

    def add_arguments(self, parser):
        parser.add_argument("--requests", type=int, default=200, help="timed requests per row")
        parser.add_argument("--warmup", type=int, default=20, help="untimed requests first")
        parser.add_argument("--customer", default="12347", help="a storefront login (demo.sh)")

    def handle(self, *args, requests: int, warmup: int, customer: str, **options):
        user = get_user_model().objects.filter(username=customer).first()
        if user is None:
            raise CommandError(f"No login {customer!r}: run scripts/demo.sh (setup_demo) first.")
        clients = {"anonymous": Client(), "customer": Client()}
        clients["customer"].force_login(user)
        self.stdout.write(
            f"{requests} requests per row after {warmup} untimed; 1-minute load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start"
        )
        self.stdout.write(f"{'page':<58} {'p50 ms':>7} {'p95 ms':>7} {'Redis trips':>11}")
        for label, who, url in ROWS:
            client = clients[who]
            summary, trips = measure(partial(_get, client, url), requests, warmup)
            self.stdout.write(f"{label:<58} {summary.p50_ms:>7.1f} {summary.p95_ms:>7.1f} "
                              f"{trips:>11.2f}")  # fmt: skip
        self.stdout.write("\nThe engine's share: recs.serving.listing.order_for_shopper alone")
        for path in ("home", "home/candles-lights"):
            category = Category.objects.get(path=path)
            skus = list(products_in_category(category).values_list("sku", flat=True))
            for who, user_id in (("anonymous", ""), ("customer", customer)):
                context = RecommendationContext(
                    placement="category", user_id=user_id, session_id=f"bench-{who}",
                    category_path=path,
                )  # fmt: skip
                summary, trips = measure(
                    partial(order_for_shopper, context, skus), requests, warmup
                )
                label = f"{path} ({len(skus)} products), {who}"
                self.stdout.write(f"{label:<58} {summary.p50_ms:>7.2f} {summary.p95_ms:>7.2f} "
                                  f"{trips:>11.2f}")  # fmt: skip


def _get(client: Client, url: str) -> None:
    response = client.get(url)
    if response.status_code != 200:
        raise CommandError(f"{url} answered {response.status_code}")


def measure(call: Callable[[], None], requests: int, warmup: int) -> tuple[LatencySummary, float]:
    """Latency of `call` over `requests` runs after `warmup` untimed ones, and its Redis round
    trips per run."""
    for _ in range(warmup):
        call()
    seconds = []
    with counting_redis_sends() as count:
        for _ in range(requests):
            started = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - started)
    return LatencySummary.of(seconds), count.sends / max(requests, 1)
