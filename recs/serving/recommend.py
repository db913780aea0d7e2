"""recommend(context) -> Recommendations: the one render path behind the API and the template tag.

Placement -> experiment variant -> tier (from the online feature store) -> candidate lists from
Redis (two pipelined round trips) -> blend with session re-rank -> filters (availability read
from Redis on every request, purchased, in cart, current product) -> merchandising rules ->
category diversity -> top K. Whatever is missing is filled down the fallback chain, each step
named in the answer and counted; with Redis down the answer comes from in-process copies.
No model is fitted or scored here and the database is not queried per request.
"""

import logging
import time
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.conf import settings

from merch.selectors import CatalogCard, PlacementConfig, RuleConfig, available_skus
from recs import redis_clients
from recs.candidates.store import META_KEY, decode_list
from recs.features.definitions import FEATURES
from recs.features.online import queue_online_read
from recs.learners.popularity import hour_band
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
from recs.serving.availability import UNAVAILABLE_KEY
from recs.serving.experiments import (
    Variant,
    as_serving,
    as_serving_strategy,
    assign_variant,
    control_of,
)
from recs.serving.types import RecommendationContext, Recommendations, RecommendedItem

logger = logging.getLogger(__name__)

TRENDING_KEY = "f:product:trending_score"  # the feature store's live trending ranking
SEGMENT_POPULARITY = FEATURES[("segment", "popularity")].aggregation
SHOPPER_FEATURES = {
    "user": ("interaction_count", "recently_viewed", "cart", "purchased_products"),
    "session": ("interaction_count", "recently_viewed", "cart"),
}
# Reciprocal-rank fusion constant: lists of different models mix by rank, not by raw score.
RRF_K = 10
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


@dataclass
class _Shopper:
    interaction_count: int = 0
    recent: list[str] = field(default_factory=list)  # viewed, newest first
    cart: list[str] = field(default_factory=list)
    purchased: list[str] = field(default_factory=list)  # newest first


class _Blend:
    """Weighted reciprocal-rank fusion of candidate lists; each item keeps the reason of the
    list that contributed most to it. Lists are read `depth` deep; `deepen` reads the rest of
    them when filters left too few. With `record_groups` (the offline replay, never a request)
    contributions are also summed per blend-table source in `by_group`, which is what the
    tuning of the table needs."""

    def __init__(self, depth: int, record_groups: bool = False) -> None:
        self.depth = depth
        self.record_groups = record_groups
        self.scores: dict[str, float] = {}
        self.best: dict[str, tuple[float, str, str]] = {}  # sku -> (contribution, source, reason)
        self.lists: list[tuple[Sequence[tuple[str, float]], float, str, str, str]] = []
        self.by_group: dict[str, dict[str, float]] = {}
        self.group = ""  # the blend-table source lists are being added for

    def add(self, ranked: Sequence[tuple[str, float]], weight: float, source: str, reason: str):
        if weight <= 0:
            return
        self.lists.append((ranked, weight, source, reason, self.group))
        self._add(ranked, 0, self.depth, weight, source, reason, self.group)

    def deepen(self) -> None:
        for ranked, weight, source, reason, group in self.lists:
            self._add(ranked, self.depth, len(ranked), weight, source, reason, group)
        self.depth = max((len(ranked) for ranked, *_ in self.lists), default=self.depth)

    def _add(self, ranked, start, stop, weight: float, source: str, reason: str, group: str):
        by_group = self.by_group.setdefault(group, {}) if self.record_groups else None
        for rank in range(start, min(stop, len(ranked))):
            sku = ranked[rank][0]
            contribution = weight / (RRF_K + rank + 1)
            self.scores[sku] = self.scores.get(sku, 0.0) + contribution
            if by_group is not None:
                by_group[sku] = by_group.get(sku, 0.0) + contribution
            if contribution > self.best.get(sku, (0.0, "", ""))[0]:
                self.best[sku] = (contribution, source, reason)

    def ranked(self) -> list[str]:
        return sorted(self.scores, key=lambda sku: (-self.scores[sku], sku))


