"""From a blend to the list a page shows: filters, re-rank, merchandising rules, category
diversity, then the fallback chain for whatever is still missing."""

from collections.abc import Mapping

from aisle.conf import aisle_settings
from merch.selectors.catalog import CatalogCard
from merch.selectors.merchandising import PlacementConfig, RuleConfig
from recs import redis_keys
from recs.serving import catalog, fallback
from recs.serving.blend import Blend, category_label
from recs.serving.reads import RankedList, Reads, Shopper, dedupe
from recs.serving.types import RecommendationContext, RecommendedItem

# (step, list, reason): one step of the fallback chain.
ChainStep = tuple[str, RankedList, str]
# (sku, score, source, reason, from the fallback chain?)
Row = tuple[str, float, str, str, bool]


def limit(context: RecommendationContext, placement: PlacementConfig) -> int:
    """How many products the answer holds: what the caller asked, within the server's cap."""
    return max(1, min(context.limit or placement.size, aisle_settings.SERVING_MAX_LIMIT))


def fallback_chain(
    context: RecommendationContext,
    reads: Reads,
    page_category: str,
    cards: Mapping[str, CatalogCard],
    depth: int | None = -1,
) -> list[ChainStep]:
    """The steps of docs/ARCHITECTURE.md's fallback chain, `depth` deep (-1: the configured
    depth; None: whole lists). The last, the newest products (of the page's category first),
    is what a shop without any history yet shows."""
    depth = aisle_settings.SERVING_CANDIDATE_DEPTH if depth == -1 else depth
    lists = reads.lists
    chain = []
    if context.user_id:
        chain.append(("last_known_good",
                      lists.get(redis_keys.last_known_good_list(context.user_id), []),
                      "recommended for you"))  # fmt: skip
    if context.country:
        chain.append(("segment_popular",
                      lists.get(redis_keys.country_popular_list(context.country), []),
                      f"popular in {context.country}"))  # fmt: skip
    if page_category:
        chain.append(("category_popular",
                      lists.get(redis_keys.category_popular_list(page_category), []),
                      f"popular in {category_label(page_category)}"))  # fmt: skip
    chain.append(("global_popular",
                  lists.get(redis_keys.POPULAR_ALL, []) or fallback.global_popular(),
                  "popular right now"))  # fmt: skip
    if page_category:
        chain.append(("newest", catalog.newest(cards, page_category),
                      f"new in {category_label(page_category)}"))  # fmt: skip
    chain.append(("newest", catalog.newest(cards), "new in"))
    return [(step, ranked[:depth], reason) for step, ranked, reason in chain]


class _Filter:
    """Which products may be shown on this page to this shopper."""

    def __init__(self, context, placement, shopper, rules, cards, unavailable) -> None:
        self.context, self.placement, self.cards = context, placement, cards
        self.unavailable = unavailable
        self.excluded = {r.sku for r in rules if r.action == "exclude"}
        self.in_cart, self.purchased = set(shopper.cart), set(shopper.purchased)

    def servable(self, sku: str) -> bool:
        return (
            sku in self.cards  # activity is in `unavailable`, current at commit time
            and sku not in self.unavailable
            and sku not in self.excluded
            and sku != self.context.product_sku
            and not (self.placement.exclude_purchased and sku in self.purchased)
            # A page about the cart does not offer what is already in it.
            and not (self.placement.anchor == "cart" and sku in self.in_cart)
        )


def _scored(blend: Blend, ranked: list[str], keep: _Filter, rules, cards, now_s) -> list[Row]:
    """The blend's servable products re-ranked: rules' multipliers, what the shopper already
    has demoted, new products boosted."""
    multipliers: dict[str, float] = {}
    for rule in rules:
        if rule.action in ("boost", "bury"):
            multipliers[rule.sku] = multipliers.get(rule.sku, 1.0) * rule.multiplier
    scored: list[tuple[float, str, str, str]] = []
    for sku in ranked:
        if not keep.servable(sku):
            continue
        score = blend.scores[sku] * multipliers.get(sku, 1.0)
        if sku in keep.in_cart or sku in keep.purchased:
            score *= aisle_settings.SERVING_DEMOTION  # already theirs: show other things first
        if catalog.is_new(cards[sku], now_s):
            score *= aisle_settings.NEW_PRODUCT_BOOST  # new products get exposure
        _, source, reason = blend.best[sku]
        scored.append((score, sku, source, reason))
    scored.sort(key=lambda row: (-row[0], row[1]))
    return [(sku, score, source, reason, False) for score, sku, source, reason in scored]


def _diversified(rows: list[Row], cards, k: int, cap: int) -> list[Row]:
    """The first k distinct rows, at most `cap` per category while others are left (0: no cap)."""
    chosen: list[Row] = []
    deferred: list[Row] = []
    seen: set[str] = set()
    per_category: dict[str, int] = {}
    for row in rows:
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
    return chosen + deferred[: k - len(chosen)]


def _pinned(chosen: list[Row], rules, keep: _Filter, k: int) -> list[Row]:
    """Pins at their positions (an unavailable or excluded pin is skipped)."""
    pins = sorted((r for r in rules if r.action == "pin"), key=lambda r: r.position or 1)
    for rule in pins:
        if rule.sku not in keep.cards or rule.sku in keep.unavailable:
            continue
        if rule.sku == keep.context.product_sku or rule.sku in keep.excluded:
            continue
        chosen = [row for row in chosen if row[0] != rule.sku]
        position = min(max((rule.position or 1) - 1, 0), len(chosen))
        chosen.insert(position, (rule.sku, 0.0, "pin", "featured", False))
    return chosen[:k]


def _item(
    card: CatalogCard, score: float, source: str, reason: str, now_s: float
) -> RecommendedItem:
    return RecommendedItem(
        sku=card.sku,
        score=round(score, 6),
        reason=reason,
        title=card.title,
        price=card.price,
        currency=card.currency,
        image_url=card.image_url,
        category_path=card.category_path,
        is_new=catalog.is_new(card, now_s),
        pinned=source == "pin",
        url=card.url,
    )


def assemble(
    context: RecommendationContext,
    placement: PlacementConfig,
    shopper: Shopper,
    blend: Blend,
    ranked: list[str],
    chain: list[ChainStep],
    rules: list[RuleConfig],
    cards: Mapping[str, CatalogCard],
    unavailable: set[str],
    now_s: float,
    k: int,
) -> tuple[list[RecommendedItem], list[str], str]:
    """The k items; returns them, the fallback steps that supplied any, and the source of the
    first item (pins aside)."""
    keep = _Filter(context, placement, shopper, rules, cards, unavailable)
    rows = _scored(blend, ranked, keep, rules, cards, now_s)
    floor = rows[-1][1] if rows else 1.0
    for step, step_list, reason in chain:
        for rank, (sku, _) in enumerate(step_list):
            if keep.servable(sku):
                rows.append((sku, floor * 0.5 / (rank + 1), step, reason, True))
    chosen = _diversified(rows, cards, k, placement.max_per_category)
    chosen = _pinned(chosen, rules, keep, k)
    items = [
        _item(cards[sku], score, source, reason, now_s) for sku, score, source, reason, _ in chosen
    ]
    used = dedupe(source for _, _, source, _, from_chain in chosen if from_chain)
    main_source = next((source for _, _, source, _, _ in chosen if source != "pin"), "")
    return items, used, main_source
