"""Ordering a shop's own product listings (search results, category pages) with the engine's
reads: by popularity, or for one shopper.

A listing holds every product of a category or a search, not a carousel's handful, so nothing
here filters or caps: it orders the SKUs it is given and the shop paginates. Popularity is the
trained popular lists the carousels serve (`c:popular:category:<path>`, then `c:popular:all`),
read in one round trip. "For you" is the render path's own read (recs.serving.reads.read_page:
one round trip for the shopper's features, their precomputed list and the neighbour lists of
what they viewed and hold) and its blend under the `personal` strategy, plus the category's
best sellers and, on a page that spans several categories, the shopper's category affinity
from the online feature store (a second round trip, only then). No model is scored here.
"""

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from merch.selectors.merchandising import PlacementConfig
from recs import redis_clients, redis_keys
from recs.candidates.store import decode_skus
from recs.features.online import queue_online_read
from recs.serving import blend_table, catalog, fallback
from recs.serving import redis as serving_redis
from recs.serving.blend import Blend, blend_for
from recs.serving.experiments import Variant
from recs.serving.reads import (
    RankedList,
    Reads,
    Shopper,
    read_neighbours,
    read_page,
    shopper_from,
)
from recs.serving.types import RecommendationContext

logger = logging.getLogger(__name__)

# Beside the shopper's personal part (each list weighted by the tier's row of the tuned blend
# table), the shopper's favourite categories of the page lift their products and the
# category's best sellers keep the shop's favourites in view. Both count this share of the
# strongest personal list the shopper has: the row's weights are tuned relative to each other
# for carousels, not against a listing's popularity, so a fixed weight would let popularity
# drown a shopper whose strongest list the table weighs low (0.25 for an own list is usual).
AFFINITY_SHARE = 0.75
CATEGORY_POPULAR_SHARE = 0.5
# Lists that say something about this shopper; only the segment and trending lists join the
# blend otherwise, and an order made of those alone is the popular order with extra noise.
PERSONAL_SOURCES = frozenset(
    {"user_list", "last_known_good", "content", "viewed_neighbours", "category_affinity"}
)
# How the blend of recs.serving.blend sees a listing: the shopper's own part, nothing anchored.
LISTING_PLACEMENT = PlacementConfig(
    key="listing", name="Product listing", default_strategy="personal", size=1,
    exclude_purchased=False, max_per_category=0, is_active=True, anchor="none",
)  # fmt: skip
PERSONAL_VARIANT = Variant(name="default", strategy="personal")

# Why a shopper's order is the popular one (ListingOrder.why_popular).
NO_HISTORY = "no_history"  # nothing known about the shopper yet
NOTHING_RELATED = "nothing_related"  # their history says nothing about these products
REDIS_DOWN = "redis_down"  # the cache did not answer


@dataclass(frozen=True)
class ListingOrder:
    """The SKUs of a listing, best first, and whether the order is this shopper's own."""

    skus: list[str]
    personal: bool
    why_popular: str = ""  # when not personal: NO_HISTORY, NOTHING_RELATED or REDIS_DOWN
    tier: str = ""  # the shopper's tier as the render path sees it ("" when Redis was down)


def popularity_ranks(category_path: str = "") -> dict[str, int]:
    """Rank (0 = best seller) by SKU: the category's popular list, then the global one for
    what it does not hold. One round trip; with Redis down, the global list this process
    holds. SKUs on neither list have no rank."""
    keys = [redis_keys.POPULAR_ALL]
    if category_path:
        keys.insert(0, redis_keys.category_popular_list(category_path))
    if serving_redis.available():
        try:
            raw = redis_clients.get_many(serving_redis.reader_client(), keys)
            lists = [decode_skus(value) for value in raw]
            fallback.remember_global_popular(lists[-1])
            return ranks_of(*lists)
        except serving_redis.REDIS_ERRORS as error:
            logger.warning("Redis unavailable for listing popularity (%s)", error)
            serving_redis.trip()
    return ranks_of(fallback.global_popular())


def ranks_of(*ranked_lists: Sequence[str]) -> dict[str, int]:
    """Rank by SKU over lists taken in turn: a SKU keeps the place of its first appearance."""
    ranks: dict[str, int] = {}
    for ranked in ranked_lists:
        for sku in ranked:
            ranks.setdefault(sku, len(ranks))
    return ranks


def by_popularity(skus: Iterable[str], ranks: Mapping[str, int]) -> list[str]:
    """The SKUs with a rank by rank, then the others in the order given."""
    unranked = len(ranks)
    indexed = list(enumerate(skus))
    indexed.sort(key=lambda pair: (ranks.get(pair[1], unranked), pair[0]))
    return [sku for _, sku in indexed]