@dataclass
class _Reads:
    """What the first two round trips returned."""

    lists: dict[str, list[tuple[str, float]]]
    shopper: _Shopper
    segments: dict[str, list[tuple[str, float]]]
    trending: list[tuple[str, float]]
    meta: dict[str, str]
    # Blend weights per tier and source (recs.serving.blend_table), tuned by training.
    table: dict[str, dict[str, float]] = field(default_factory=blend_table.default_table)


def _dedupe(skus: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(sku for sku in skus if sku))


def _category_label(path: str) -> str:
    return path.rsplit("/", 1)[-1].replace("-", " ").capitalize() if path else ""


def recommend(context: RecommendationContext) -> Recommendations:
    """The list for one placement on one page. Never raises for a known placement and never
    waits on a model; raises ValueError for an unknown placement."""
    now_s = context.now_s if context.now_s is not None else time.time()
    if serving_redis.available():
        try:
            return _serve(context, now_s)
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


def _empty(
    context: RecommendationContext, placement: PlacementConfig, now_s: float, reason: str
) -> Recommendations:
    """A switched-off placement: an empty list, counted like any other answer."""
    result = Recommendations(
        placement=placement.key, items=[], tier="anonymous", source="", variant="default",
        model_version="", rec_id=uuid.uuid4().hex, generated_at=0.0, fallbacks=[reason],
        served_at=now_s,
    )  # fmt: skip
    counters.count(result)
    return result


def _limit(context: RecommendationContext, placement: PlacementConfig) -> int:
    return max(1, min(context.limit or placement.size, settings.SERVING_MAX_LIMIT))


