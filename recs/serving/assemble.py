"""From a blend to the list a page shows: filters, re-rank, merchandising rules, category
diversity, then the fallback chain for whatever is still missing."""

import heapq
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet

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
    """Which products may be shown on this page to this shopper: in the catalog, not sold out,
    and not blocked here (excluded by a rule, the product shown, already bought where the
    placement hides purchases, already in the cart on a page about the cart)."""

    def __init__(self, context, placement, shopper, rules, cards, unavailable) -> None:
        self.context, self.cards, self.unavailable = context, cards, unavailable
        self.excluded = {r.sku for r in rules if r.action == "exclude"}
        self.in_cart, self.purchased = set(shopper.cart), set(shopper.purchased)
        self.blocked = {*self.excluded, context.product_sku}
        if placement.exclude_purchased:
            self.blocked |= self.purchased
        if placement.anchor == "cart":
            self.blocked |= self.in_cart

    def servable(self, sku: str) -> bool:
        # Activity is in `unavailable` too, current at commit time.
        return sku in self.cards and sku not in self.unavailable and sku not in self.blocked


def _blended_rows(
    blend: Blend, ranked: list[str], keep: _Filter, rules, cards, now_s
) -> Iterator[Row]:
    """The blend's servable products re-ranked (rules' multipliers, what the shopper already
    has demoted, new products boosted), best first, made as they are taken.

    `ranked` is in fused-score order and no product's score can grow by more than the largest
    factor in play, so a product is final as soon as it beats every unread one at that factor:
    the order is exactly that of sorting every product, without scoring the ones a page of k
    never reaches."""
    multipliers: dict[str, float] = {}
    for rule in rules:
        if rule.action in ("boost", "bury"):
            multipliers[rule.sku] = multipliers.get(rule.sku, 1.0) * rule.multiplier
    theirs = keep.in_cart | keep.purchased
    demotion, boost = aisle_settings.SERVING_DEMOTION, aisle_settings.NEW_PRODUCT_BOOST
    launched_after = catalog.new_since(now_s)
    newest = catalog.newest(cards)
    any_new = bool(newest) and cards[newest[0]].launched_at > launched_after
    largest = (
        max(1.0, max(multipliers.values(), default=1.0))
        * max(1.0, demotion)
        * (max(1.0, boost) if any_new else 1.0)
    )
    scores, best, servable = blend.scores, blend.best, keep.servable
    waiting: list[tuple[float, str, Row]] = []  # heap of (-score, sku, row)
    for sku in ranked:
        bound = scores[sku] * largest
        while waiting and -waiting[0][0] > bound:
            yield heapq.heappop(waiting)[2]
        if not servable(sku):
            continue
        score = scores[sku]
        if multipliers:
            score *= multipliers.get(sku, 1.0)
        if sku in theirs:
            score *= demotion  # already theirs: show other things first
        if cards[sku].launched_at > launched_after:
            score *= boost  # new products get exposure
        _, source, reason = best[sku]
        heapq.heappush(waiting, (-score, sku, (sku, score, source, reason, False)))
    while waiting:
        yield heapq.heappop(waiting)[2]


def _rows(blend, ranked, keep, rules, cards, now_s, chain) -> Iterator[Row]:
    """Blended rows, then the fallback chain's, each chain row below the last blended one."""
    floor = 1.0
    for row in _blended_rows(blend, ranked, keep, rules, cards, now_s):
        floor = row[1]
        yield row
    yield from _chain_rows(chain, keep, floor)


def _chain_rows(chain: list[ChainStep], keep: _Filter, floor: float) -> Iterator[Row]:
    """The fallback chain's servable products, below every blended one; made as they are
    taken, since a full page rarely needs more than the head of the first step."""
    servable = keep.servable
    for step, step_list, reason in chain:
        for rank, sku in enumerate(step_list):
            if servable(sku):
                yield (sku, floor * 0.5 / (rank + 1), step, reason, True)


def _diversified(rows: Iterable[Row], cards, k: int, cap: int) -> list[Row]:
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
    unavailable: AbstractSet[str],
    now_s: float,
    k: int,
) -> tuple[list[RecommendedItem], list[str], str]:
    """The k items; returns them, the fallback steps that supplied any, and the source of the
    first item (pins aside)."""
    keep = _Filter(context, placement, shopper, rules, cards, unavailable)
    rows = _rows(blend, ranked, keep, rules, cards, now_s, chain)
    chosen = _diversified(rows, cards, k, placement.max_per_category)
    chosen = _pinned(chosen, rules, keep, k)
    items = [
        _item(cards[sku], score, source, reason, now_s) for sku, score, source, reason, _ in chosen
    ]
    used = dedupe(source for _, _, source, _, from_chain in chosen if from_chain)
    main_source = next((source for _, _, source, _, _ in chosen if source != "pin"), "")
    return items, used, main_source
