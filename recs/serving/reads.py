"""The render path's Redis reads: what one request needs, in as few round trips as it can.

Round trip 1 reads everything the page and the shopper's ids name (config versions, list meta,
the shopper's online features, live segment popularity, the page's candidate lists); round
trip 2 reads the neighbour lists of what the shopper touched, known only after the first;
availability is checked last, for the products that could be shown, never cached. Every key
comes from recs.redis_keys.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aisle.conf import aisle_settings
from recs import redis_clients, redis_keys
from recs.candidates.store import decode_list
from recs.features.definitions import FEATURES
from recs.features.online import queue_online_read
from recs.learners.popularity import hour_band
from recs.serving import blend_table, counters
from recs.serving.types import RecommendationContext

RankedList = list[tuple[str, float]]
SEGMENT_POPULARITY = FEATURES[("segment", "popularity")].aggregation
SHOPPER_FEATURES = {
    "user": ("interaction_count", "recently_viewed", "cart", "purchased_products"),
    "session": ("interaction_count", "recently_viewed", "cart"),
}
# Purchases (newest first) whose bought-together lists are read as anchors.
PURCHASE_ANCHORS = 3


@dataclass
class Shopper:
    interaction_count: int = 0
    recent: list[str] = field(default_factory=list)  # viewed, newest first
    cart: list[str] = field(default_factory=list)
    purchased: list[str] = field(default_factory=list)  # newest first

    def cart_anchors(self) -> list[str]:
        """What bought-together lists hang off: the cart, then the latest purchases."""
        return dedupe([*self.cart, *self.purchased[:PURCHASE_ANCHORS]])


@dataclass
class Reads:
    """What the blend and the fallback chain read: lists keyed as in Redis, the shopper, the
    live segment and trending rankings, the lists' meta and the tuned blend table."""

    lists: dict[str, RankedList]
    shopper: Shopper
    segments: dict[str, RankedList]
    trending: RankedList
    meta: dict[str, str]
    # Blend weights per tier and source (recs.serving.blend_table), tuned by training.
    table: dict[str, dict[str, float]] = field(default_factory=blend_table.default_table)


@dataclass
class PageRead:
    """The replies of round trip 1."""

    config_version: str
    catalog_version: str
    meta: dict[str, str]
    availability_synced: bool
    features: dict[str, dict]
    segments: dict[str, RankedList]
    trending: RankedList
    lists: dict[str, RankedList]


def dedupe(skus: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(sku for sku in skus if sku))


def page_list_keys(context: RecommendationContext, page_category: str, now_s: float) -> list[str]:
    """The candidate lists a page can use whoever the shopper is."""
    keys = []
    if context.user_id:
        keys += [
            redis_keys.user_list(context.user_id),
            redis_keys.last_known_good_list(context.user_id),
        ]
    if sku := context.product_sku:
        keys += [
            redis_keys.similar_cf_list(sku),
            redis_keys.similar_content_list(sku),
            redis_keys.bought_together_list(sku),
        ]
    if context.country:
        keys.append(redis_keys.country_popular_list(context.country))
    if page_category:
        keys.append(redis_keys.category_popular_list(page_category))
    keys += [
        redis_keys.hour_popular_list(hour_band(time.gmtime(now_s).tm_hour)),
        redis_keys.POPULAR_ALL,
        redis_keys.TRENDING_ALL,
    ]
    return keys