def _serve(context: RecommendationContext, now_s: float) -> Recommendations:
    client = serving_redis.reader_client()
    cards = catalog.cards(None)
    page_category = context.category_path
    if not page_category and context.product_sku in cards:
        page_category = cards[context.product_sku].category_path

    # Round trip 1: configuration versions, shopper features, lists keyed by the page.
    pipe = client.pipeline(transaction=False)
    pipe.get(merchandising.CONFIG_VERSION_KEY)
    pipe.get(catalog.CATALOG_VERSION_KEY)
    pipe.hgetall(META_KEY)
    pipe.exists(availability.SYNCED_KEY)
    feature_reads = []
    for entity, entity_id in (("user", context.user_id), ("session", context.session_id)):
        if entity_id:
            read = queue_online_read(pipe, entity, entity_id, SHOPPER_FEATURES[entity], now_s=now_s)
            feature_reads.append((entity, read))
    depth = settings.SERVING_CANDIDATE_DEPTH
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
    pipe.zrevrange(TRENDING_KEY, 0, depth - 1)
    list_keys = [
        *(
            [f"c:user:{context.user_id}", f"c:lkg:user:{context.user_id}"]
            if context.user_id
            else []
        ),
        *(
            [f"c:similar:cf:{p}", f"c:similar:content:{p}", f"c:fbt:{p}"]
            for p in [context.product_sku]
            if p
        ),
        *([f"c:popular:country:{context.country}"] if context.country else []),
        *([f"c:popular:category:{page_category}"] if page_category else []),
        f"c:popular:hour:{hour_band(time.gmtime(now_s).tm_hour)}",
        "c:popular:all",
        "c:trending:all",
    ]
    list_keys = [k for item in list_keys for k in ([item] if isinstance(item, str) else item)]
    for key in list_keys:
        pipe.get(key)
    counters.queue_flush(pipe, now_s)  # queued last: its replies are not read
    replies = iter(pipe.execute())

    config_version = (next(replies) or b"0").decode()
    catalog_version = (next(replies) or b"0").decode()
    meta = {k.decode(): v.decode() for k, v in (next(replies) or {}).items()}
    availability_synced = bool(next(replies))
    features = {entity: read(replies) for entity, read in feature_reads}
    segments = {name: [(sku.decode(), 1.0) for sku in next(replies)] for name, _ in segment_names}
    trending = [(sku.decode(), 1.0) for sku in next(replies)]
    lists = {key: decode_list(next(replies)) for key in list_keys}

    placements, rules, experiments = merchandising.current(config_version)
    placement = _placement(placements, context.placement)
    if not placement.is_active:
        return _empty(context, placement, now_s, "placement_inactive")
    if not availability_synced:
        # Redis lost its data: an empty sold-out set must not read as "all in stock". Rebuild
        # it from the catalog now (one query; idempotent if several requests race).
        try:
            availability.sync_unavailable()
        except Exception:
            logger.exception("Could not rebuild the sold-out set; serving the checked fallback")
            return _serve_without_redis(context, now_s)
    cards = catalog.cards(catalog_version)
    if context.strategy_override:
        strategy, model_key = as_serving_strategy(context.strategy_override)
        variant = Variant(name=context.strategy_override, strategy=strategy, model_key=model_key)
    else:
        variant = assign_variant(context, placement, experiments, now_s)
    variant_fallbacks: list[str] = []
    if variant.model_key and f"user@{variant.model_key}" not in meta:
        # The variant names a model whose lists are not in the cache: serve the control, say so.
        variant_fallbacks.append(f"variant_unavailable:{variant.name}")
        variant = _control(variant, experiments, placement)
    fallback.remember_global_popular(lists["c:popular:all"])

    user, session = features.get("user", {}), features.get("session", {})
    shopper = _Shopper(
        interaction_count=int(
            user.get("interaction_count", 0)
            if context.user_id
            else session.get("interaction_count", 0)
        ),
        recent=_dedupe([*session.get("recently_viewed", []), *user.get("recently_viewed", [])])[
            : settings.RECENT_CONTEXT_SIZE
        ],
        cart=_dedupe([*context.cart_skus, *session.get("cart", {}), *user.get("cart", {})]),
        purchased=list(user.get("purchased_products", [])),
    )

    # Round trip 2: neighbours of what the shopper touched (known only after round trip 1).
    anchors = {
        "c:similar:content:": shopper.recent,
        "c:similar:cf:": shopper.recent,
        "c:fbt:": _dedupe([*shopper.cart, *shopper.purchased[:3]])[: settings.RECENT_CONTEXT_SIZE],
    }
    second_keys = [
        prefix + sku
        for prefix, skus in anchors.items()
        for sku in skus
        if prefix + sku not in lists
    ]
    if variant.model_key and context.user_id:
        second_keys.append(f"c:user@{variant.model_key}:{context.user_id}")
    if second_keys:
        raws = redis_clients.get_many(client, second_keys)  # MGET; per hash slot on a cluster
        for key, raw in zip(second_keys, raws, strict=True):
            lists[key] = decode_list(raw)

    reads = _Reads(
        lists=lists, shopper=shopper, segments=segments, trending=trending, meta=meta,
        table=blend_table.tier_table(meta.get("blend")),
    )  # fmt: skip
    tier = _tier(shopper.interaction_count)
    blend, fallbacks = _blend(context, placement, variant, tier, reads, cards, page_category)
    fallbacks = variant_fallbacks + fallbacks
    chain = _fallback_chain(context, reads, page_category)
    rules_now = merchandising.rules_in_force(rules, placement.key, page_category, now_s)
    if not context.apply_rules:
        rules_now = []

    # Round trip 3: availability of the products that could be served, read now, not cached.
    # Only what a list of k can plausibly need is checked; a list thinned out by many sold-out
    # products checks the rest in one more round trip.
    k = _limit(context, placement)
    ranked = blend.ranked()[: settings.SERVING_CANDIDATE_DEPTH * 3]
    pinned = [r.sku for r in rules_now if r.action == "pin"]
    checked: set[str] = set()
    unavailable: set[str] = set()

    def check(skus: Iterable[str]) -> None:
        fresh = [sku for sku in _dedupe(skus) if sku not in checked]
        if fresh:
            flags = client.smismember(UNAVAILABLE_KEY, fresh)
            checked.update(fresh)
            unavailable.update(sku for sku, flag in zip(fresh, flags, strict=True) if flag)

    def assemble():
        return _assemble(
            context, placement, shopper, blend, [sku for sku in ranked if sku in checked],
            [(step, [row for row in rows if row[0] in checked], reason)
             for step, rows, reason in chain],
            rules_now, cards, unavailable, now_s,
        )  # fmt: skip

    head = max(4 * k, 40)
    check([*ranked[:head], *pinned, *(sku for _, rows, _ in chain for sku, _ in rows[: 2 * k])])
    items, used, source = assemble()
    if len(items) < k:
        # Thinned out by sold-out products: read every list to its end, check all of it.
        blend.deepen()
        ranked = blend.ranked()
        chain = _fallback_chain(context, reads, page_category, depth=None)
        check([*ranked, *(sku for _, rows, _ in chain for sku, _ in rows)])
        items, used, source = assemble()
    fallbacks += used
    role = SOURCE_ROLES.get(source, "")
    if variant.model_key and role == "user":
        role = f"user@{variant.model_key}"
    result = Recommendations(
        placement=placement.key,
        items=items,
        tier=tier,
        source=source,
        variant=variant.name,
        model_version=meta.get(role, "feature-store" if source else ""),
        rec_id=uuid.uuid4().hex,
        generated_at=float(meta.get("generated_at", 0) or 0),
        fallbacks=_dedupe(fallbacks),
        served_at=now_s,
    )
    if not context.strategy_override:  # shadow scoring is not traffic
        counters.count(result)
    if variant.experiment_id is not None:
        served_log.record(client, context, result, variant)
    return result


