"""recommend(context) -> Recommendations: the one render path behind the API and the template tag.

Placement -> experiment variant -> tier (from the online feature store) -> candidate lists from
Redis (recs.serving.reads: one round trip, which also brings the sold-out set this process holds
up to date) -> blend with session re-rank (recs.serving.blend) -> filters (sold out, purchased,
in cart, current product) -> merchandising rules -> category diversity -> top K
(recs.serving.assemble). Whatever is missing is filled down the fallback chain, each step named
in the answer and counted; with Redis down the answer comes from in-process copies. No model is
fitted or scored here and the database is not queried per request.
"""

import logging
import time
import uuid
from collections.abc import Collection, Mapping, Sequence

from aisle.conf import aisle_settings
from merch.selectors.catalog import CatalogCard, available_skus
from merch.selectors.merchandising import PlacementConfig
from recs import redis_keys
from recs.candidates.availability import sync_unavailable
from recs.serving import (
    availability,
    blend_table,
    catalog,
    counters,
    fallback,
    merchandising,
    served_log,
)
from recs.serving import redis as serving_redis
from recs.serving.assemble import assemble, fallback_chain, limit
from recs.serving.blend import Blend, blend_for
from recs.serving.experiments import (
    Variant,
    as_serving,
    as_serving_strategy,
    assign_variant,
    control_of,
)
from recs.serving.reads import (
    Reads,
    Shopper,
    dedupe,
    read_neighbours,
    read_page,
    shopper_from,
)
from recs.serving.types import (
    RecommendationContext,
    Recommendations,
    RecommendedItem,
    RideAlong,
)

logger = logging.getLogger(__name__)

# Which ModelVersion (c:meta role) a source's list comes from.
SOURCE_ROLES = {
    "user_list": "user",
    "last_known_good": "user",
    "similar": "similar_cf",
    "viewed_neighbours": "similar_cf",
    "content": "similar_content",
    "bought_together": "bought_together",
    "segment_popular": "popular",
    "category_popular": "popular",
    "global_popular": "popular",
    "trending": "trending",
}


def recommend(
    context: RecommendationContext, ride_along: RideAlong | None = None
) -> Recommendations:
    """The list for one placement on one page. Never raises for a known placement and never
    waits on a model; raises ValueError for an unknown placement. What `ride_along` asks (the
    read API's rate limit, versions the caller checks) goes in the same round trip as the
    reads."""
    now_s = context.now_s if context.now_s is not None else time.time()
    if serving_redis.available():
        try:
            return _serve(context, now_s, ride_along)
        except serving_redis.REDIS_ERRORS as error:
            logger.warning("Redis unavailable on the render path (%s); serving fallback", error)
            serving_redis.trip()
    return _serve_without_redis(context, now_s)


def _placement(placements: dict[str, PlacementConfig], key: str) -> PlacementConfig:
    try:
        return placements[key]
    except KeyError:
        known = ", ".join(sorted(placements)) or "none configured"
        raise ValueError(f"Unknown placement {key!r}; placements are: {known}") from None


def _empty(placement: PlacementConfig, now_s: float, reason: str) -> Recommendations:
    """A switched-off placement: an empty list, counted like any other answer."""
    result = Recommendations(
        placement=placement.key, items=[], tier="anonymous", source="", variant="default",
        model_version="", rec_id=uuid.uuid4().hex, generated_at=0.0, fallbacks=[reason],
        served_at=now_s,
    )  # fmt: skip
    counters.count(result)
    return result


def _page_category(context: RecommendationContext, cards: Mapping[str, CatalogCard]) -> str:
    if context.category_path or context.product_sku not in cards:
        return context.category_path
    return cards[context.product_sku].category_path


def _variant(context, placement, experiments, meta, now_s) -> tuple[Variant, list[str]]:
    """The strategy this request is served with, and a fallback step when a variant's model
    has no lists in the cache (its control serves instead)."""
    if context.strategy_override:
        strategy, model_key = as_serving_strategy(context.strategy_override)
        variant = Variant(name=context.strategy_override, strategy=strategy, model_key=model_key)
    else:
        variant = assign_variant(context, placement, experiments, now_s)
    if variant.model_key and redis_keys.model_meta_field(variant.model_key) not in meta:
        return _control(variant, experiments, placement), [f"variant_unavailable:{variant.name}"]
    return variant, []


