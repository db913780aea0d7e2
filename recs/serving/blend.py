"""The blend: which candidate lists a request mixes, with what weight and reason.

A placement's strategy picks the parts; `auto` lets the page lead with the lists its anchor
names (the placement's `anchor`: the product shown, the cart, the category, or none) and adds
the shopper's personal part, weighted by their tier's row of the tuned blend table. Lists of
different models mix by rank (weighted reciprocal-rank fusion), not by raw score.
"""

import threading
import time
from collections.abc import Mapping, Sequence

from aisle.conf import aisle_settings
from merch.selectors.catalog import CatalogCard
from merch.selectors.merchandising import PlacementConfig
from recs import redis_keys
from recs.serving import catalog
from recs.serving.experiments import Variant
from recs.serving.reads import Reads, dedupe
from recs.serving.types import RecommendationContext

# Reciprocal-rank fusion constant: a list's item at rank r (from 0) adds weight / (RRF_K + r + 1).
RRF_K = 10
# Each older anchor (viewed product, cart item) counts this much of the one after it.
ANCHOR_DECAY = 0.8
# Content neighbours of the product shown count fully for a new product (nobody bought it yet,
# so it has few collaborative neighbours) and less beside the collaborative ones otherwise.
CONTENT_WEIGHT_NEW_PRODUCT = 1.0
CONTENT_WEIGHT = 0.7
# Under `auto`, how much the shopper's personal part adds beside the lists the page leads with.
PERSONAL_WEIGHT_BESIDE = {"product": 0.4, "cart": 0.3, "category": 0.5, "none": 1.0}
# The segment part (a visitor we know little about): live popularity in their country and on
# their device, trained popularity in their country, what is trending, the hour, the catalog.
SEGMENT_WEIGHTS = {
    "live_country": 0.6,
    "live_device": 0.4,
    "trained_country": 0.5,
    "trending": 0.5,
    "hour": 0.2,
    "global": 0.2,
}
# The `trending` strategy: the live ranking, and the trained one beside it.
TRAINED_TRENDING_WEIGHT = 0.5


class Blend:
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
        self.lists: list[tuple[Sequence[str], float, str, str, str]] = []
        self.by_group: dict[str, dict[str, float]] = {}
        self.group = ""  # the blend-table source lists are being added for

    def add(self, ranked: Sequence[str], weight: float, source: str, reason: str) -> None:
        """Fuse a list of SKUs, best first, at `weight`."""
        if weight <= 0:
            return
        self.lists.append((ranked, weight, source, reason, self.group))
        self._add(ranked, 0, self.depth, weight, source, reason, self.group)

    def deepen(self) -> None:
        for ranked, weight, source, reason, group in self.lists:
            self._add(ranked, self.depth, len(ranked), weight, source, reason, group)
        self.depth = max((len(ranked) for ranked, *_ in self.lists), default=self.depth)

    def _add(self, ranked, start, stop, weight: float, source: str, reason: str, group: str):
        stop = min(stop, len(ranked))
        if start >= stop:
            return
        scores, best = self.scores, self.best
        by_group = self.by_group.setdefault(group, {}) if self.record_groups else None
        for sku, inverse in zip(ranked[start:stop], _inverse_ranks(stop)[start:stop], strict=False):
            contribution = weight * inverse
            previous = scores.get(sku)
            if previous is None:
                scores[sku] = contribution
                best[sku] = (contribution, source, reason)
            else:
                scores[sku] = previous + contribution
                if contribution > best[sku][0]:
                    best[sku] = (contribution, source, reason)
            if by_group is not None:
                by_group[sku] = by_group.get(sku, 0.0) + contribution

    def ranked(self) -> list[str]:
        """SKUs by fused score, best first (ties by SKU): sorted by SKU, then stably by score."""
        ranked = sorted(self.scores)
        ranked.sort(key=self.scores.__getitem__, reverse=True)
        return ranked


_INVERSE_RANKS: list[float] = [1 / (RRF_K + rank + 1) for rank in range(1024)]
_inverse_lock = threading.Lock()