def _control(variant: Variant, experiments, placement: PlacementConfig) -> Variant:
    control = control_of(experiments, variant.experiment_id)
    if control is None:
        return Variant(name="default", strategy=placement.default_strategy)
    strategy, model_key = as_serving(control, placement)
    return Variant(
        name=control.name, strategy=strategy, model_key=model_key, is_control=True,
        experiment_id=variant.experiment_id, shadows=variant.shadows,
    )  # fmt: skip


def _tier(interaction_count: int) -> str:
    return blend_table.tier_of(interaction_count)


def _title(cards: dict[str, CatalogCard], sku: str) -> str:
    card = cards.get(sku)
    return card.title if card else sku


def _personal(
    blend: _Blend,
    tier: str,
    weight: float,
    context: RecommendationContext,
    reads: _Reads,
    cards: dict[str, CatalogCard],
    model_key: str = "",
) -> list[str]:
    """The shopper's own candidates, weighted by their tier's row of the blend table: their
    precomputed list, neighbours of what they just viewed or put in the cart (session re-rank),
    content-similar products, trending and their segment's popular lists. Returns fallback
    reasons."""
    lists, shopper, fallbacks = reads.lists, reads.shopper, []
    weights = reads.table[tier]
    if weights["user_list"] > 0 and context.user_id:
        blend.group = "user_list"
        own = lists.get(f"c:user:{context.user_id}", [])
        if model_key:
            own = lists.get(f"c:user@{model_key}:{context.user_id}", [])
        if own:
            blend.add(own, weight * weights["user_list"], "user_list", "recommended for you")
        elif lkg := lists.get(f"c:lkg:user:{context.user_id}", []):
            blend.add(lkg, weight * weights["user_list"], "last_known_good", "recommended for you")
            fallbacks.append("no_user_list")
        elif tier == "collaborative":
            fallbacks.append("no_user_list")
    anchors = _dedupe([*shopper.recent, *shopper.cart])[: settings.RECENT_CONTEXT_SIZE]
    for i, sku in enumerate(anchors):
        r = 0.8**i
        blend.group = "content"
        blend.add(lists.get(f"c:similar:content:{sku}", []), weight * weights["content"] * r,
                  "content", f"similar to {_title(cards, sku)} you viewed")  # fmt: skip
        blend.group = "viewed_neighbours"
        blend.add(lists.get(f"c:similar:cf:{sku}", []), weight * weights["viewed_neighbours"] * r,
                  "viewed_neighbours", f"popular with shoppers who viewed {_title(cards, sku)}")  # fmt: skip
    blend.group = "trending"
    blend.add(reads.trending, weight * weights["trending"], "trending", "trending now")
    if weights["segment"] > 0:
        blend.group = "segment"
        _segment(blend, weight * weights["segment"], context, reads)
    blend.group = ""
    return fallbacks


