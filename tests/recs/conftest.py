"""A small shop behind the render path: products, cached candidate lists, shopper events."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from redis.cluster import RedisCluster

from aisle.conf import aisle_settings
from bench.redis_cluster import local_redis_cluster
from merch.models import Placement
from recs import api_keys, features, redis_clients, redis_keys
from recs.api import throttling
from recs.candidates import store
from recs.events.records import EventRecord
from recs.features.enrich import enrich
from recs.serving import availability, catalog, counters, fallback, merchandising
from recs.serving import redis as serving_redis
from tests.factories import CategoryFactory, EventFactory, ProductFactory, StockFactory
from tests.private_redis import _free_port, start_redis_server

_event_ids = itertools.count()
DEFAULT_PLACEMENTS = (
    ("home", "auto", 8, "none"),
    ("product_detail", "auto", 8, "product"),
    ("cart", "bought_together", 6, "cart"),
    ("category", "auto", 8, "category"),
    ("post_purchase", "bought_together", 6, "cart"),
)


@pytest.fixture(autouse=True)
def fresh_reader_state():
    """Each test starts with empty in-process copies, as a newly started web process does."""
    for module in (catalog, fallback, merchandising, availability, throttling):
        module.clear()
    api_keys.clear_held_keys()
    serving_redis.reset()
    counters.totals.clear()
    yield
    serving_redis.reset()


@pytest.fixture
def default_placements(db):
    """The migration's placements; transactional tests truncate tables, these included."""
    for key, strategy, size, anchor in DEFAULT_PLACEMENTS:
        Placement.objects.get_or_create(
            key=key,
            defaults={"name": key, "default_strategy": strategy, "size": size, "anchor": anchor},
        )


@pytest.fixture
def shop(default_placements):
    """Candles C1-C6, baking K1-K6, bags B1-B4, all in stock, and lists that point at them."""
    candles = CategoryFactory(name="Candles", slug="candles", path="home/candles")
    baking = CategoryFactory(name="Baking", slug="baking", path="kitchen/baking")
    bags = CategoryFactory(name="Bags", slug="bags", path="bags")
    products = {}
    for prefix, category, count in (("C", candles, 6), ("K", baking, 6), ("B", bags, 4)):
        for n in range(1, count + 1):
            sku = f"{prefix}{n}"
            products[sku] = ProductFactory(sku=sku, title=f"{category.name} {n}", category=category)
            StockFactory(product=products[sku], on_hand=5)
    store.write_lists(
        [
            (redis_keys.POPULAR_ALL, ranked("B1", "K1", "C1", "B2", "K2", "C2", "B3", "K3", "C3")),
            (redis_keys.country_popular_list("Germany"), ranked("K4", "K5", "K6", "C4")),
            (redis_keys.category_popular_list("home/candles"), ranked("C6", "C5", "C4", "C3")),
            (redis_keys.similar_cf_list("C1"), ranked("C2", "C3", "K1")),
            (redis_keys.similar_content_list("C1"), ranked("C4", "C5", "C2")),
            (redis_keys.similar_content_list("K1"), ranked("K2", "K3", "K4")),
            (redis_keys.bought_together_list("C1"), ranked("B4", "K6")),
            (redis_keys.user_list("loyal"), ranked("K2", "K3", "C5", "B2", "B3")),
        ]
    )
    store.write_meta({"user": "hybrid#7", "popular": "popularity#3", "similar_cf": "hybrid#7"})
    return products


def ranked(*skus: str) -> list[tuple[str, float]]:
    return [(sku, float(len(skus) - i)) for i, sku in enumerate(skus)]


def touch(*skus: str, event_type: str = "view", user_id: str = "", session_id: str = "s-1"):
    """The shopper viewed (or bought, ...) these products, applied to the online store."""
    now = timezone.now().timestamp()
    records = [
        EventRecord(
            event_id=f"t-{next(_event_ids)}",
            event_type=event_type,
            occurred_at=datetime.fromtimestamp(now - len(skus) + i, tz=UTC),
            user_id=user_id,
            session_id=session_id,
            product_sku=sku,
        )
        for i, sku in enumerate(skus)
    ]
    features.apply_events(enrich(records))


@pytest.fixture
def doomed_redis(settings, tmp_path):
    """A Redis server of the render path's own, so that a test can stop it for real."""
    port = _free_port()
    server = start_redis_server(port, str(tmp_path))
    settings.AISLE = {**settings.AISLE, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    serving_redis.reset()
    yield server
    server.kill()
    server.wait()


@pytest.fixture
def artifact_dir(settings, tmp_path):
    settings.AISLE = {**settings.AISLE, "MODEL_ARTIFACT_DIR": tmp_path / "models"}
    settings.AISLE = {**settings.AISLE, "TRAINING_HOLDOUT_DAYS": 10}
    return aisle_settings.MODEL_ARTIFACT_DIR


@pytest.fixture
def shop_history(artifact_dir):
    """Twelve shoppers over 60 days: lantern buyers also buy candles; bag buyers buy bags."""
    skus = ["LANTERN", "CANDLE", "HOLDER", "BAG", "TOTE", "TIN"]
    for sku in skus:
        StockFactory(product=ProductFactory(sku=sku, title=f"{sku.title()} thing"))
    start = timezone.now() - timedelta(days=60)
    n = 0
    for user in range(12):
        basket = ["LANTERN", "CANDLE", "HOLDER"] if user % 2 else ["BAG", "TOTE", "TIN"]
        for day, sku in enumerate(basket):
            n += 1
            EventFactory(
                event_id=f"h-{n}", event_type="purchase", user_id=f"u{user}", product_sku=sku,
                occurred_at=start + timedelta(days=day * 20 + user), order_id=f"o{user}-{day}",
                country="United Kingdom",
            )  # fmt: skip
    return skus


def skus(result) -> list[str]:
    return [item.sku for item in result.items]


@pytest.fixture(scope="module")
def redis_cluster():
    with local_redis_cluster(nodes=3) as cluster:
        yield cluster


@pytest.fixture
def on_cluster(redis_cluster, settings):
    """The engine's Redis is the cluster (every node emptied); cache and broker stay plain."""
    settings.AISLE = {**settings.AISLE, "REDIS_CLUSTER": True}
    settings.AISLE = {**settings.AISLE, "REDIS_URL": redis_cluster.url}
    serving_redis.reset()
    client = redis_clients.worker_client()
    assert isinstance(client, RedisCluster) and len(client.get_primaries()) == 3
    client.flushdb()  # sent to every primary
    yield client
    serving_redis.reset()