def _control(variant: Variant, experiments, placement: PlacementConfig) -> Variant:
    control = control_of(experiments, variant.experiment_id)
    if control is None:
        return Variant(name="default", strategy=placement.default_strategy)
    strategy, model_key = as_serving(control, placement)
    return Variant(
        name=control.name, strategy=strategy, model_key=model_key, is_control=True,
        experiment_id=variant.experiment_id, shadows=variant.shadows,
    )  # fmt: skip


def _model_list_keys(context: RecommendationContext, now_s: float) -> list[str]:
    """The per-user list of the model this shopper's variant serves, guessed from the held
    configuration so that the one round trip brings it (a configuration that changed in the
    meantime costs a second round trip, in read_neighbours)."""
    placements, _, experiments = merchandising.current(None)
    placement = placements.get(context.placement)
    if placement is None or not context.user_id:
        return []
    if context.strategy_override:
        _, model_key = as_serving_strategy(context.strategy_override)
    else:
        model_key = assign_variant(context, placement, experiments, now_s).model_key
    return [redis_keys.model_user_list(model_key, context.user_id)] if model_key else []


def _serve(
    context: RecommendationContext, now_s: float, ride_along: RideAlong | None
) -> Recommendations:
    client = serving_redis.reader_client()
    page_category = _page_category(context, catalog.cards(None))
    page = read_page(
        client, context, page_category, now_s, _model_list_keys(context, now_s), ride_along
    )

    placements, rules, experiments = merchandising.current(page.config_version)
    placement = _placement(placements, context.placement)
    if not placement.is_active:
        return _empty(placement, now_s, "placement_inactive")
    unavailable = page.unavailable
    if not page.availability_synced:
        # Redis lost its data: an empty sold-out set must not read as "all in stock". Rebuild
        # it from the catalog now (one query; idempotent if several requests race).
        try:
            sync_unavailable()
            unavailable = availability.read(client)
        except Exception:
            logger.exception("Could not rebuild the sold-out set; serving the checked fallback")
            unavailable = None
        if unavailable is None:
            return _serve_without_redis(context, now_s)
    cards = catalog.cards(page.catalog_version)
    variant, fallbacks = _variant(context, placement, experiments, page.meta, now_s)
    fallback.remember_global_popular(page.lists[redis_keys.POPULAR_ALL])

    shopper = shopper_from(context, page.features)
    model_list = (
        [redis_keys.model_user_list(variant.model_key, context.user_id)]
        if variant.model_key and context.user_id
        else []
    )
    read_neighbours(client, page.lists, shopper, model_list)
    reads = Reads(
        lists=page.lists, shopper=shopper, segments=page.segments, trending=page.trending,
        meta=page.meta, table=blend_table.tier_table(page.meta.get("blend")),
    )  # fmt: skip
    tier = blend_table.tier_of(shopper.interaction_count)
    blend, blend_fallbacks = blend_for(
        context, placement, variant, tier, reads, cards, page_category
    )
    rules_now = (
        merchandising.rules_in_force(rules, placement.key, page_category, now_s)
        if context.apply_rules
        else []
    )
    items, used, source = _pick(
        context, placement, reads, blend, rules_now, cards, page_category, unavailable, now_s
    )
    return _answer(
        client, context, placement, variant, tier, items, source, page.meta,
        [*fallbacks, *blend_fallbacks, *used], now_s,
    )  # fmt: skip


def _pick(context, placement, reads, blend, rules_now, cards, page_category, unavailable, now_s):
    """The blend's head and the fallback chain, filtered against the sold-out set of this
    round trip; whole lists only when filters left fewer than k."""
    k = limit(context, placement)
    ranked = blend.ranked()[: aisle_settings.SERVING_CANDIDATE_DEPTH * 3]
    chain = fallback_chain(context, reads, page_category, cards)
    items, used, source = assemble(
        context, placement, reads.shopper, blend, ranked, chain, rules_now, cards, unavailable,
        now_s, k,
    )  # fmt: skip
    if len(items) < k:
        blend.deepen()
        chain = fallback_chain(context, reads, page_category, cards, depth=None)
        items, used, source = assemble(
            context, placement, reads.shopper, blend, blend.ranked(), chain, rules_now, cards,
            unavailable, now_s, k,
        )  # fmt: skip
    return items, used, source