def _segment(blend: _Blend, weight: float, context: RecommendationContext, reads: _Reads) -> None:
    """Demographic heuristics for a visitor we know nothing about: their segment's live and
    trained popularity, what is trending, and the time of day."""
    lists = reads.lists
    for name, ranked in reads.segments.items():
        label = context.country if name == "country" else f"{context.device}"
        reason = f"popular in {label}" if name == "country" else f"popular on {label}"
        blend.add(ranked, weight * (0.6 if name == "country" else 0.4), "segment_popular", reason)
    if context.country:
        blend.add(lists.get(f"c:popular:country:{context.country}", []), weight * 0.5,
                  "segment_popular", f"popular in {context.country}")  # fmt: skip
    blend.add(reads.trending, weight * 0.5, "trending", "trending now")
    band = next((k.rsplit(":", 1)[-1] for k in lists if k.startswith("c:popular:hour:")), "")
    blend.add(lists.get(f"c:popular:hour:{band}", []), weight * 0.2, "segment_popular",
              f"popular this {band}")  # fmt: skip
    blend.add(lists.get("c:popular:all", []), weight * 0.2, "global_popular", "popular right now")


def _blend(
    context: RecommendationContext,
    placement: PlacementConfig,
    variant: Variant,
    tier: str,
    reads: _Reads,
    cards: dict[str, CatalogCard],
    page_category: str,
    record_groups: bool = False,
) -> tuple[_Blend, list[str]]:
    blend = _Blend(settings.SERVING_CANDIDATE_DEPTH, record_groups)
    lists, shopper = reads.lists, reads.shopper
    strategy = variant.strategy
    product = context.product_sku
    fallbacks: list[str] = []

    def similar_to_product(weight: float) -> None:
        title = _title(cards, product)
        card = cards.get(product)
        content_weight = 1.0 if card and catalog.is_new(card, context.now_s or time.time()) else 0.7
        blend.add(lists.get(f"c:similar:cf:{product}", []), weight, "similar",
                  f"bought by shoppers who bought {title}")  # fmt: skip
        blend.add(lists.get(f"c:similar:content:{product}", []), weight * content_weight,
                  "content", f"similar to {title}")  # fmt: skip

    def bought_together(weight: float) -> None:
        anchors = _dedupe([product, *shopper.cart, *shopper.purchased[:3]])
        for i, sku in enumerate(anchors[: settings.RECENT_CONTEXT_SIZE]):
            blend.add(lists.get(f"c:fbt:{sku}", []), weight * 0.8**i, "bought_together",
                      f"bought together with {_title(cards, sku)}")  # fmt: skip

    if strategy == "personal":
        fallbacks += _personal(blend, tier, 1.0, context, reads, cards, variant.model_key)
    elif strategy == "similar":
        if product:
            similar_to_product(1.0)
        else:
            fallbacks += _personal(blend, "content", 1.0, context, reads, cards, variant.model_key)
    elif strategy == "bought_together":
        bought_together(1.0)
        fallbacks += _personal(blend, tier, 0.3, context, reads, cards, variant.model_key)
    elif strategy == "popular":
        _segment(blend, 1.0, context, reads)
    elif strategy == "trending":
        blend.add(reads.trending, 1.0, "trending", "trending now")
        blend.add(lists.get("c:trending:all", []), 0.5, "trending", "trending now")
    else:  # auto: the page decides the anchor, the tier decides the personal part
        if placement.key == "product_detail" and product:
            similar_to_product(1.0)
            fallbacks += _personal(blend, tier, 0.4, context, reads, cards, variant.model_key)
        elif placement.key in ("cart", "post_purchase"):
            bought_together(1.0)
            fallbacks += _personal(blend, tier, 0.3, context, reads, cards, variant.model_key)
        elif placement.key == "category" and page_category:
            blend.add(lists.get(f"c:popular:category:{page_category}", []), 1.0,
                      "category_popular", f"popular in {_category_label(page_category)}")  # fmt: skip
            fallbacks += _personal(blend, tier, 0.5, context, reads, cards, variant.model_key)
        else:
            fallbacks += _personal(blend, tier, 1.0, context, reads, cards, variant.model_key)
    return blend, fallbacks