def order_for_shopper(context: RecommendationContext, skus: Sequence[str]) -> ListingOrder:
    """The listing's SKUs ordered for the shopper of `context` (its user and session ids and
    the page's category). Falls back to the popular order, saying why, for a shopper with no
    history, one whose history names none of these products, and when Redis is down; never
    raises for Redis."""
    now_s = context.now_s if context.now_s is not None else time.time()
    if serving_redis.available():
        try:
            return _for_shopper(context, skus, now_s)
        except serving_redis.REDIS_ERRORS as error:
            logger.warning("Redis unavailable for a shopper's listing (%s)", error)
            serving_redis.trip()
    return ListingOrder(by_popularity(skus, ranks_of(fallback.global_popular())), False, REDIS_DOWN)


def _for_shopper(context: RecommendationContext, skus: Sequence[str], now_s: float) -> ListingOrder:
    client = serving_redis.reader_client()
    category = context.category_path
    page = read_page(client, context, category, now_s)
    lists = page.lists
    fallback.remember_global_popular(lists[redis_keys.POPULAR_ALL])
    category_best = lists.get(redis_keys.category_popular_list(category), []) if category else []
    popular = ranks_of(category_best, lists[redis_keys.POPULAR_ALL])
    shopper = shopper_from(context, page.features)
    tier = blend_table.tier_of(shopper.interaction_count)
    if not _has_history(context, shopper, lists):
        return ListingOrder(by_popularity(skus, popular), False, NO_HISTORY, tier)
    read_neighbours(client, lists, shopper)
    cards = catalog.cards(page.catalog_version)
    reads = Reads(
        lists=lists, shopper=shopper, segments=page.segments, trending=page.trending,
        meta=page.meta, table=blend_table.tier_table(page.meta.get("blend")),
    )  # fmt: skip
    blend, _ = blend_for(context, LISTING_PLACEMENT, PERSONAL_VARIANT, tier, reads, cards, category)
    strongest = max(
        (weight for ranked, weight, source, *_ in blend.lists
         if source in PERSONAL_SOURCES and ranked),
        default=1.0,
    )  # fmt: skip
    paths = {sku: cards[sku].category_path for sku in skus if sku in cards}
    if len(set(paths.values())) > 1:  # affinity can only reorder a page of several categories
        affinity = read_category_affinity(client, context, now_s)
        blend.add(affinity_list(paths, affinity, popular), AFFINITY_SHARE * strongest,
                  "category_affinity", "in a category you like")  # fmt: skip
    wanted = set(skus)
    if not _names_any(blend, wanted):
        return ListingOrder(by_popularity(skus, popular), False, NOTHING_RELATED, tier)
    blend.add(category_best, CATEGORY_POPULAR_SHARE * strongest, "category_popular", "popular here")
    blend.deepen()
    chosen = [sku for sku in blend.ranked() if sku in wanted]
    taken = set(chosen)
    rest = by_popularity((sku for sku in skus if sku not in taken), popular)
    return ListingOrder([*chosen, *rest], True, "", tier)


def _has_history(
    context: RecommendationContext, shopper: Shopper, lists: Mapping[str, RankedList]
) -> bool:
    """Anything to personalise with: events in the online store, or a precomputed list."""
    if shopper.interaction_count or shopper.recent or shopper.cart or shopper.purchased:
        return True
    return bool(context.user_id) and bool(
        lists.get(redis_keys.user_list(context.user_id))
        or lists.get(redis_keys.last_known_good_list(context.user_id))
    )


def _names_any(blend: Blend, wanted: set[str]) -> bool:
    """Whether a list about this shopper names a product of the listing."""
    return any(
        source in PERSONAL_SOURCES and not wanted.isdisjoint(ranked)
        for ranked, _, source, *_ in blend.lists
    )


def read_category_affinity(
    client: redis_clients.Client, context: RecommendationContext, now_s: float
) -> dict[str, float]:
    """The shopper's decayed interest per category path (session and user summed), from the
    online feature store in one round trip."""
    ids = [("session", context.session_id), ("user", context.user_id)]
    ids = [(entity, entity_id) for entity, entity_id in ids if entity_id]
    if not ids:
        return {}
    pipe = client.pipeline(transaction=False)
    readers = [
        queue_online_read(pipe, entity, entity_id, ["category_affinity"], now_s=now_s)
        for entity, entity_id in ids
    ]
    replies = iter(pipe.execute())
    affinity: dict[str, float] = {}
    for read in readers:
        for path, score in read(replies)["category_affinity"].items():
            affinity[path] = affinity.get(path, 0.0) + score
    return affinity


def affinity_list(
    paths: Mapping[str, str], affinity: Mapping[str, float], popular: Mapping[str, int]
) -> list[str]:
    """The listing's products of categories the shopper likes: the best-liked category first,
    its best sellers first within it."""
    unranked = len(popular)
    liked = [sku for sku, path in paths.items() if affinity.get(path, 0.0) > 0]
    liked.sort(key=lambda sku: (-affinity[paths[sku]], popular.get(sku, unranked), sku))
    return liked