def _inverse_ranks(length: int) -> list[float]:
    """1 / (RRF_K + rank + 1) for ranks 0 .. at least length - 1, computed once."""
    global _INVERSE_RANKS
    if len(_INVERSE_RANKS) < length:
        with _inverse_lock:
            longer = max(length, 2 * len(_INVERSE_RANKS))
            _INVERSE_RANKS = [1 / (RRF_K + rank + 1) for rank in range(longer)]
    return _INVERSE_RANKS


def category_label(path: str) -> str:
    return path.rsplit("/", 1)[-1].replace("-", " ").capitalize() if path else ""


def page_anchor(placement: PlacementConfig, context: RecommendationContext, category: str) -> str:
    """The anchor the page can lead with: the placement's, when the page names its subject."""
    anchor = placement.anchor
    if (anchor == "product" and not context.product_sku) or (anchor == "category" and not category):
        return "none"
    return anchor


class _Parts:
    """The blend's building blocks for one request; each adds lists to `blend`."""

    def __init__(
        self,
        blend: Blend,
        context: RecommendationContext,
        reads: Reads,
        cards: Mapping[str, CatalogCard],
        model_key: str,
    ) -> None:
        self.blend, self.context, self.reads, self.cards = blend, context, reads, cards
        self.model_key = model_key
        self.fallbacks: list[str] = []

    def _list(self, key: str) -> list[tuple[str, float]]:
        return self.reads.lists.get(key, [])

    def _title(self, sku: str) -> str:
        card = self.cards.get(sku)
        return card.title if card else sku

    def lead(self, anchor: str, category: str) -> None:
        """The lists the page's anchor names, at full weight."""
        if anchor == "product":
            self.similar_to_product()
        elif anchor == "cart":
            self.bought_together()
        elif anchor == "category":
            self.blend.add(self._list(redis_keys.category_popular_list(category)), 1.0,
                           "category_popular", f"popular in {category_label(category)}")  # fmt: skip

    def similar_to_product(self) -> None:
        product = self.context.product_sku
        title, card = self._title(product), self.cards.get(product)
        now_s = self.context.now_s or time.time()
        is_new = card is not None and catalog.is_new(card, now_s)
        content_weight = CONTENT_WEIGHT_NEW_PRODUCT if is_new else CONTENT_WEIGHT
        self.blend.add(self._list(redis_keys.similar_cf_list(product)), 1.0, "similar",
                       f"bought by shoppers who bought {title}")  # fmt: skip
        self.blend.add(self._list(redis_keys.similar_content_list(product)), content_weight,
                       "content", f"similar to {title}")  # fmt: skip

    def bought_together(self) -> None:
        shopper = self.reads.shopper
        anchors = dedupe([self.context.product_sku, *shopper.cart_anchors()])
        for i, sku in enumerate(anchors[: aisle_settings.RECENT_CONTEXT_SIZE]):
            self.blend.add(self._list(redis_keys.bought_together_list(sku)), ANCHOR_DECAY**i,
                           "bought_together", f"bought together with {self._title(sku)}")  # fmt: skip

    def personal(self, tier: str, weight: float) -> None:
        """The shopper's own candidates, weighted by their tier's row of the blend table: their
        precomputed list, neighbours of what they just viewed or put in the cart (session
        re-rank), content-similar products, trending and their segment's popular lists."""
        blend, context, shopper = self.blend, self.context, self.reads.shopper
        weights = self.reads.table[tier]
        if weights["user_list"] > 0 and context.user_id:
            blend.group = "user_list"
            own_key = (
                redis_keys.model_user_list(self.model_key, context.user_id)
                if self.model_key
                else redis_keys.user_list(context.user_id)
            )
            user_weight = weight * weights["user_list"]
            if own := self._list(own_key):
                blend.add(own, user_weight, "user_list", "recommended for you")
            elif lkg := self._list(redis_keys.last_known_good_list(context.user_id)):
                blend.add(lkg, user_weight, "last_known_good", "recommended for you")
                self.fallbacks.append("no_user_list")
            elif tier == "collaborative":
                self.fallbacks.append("no_user_list")
        anchors = dedupe([*shopper.recent, *shopper.cart])[: aisle_settings.RECENT_CONTEXT_SIZE]
        for i, sku in enumerate(anchors):
            decay, title = ANCHOR_DECAY**i, self._title(sku)
            blend.group = "content"
            blend.add(self._list(redis_keys.similar_content_list(sku)),
                      weight * weights["content"] * decay, "content",
                      f"similar to {title} you viewed")  # fmt: skip
            blend.group = "viewed_neighbours"
            blend.add(self._list(redis_keys.similar_cf_list(sku)),
                      weight * weights["viewed_neighbours"] * decay, "viewed_neighbours",
                      f"popular with shoppers who viewed {title}")  # fmt: skip
        blend.group = "trending"
        blend.add(self.reads.trending, weight * weights["trending"], "trending", "trending now")
        if weights["segment"] > 0:
            blend.group = "segment"
            self.segment(weight * weights["segment"])
        blend.group = ""

    def segment(self, weight: float) -> None:
        """Demographic heuristics for a visitor we know nothing about: their segment's live and
        trained popularity, what is trending, and the time of day."""
        blend, context, lists = self.blend, self.context, self.reads.lists
        w = SEGMENT_WEIGHTS
        for name, ranked in self.reads.segments.items():
            if name == "country":
                blend.add(ranked, weight * w["live_country"], "segment_popular",
                          f"popular in {context.country}")  # fmt: skip
            else:
                blend.add(ranked, weight * w["live_device"], "segment_popular",
                          f"popular on {context.device}")  # fmt: skip
        if context.country:
            blend.add(self._list(redis_keys.country_popular_list(context.country)),
                      weight * w["trained_country"], "segment_popular",
                      f"popular in {context.country}")  # fmt: skip
        blend.add(self.reads.trending, weight * w["trending"], "trending", "trending now")
        hour_prefix = redis_keys.hour_popular_list("")
        band = next((k.removeprefix(hour_prefix) for k in lists if k.startswith(hour_prefix)), "")
        blend.add(self._list(redis_keys.hour_popular_list(band)), weight * w["hour"],
                  "segment_popular", f"popular this {band}")  # fmt: skip
        blend.add(self._list(redis_keys.POPULAR_ALL), weight * w["global"], "global_popular",
                  "popular right now")  # fmt: skip

    def trending(self) -> None:
        self.blend.add(self.reads.trending, 1.0, "trending", "trending now")
        self.blend.add(self._list(redis_keys.TRENDING_ALL), TRAINED_TRENDING_WEIGHT, "trending",
                       "trending now")  # fmt: skip