def _fallback_chain(
    context: RecommendationContext,
    reads: _Reads,
    page_category: str,
    depth: int | None = -1,
) -> list[tuple[str, list[tuple[str, float]], str]]:
    """(step, list, reason) in the order of ARCHITECTURE.md's fallback chain, `depth` deep
    (-1: the configured depth; None: whole lists)."""
    depth = settings.SERVING_CANDIDATE_DEPTH if depth == -1 else depth
    lists = reads.lists
    chain = []
    if context.user_id:
        chain.append(("last_known_good", lists.get(f"c:lkg:user:{context.user_id}", []),
                      "recommended for you"))  # fmt: skip
    if context.country:
        chain.append(("segment_popular", lists.get(f"c:popular:country:{context.country}", []),
                      f"popular in {context.country}"))  # fmt: skip
    if page_category:
        chain.append(("category_popular", lists.get(f"c:popular:category:{page_category}", []),
                      f"popular in {_category_label(page_category)}"))  # fmt: skip
    chain.append(("global_popular", lists.get("c:popular:all", []) or fallback.global_popular(),
                  "popular right now"))  # fmt: skip
    return [(step, ranked[:depth], reason) for step, ranked, reason in chain]


def _assemble(
    context: RecommendationContext,
    placement: PlacementConfig,
    shopper: _Shopper,
    blend: _Blend,
    ranked: list[str],
    chain: list[tuple[str, list[tuple[str, float]], str]],
    rules: list[RuleConfig],
    cards: dict[str, CatalogCard],
    unavailable: set[str],
    now_s: float,
) -> tuple[list[RecommendedItem], list[str], str]:
    """Filters, re-rank, rules and diversity over the blend, then the fallback chain; returns
    the items, the fallback steps that supplied any, and the source of the first item (pins
    aside)."""
    k = _limit(context, placement)
    excluded = {r.sku for r in rules if r.action == "exclude"}
    multipliers: dict[str, float] = {}
    for rule in rules:
        if rule.action in ("boost", "bury"):
            multipliers[rule.sku] = multipliers.get(rule.sku, 1.0) * rule.multiplier
    in_cart, purchased = set(shopper.cart), set(shopper.purchased)

    def servable(sku: str) -> bool:
        card = cards.get(sku)
        return (
            card is not None  # activity is in `unavailable`, current at commit time
            and sku not in unavailable
            and sku not in excluded
            and sku != context.product_sku
            and not (placement.exclude_purchased and sku in purchased)
            and not (placement.key in ("cart", "post_purchase") and sku in in_cart)
        )

    scored: list[tuple[float, str, str, str]] = []  # (score, sku, source, reason)
    for sku in ranked:
        if not servable(sku):
            continue
        score = blend.scores[sku] * multipliers.get(sku, 1.0)
        if sku in in_cart or sku in purchased:
            score *= settings.SERVING_DEMOTION  # already theirs: show other things first
        if catalog.is_new(cards[sku], now_s):
            score *= settings.NEW_PRODUCT_BOOST  # new products get exposure
        _, source, reason = blend.best[sku]
        scored.append((score, sku, source, reason))
    scored.sort(key=lambda row: (-row[0], row[1]))
    # Rows: (sku, score, source, reason, from the fallback chain?)
    stream = [(sku, score, source, reason, False) for score, sku, source, reason in scored]
    floor = scored[-1][0] if scored else 1.0
    for step, step_list, reason in chain:
        for rank, (sku, _) in enumerate(step_list):
            if servable(sku):
                stream.append((sku, floor * 0.5 / (rank + 1), step, reason, True))

    chosen: list[tuple[str, float, str, str, bool]] = []
    deferred: list[tuple[str, float, str, str, bool]] = []
    seen: set[str] = set()
    per_category: dict[str, int] = {}
    cap = placement.max_per_category
    for row in stream:
        sku = row[0]
        if sku in seen:
            continue
        seen.add(sku)
        category = cards[sku].category_path
        if cap and per_category.get(category, 0) >= cap:
            deferred.append(row)
            continue
        per_category[category] = per_category.get(category, 0) + 1
        chosen.append(row)
        if len(chosen) >= k:
            break
    chosen += deferred[: k - len(chosen)]

    pins = sorted((r for r in rules if r.action == "pin"), key=lambda r: r.position or 1)
    for rule in pins:
        card = cards.get(rule.sku)
        if not card or rule.sku in unavailable:
            continue
        if rule.sku == context.product_sku or rule.sku in excluded:
            continue
        chosen = [row for row in chosen if row[0] != rule.sku]
        position = min(max((rule.position or 1) - 1, 0), len(chosen))
        chosen.insert(position, (rule.sku, 0.0, "pin", "featured", False))
    chosen = chosen[:k]

    items = [
        RecommendedItem(
            sku=sku,
            score=round(score, 6),
            reason=reason,
            title=cards[sku].title,
            price=cards[sku].price,
            currency=cards[sku].currency,
            image_url=cards[sku].image_url,
            category_path=cards[sku].category_path,
            is_new=catalog.is_new(cards[sku], now_s),
            pinned=source == "pin",
        )
        for sku, score, source, reason, _ in chosen
    ]
    used = _dedupe(source for _, _, source, _, from_chain in chosen if from_chain)
    main_source = next((source for _, _, source, _, _ in chosen if source != "pin"), "")
    return items, used, main_source


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
) -> tuple[list[RecommendedItem], str, "_Blend"]:
    """The render path's tier router, blend, filters and fallback chain over candidate lists
    held in memory (`lists` keyed like the cache; `recent` and `purchased` newest first).

    The offline replay (recs.evaluation.served) scores with this exactly what a shopper would
    be served; merchandising rules are left out. Returns the items, the tier and the blend
    (its per-source contributions tune the blend table)."""
    shopper = _Shopper(interaction_count, list(recent), list(cart), list(purchased))
    reads = _Reads(
        lists=lists, shopper=shopper, segments=segments, trending=trending, meta={},
        table=table or blend_table.default_table(),
    )  # fmt: skip
    tier = _tier(interaction_count)
    variant = Variant(name="default", strategy=placement.default_strategy)
    blend, _ = _blend(
        context, placement, variant, tier, reads, cards, context.category_path, record_groups=True
    )
    blend.deepen()
    chain = _fallback_chain(context, reads, context.category_path, depth=None)
    items, _, _ = _assemble(
        context, placement, shopper, blend, blend.ranked(), chain, [], cards, set(unavailable),
        now_s,
    )  # fmt: skip
    return items, tier, blend


