"""The render path's Redis reads: everything one request needs, in one round trip.

The round trip (recs.serving.round_trip) reads what the page and the shopper's ids name
(config versions, list meta, the shopper's online features, live segment popularity, the
page's candidate lists), the neighbour lists of what the shopper viewed and holds, and the
changes to the sold-out set this process holds in memory. Only when the shopper's anchors turn
out to need a list the round trip did not fetch (a cluster, or a configuration change in flight)
does `read_neighbours` read it in a second one. Every key comes from recs.redis_keys.
"""

import time
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from aisle.conf import aisle_settings
from recs import redis_clients, redis_keys
from recs.candidates.store import decode_skus
from recs.features.definitions import FEATURES
from recs.features.online import queue_online_read
from recs.learners.popularity import hour_band
from recs.serving import availability, blend_table, counters
from recs.serving.round_trip import Anchors, RoundTrip
from recs.serving.types import RecommendationContext, RideAlong

RankedList = list[str]  # SKUs, best first
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
    unavailable: AbstractSet[str]  # the sold-out set, current as of this round trip
    features: dict[str, dict]
    segments: dict[str, RankedList]
    trending: RankedList
    lists: dict[str, RankedList]
    availability_synced: bool  # False: Redis has no sold-out set (lost or never built)


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


def _feature_key(entity: str, name: str, entity_id: str) -> str:
    return FEATURES[(entity, name)].aggregation.storage_key(entity, name, entity_id)


def read_page(
    client,
    context: RecommendationContext,
    page_category: str,
    now_s: float,
    extra_list_keys: Iterable[str] = (),
    ride_along: RideAlong | None = None,
) -> PageRead:
    """The request's one round trip (recs.serving.round_trip): what the page and the
    shopper's ids name, `extra_list_keys`, the neighbour lists of the shopper's anchors, the
    sold-out set's changes, what the caller's `ride_along` asks, and the serving counters'
    flush."""
    trip = RoundTrip()
    trip.get(redis_keys.MERCH_CONFIG_VERSION)
    trip.get(redis_keys.CATALOG_VERSION)
    trip.hgetall(redis_keys.CANDIDATES_META)
    anchors = Anchors(
        page_cart=list(context.cart_skus),
        size=aisle_settings.RECENT_CONTEXT_SIZE,
        purchase_anchors=PURCHASE_ANCHORS,
    )
    feature_reads = []
    for entity, entity_id in (("session", context.session_id), ("user", context.user_id)):
        if entity_id:
            read = queue_online_read(trip, entity, entity_id, SHOPPER_FEATURES[entity], now_s=now_s)
            feature_reads.append((entity, read))
            anchors.recent_keys.append(_feature_key(entity, "recently_viewed", entity_id))
            anchors.cart_keys.append(_feature_key(entity, "cart", entity_id))
    if context.user_id:
        anchors.purchased_key = _feature_key("user", "purchased_products", context.user_id)
    depth = aisle_settings.SERVING_CANDIDATE_DEPTH
    # Live segment popularity: only the ranking matters here, so the decayed scores are not
    # read (ranks in log space equal ranks of the current scores).
    segment_names = [
        (name, f"{name}:{value}")
        for name, value in (("country", context.country), ("device", context.device))
        if value
    ]
    for _, segment in segment_names:
        trip.zrevrange(
            SEGMENT_POPULARITY.storage_key("segment", "popularity", segment), 0, depth - 1
        )
    trip.zrevrange(redis_keys.TRENDING_SCORES, 0, depth - 1)
    list_keys = dedupe([*page_list_keys(context, page_category, now_s), *extra_list_keys])
    for key in list_keys:
        trip.get(key)
    anchors.have = list_keys
    ride_along_at = len(trip.ops)
    if ride_along is not None:
        for key in ride_along.read_keys:
            trip.get(key)
        if ride_along.counter is not None:
            trip.incr(ride_along.counter.key)
            trip.expire(ride_along.counter.key, ride_along.counter.ttl_s)
    counters.queue_flush(trip, now_s)
    reply = trip.run(client, anchors)
    held = (
        availability.read(client)
        if reply.availability is None
        else availability.apply(reply.availability)
    )
    replies = iter(reply.replies)
    page = PageRead(
        config_version=(next(replies) or b"0").decode(),
        catalog_version=(next(replies) or b"0").decode(),
        meta={k.decode(): v.decode() for k, v in (next(replies) or {}).items()},
        unavailable=held or set(),
        features={entity: read(replies) for entity, read in feature_reads},
        segments={name: [sku.decode() for sku in next(replies)] for name, _ in segment_names},
        trending=[sku.decode() for sku in next(replies)],
        lists={key: decode_skus(next(replies)) for key in list_keys},
        availability_synced=held is not None,
    )
    if ride_along is not None:
        answers = iter(reply.replies[ride_along_at:])
        ride_along.values = {key: next(answers) for key in ride_along.read_keys}
        if ride_along.counter is not None:
            ride_along.counter.value = int(next(answers))
    for key, raw in reply.neighbours.items():
        page.lists[key] = decode_skus(raw)
    return page


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
            lists[key] = decode_skus(raw)