def _answer(
    client, context, placement, variant, tier, items, source, meta, fallbacks, now_s
) -> Recommendations:
    """The answer with its provenance, counted and, for experiment traffic, logged."""
    role = SOURCE_ROLES.get(source, "")
    if variant.model_key and role == "user":
        role = redis_keys.model_meta_field(variant.model_key)
    result = Recommendations(
        placement=placement.key,
        items=items,
        tier=tier,
        source=source,
        variant=variant.name,
        model_version=meta.get(role) or _unmodelled_version(source),
        rec_id=uuid.uuid4().hex,
        generated_at=float(meta.get("generated_at", 0) or 0),
        fallbacks=dedupe(fallbacks),
        served_at=now_s,
    )
    if not context.strategy_override:  # shadow scoring is not traffic
        counters.count(result)
    if variant.experiment_id is not None:
        served_log.record(client, context, result, variant)
    return result


def _unmodelled_version(source: str) -> str:
    """What served a list no model wrote: the catalog (newest products), the feature store."""
    if source == "newest":
        return "catalog"
    return "feature-store" if source else ""


def rank_offline(
    context: RecommendationContext,
    placement: PlacementConfig,
    *,
    lists: dict[str, list[tuple[str, float]]],
    interaction_count: int,
    recent: Sequence[str],
    cart: Sequence[str],
    purchased: Sequence[str],
    segments: dict[str, list[tuple[str, float]]],
    trending: list[tuple[str, float]],
    table: dict[str, dict[str, float]] | None,
    cards: Mapping[str, CatalogCard],
    now_s: float,
    unavailable: Collection[str] = (),
) -> tuple[list[RecommendedItem], str, Blend]:
    """The render path's tier router, blend, filters and fallback chain over candidate lists
    held in memory (`lists` keyed like the cache; `recent` and `purchased` newest first).

    The offline replay (recs.evaluation.served) scores with this exactly what a shopper would
    be served; merchandising rules are left out. Returns the items, the tier and the blend
    (its per-source contributions tune the blend table)."""
    shopper = Shopper(interaction_count, list(recent), list(cart), list(purchased))
    reads = Reads(
        lists={key: [sku for sku, _ in ranked] for key, ranked in lists.items()},
        shopper=shopper,
        segments={name: [sku for sku, _ in ranked] for name, ranked in segments.items()},
        trending=[sku for sku, _ in trending],
        meta={},
        table=table or blend_table.default_table(),
    )  # fmt: skip
    tier = blend_table.tier_of(interaction_count)
    variant = Variant(name="default", strategy=placement.default_strategy)
    blend, _ = blend_for(
        context, placement, variant, tier, reads, cards, context.category_path, record_groups=True
    )
    blend.deepen()
    chain = fallback_chain(context, reads, context.category_path, cards, depth=None)
    items, _, _ = assemble(
        context, placement, shopper, blend, blend.ranked(), chain, [], cards, set(unavailable),
        now_s, limit(context, placement),
    )  # fmt: skip
    return items, tier, blend


def _serve_without_redis(context: RecommendationContext, now_s: float) -> Recommendations:
    """Redis is down: the in-process copy of global popularity, checked against the catalog in
    one query so that a sold-out product is still never served; the rules still apply."""
    placements, rules, _ = merchandising.current(None)
    placement = _placement(placements, context.placement)
    if not placement.is_active:
        return _empty(placement, now_s, "placement_inactive")
    cards = catalog.cards(None)
    page_category = _page_category(context, cards)
    rules_now = merchandising.rules_in_force(rules, placement.key, page_category, now_s)
    popular = fallback.global_popular()[: aisle_settings.SERVING_CANDIDATE_DEPTH]
    pinned = [r.sku for r in rules_now if r.action == "pin"]
    newest = catalog.newest(cards)[: aisle_settings.SERVING_CANDIDATE_DEPTH]
    candidates = dedupe([*popular, *pinned, *newest])
    try:
        available = available_skus(candidates) if candidates else set()
    except Exception:  # the database is down too: serving nothing beats serving sold-out items
        logger.exception("Catalog unavailable while Redis is down; serving an empty list")
        available = set()
    unavailable = set(candidates) - available
    chain = [("global_popular", popular, "popular right now"), ("newest", newest, "new in")]
    items, _, _ = assemble(
        context, placement, Shopper(), Blend(0), [], chain, rules_now, cards, unavailable, now_s,
        limit(context, placement),
    )  # fmt: skip
    result = Recommendations(
        placement=placement.key,
        items=items,
        tier="anonymous",
        source="fallback",
        variant="default",
        model_version="in-process",
        rec_id=uuid.uuid4().hex,
        generated_at=fallback.global_popular_generated_at(),
        fallbacks=["redis_down"],
        served_at=now_s,
    )
    counters.count(result)
    return result