def _serve_without_redis(context: RecommendationContext, now_s: float) -> Recommendations:
    """Redis is down: the in-process copy of global popularity, checked against the catalog in
    one query so that a sold-out product is still never served; the rules still apply."""
    placements, rules, _ = merchandising.current(None)
    placement = _placement(placements, context.placement)
    if not placement.is_active:
        return _empty(context, placement, now_s, "placement_inactive")
    cards = catalog.cards(None)
    page_category = context.category_path or (
        cards[context.product_sku].category_path if context.product_sku in cards else ""
    )
    rules_now = merchandising.rules_in_force(rules, placement.key, page_category, now_s)
    popular = fallback.global_popular()[: settings.SERVING_CANDIDATE_DEPTH]
    pinned = [r.sku for r in rules_now if r.action == "pin"]
    candidates = _dedupe([*(sku for sku, _ in popular), *pinned])
    try:
        available = available_skus(candidates) if candidates else set()
    except Exception:  # the database is down too: serving nothing beats serving sold-out items
        logger.exception("Catalog unavailable while Redis is down; serving an empty list")
        available = set()
    unavailable = set(candidates) - available
    chain = [("global_popular", popular, "popular right now")]
    items, _, _ = _assemble(
        context, placement, _Shopper(), _Blend(0), [], chain, rules_now, cards, unavailable, now_s
    )
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