def blend_for(
    context: RecommendationContext,
    placement: PlacementConfig,
    variant: Variant,
    tier: str,
    reads: Reads,
    cards: Mapping[str, CatalogCard],
    page_category: str,
    record_groups: bool = False,
) -> tuple[Blend, list[str]]:
    """The blend of one request under the variant's strategy; returns it and the fallback
    steps it took (a shopper without their own list)."""
    blend = Blend(aisle_settings.SERVING_CANDIDATE_DEPTH, record_groups)
    parts = _Parts(blend, context, reads, cards, variant.model_key)
    strategy = variant.strategy
    if strategy == "auto":
        anchor = page_anchor(placement, context, page_category)
        parts.lead(anchor, page_category)
        parts.personal(tier, PERSONAL_WEIGHT_BESIDE[anchor])
    elif strategy == "similar" and context.product_sku:
        parts.similar_to_product()
    elif strategy == "similar":  # no product on the page: what resembles their own interests
        parts.personal("content", 1.0)
    elif strategy == "bought_together":
        parts.bought_together()
        parts.personal(tier, PERSONAL_WEIGHT_BESIDE["cart"])
    elif strategy == "popular":
        parts.segment(1.0)
    elif strategy == "trending":
        parts.trending()
    else:  # personal
        parts.personal(tier, 1.0)
    return blend, parts.fallbacks