def read_page(client, context: RecommendationContext, page_category: str, now_s: float) -> PageRead:
    """Round trip 1 (the serving counters' flush rides along; its replies are not read)."""
    pipe = client.pipeline(transaction=False)
    pipe.get(redis_keys.MERCH_CONFIG_VERSION)
    pipe.get(redis_keys.CATALOG_VERSION)
    pipe.hgetall(redis_keys.CANDIDATES_META)
    pipe.exists(redis_keys.UNAVAILABLE_SYNCED)
    feature_reads = []
    for entity, entity_id in (("user", context.user_id), ("session", context.session_id)):
        if entity_id:
            read = queue_online_read(pipe, entity, entity_id, SHOPPER_FEATURES[entity], now_s=now_s)
            feature_reads.append((entity, read))
    depth = aisle_settings.SERVING_CANDIDATE_DEPTH
    # Live segment popularity: only the ranking matters here, so the decayed scores are not
    # read (ranks in log space equal ranks of the current scores).
    segment_names = [
        (name, f"{name}:{value}")
        for name, value in (("country", context.country), ("device", context.device))
        if value
    ]
    for _, segment in segment_names:
        pipe.zrevrange(
            SEGMENT_POPULARITY.storage_key("segment", "popularity", segment), 0, depth - 1
        )
    pipe.zrevrange(redis_keys.TRENDING_SCORES, 0, depth - 1)
    list_keys = page_list_keys(context, page_category, now_s)
    for key in list_keys:
        pipe.get(key)
    counters.queue_flush(pipe, now_s)
    replies = iter(pipe.execute())
    return PageRead(
        config_version=(next(replies) or b"0").decode(),
        catalog_version=(next(replies) or b"0").decode(),
        meta={k.decode(): v.decode() for k, v in (next(replies) or {}).items()},
        availability_synced=bool(next(replies)),
        features={entity: read(replies) for entity, read in feature_reads},
        segments={
            name: [(sku.decode(), 1.0) for sku in next(replies)] for name, _ in segment_names
        },
        trending=[(sku.decode(), 1.0) for sku in next(replies)],
        lists={key: decode_list(next(replies)) for key in list_keys},
    )


def shopper_from(context: RecommendationContext, features: dict[str, dict]) -> Shopper:
    """The shopper as the blend sees them: the signed-in user's features with their current
    session's, and the cart the page sent."""
    user, session = features.get("user", {}), features.get("session", {})
    own = user if context.user_id else session
    return Shopper(
        interaction_count=int(own.get("interaction_count", 0)),
        recent=dedupe([*session.get("recently_viewed", []), *user.get("recently_viewed", [])])[
            : aisle_settings.RECENT_CONTEXT_SIZE
        ],
        cart=dedupe([*context.cart_skus, *session.get("cart", {}), *user.get("cart", {})]),
        purchased=list(user.get("purchased_products", [])),
    )


def read_neighbours(
    client, lists: dict[str, RankedList], shopper: Shopper, extra_keys: Iterable[str] = ()
) -> None:
    """Round trip 2 (MGET; per hash slot on a cluster): neighbour lists of what the shopper
    viewed and holds, plus `extra_keys`, added to `lists`."""
    recent, cart = shopper.recent, shopper.cart_anchors()[: aisle_settings.RECENT_CONTEXT_SIZE]
    wanted = [
        *(redis_keys.similar_content_list(sku) for sku in recent),
        *(redis_keys.similar_cf_list(sku) for sku in recent),
        *(redis_keys.bought_together_list(sku) for sku in cart),
        *extra_keys,
    ]
    keys = [key for key in dict.fromkeys(wanted) if key not in lists]
    if keys:
        for key, raw in zip(keys, redis_clients.get_many(client, keys), strict=True):
            lists[key] = decode_list(raw)


class AvailabilityCheck:
    """The unavailable set, asked about only the products that could be shown (SMISMEMBER),
    at request time: a product sold out by a commit is never served after it."""

    def __init__(self, client) -> None:
        self.client = client
        self.checked: set[str] = set()
        self.unavailable: set[str] = set()

    def check(self, skus: Iterable[str]) -> None:
        fresh = [sku for sku in dedupe(skus) if sku not in self.checked]
        if fresh:
            flags = self.client.smismember(redis_keys.UNAVAILABLE, fresh)
            self.checked.update(fresh)
            self.unavailable.update(sku for sku, flag in zip(fresh, flags, strict=True) if flag)
