"""The served pipeline scored offline: the test period replayed through the render path's code.

For each shopper the candidate lists a training run would write (the serving learners' lists:
their own, neighbours, content-similar, popular, trending) are built in memory; their state at
the cut is what the online feature store would hold (events so far, recently viewed, cart,
purchases); `recs.serving.recommend.rank_offline` (the render path's tier router, blend,
filters and fallback chain) makes the list a shopper would see. The blend table of the
render path is tuned per tier on the validation split the same way, never on the test.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from aisle.conf import aisle_settings
from merch.selectors.catalog import CatalogCard
from merch.selectors.merchandising import PlacementConfig
from recs import redis_keys
from recs.candidates.rescore import rescore_history
from recs.evaluation.offline import LIST_SIZE, ModelResult, TestShopper, mean_of, summarise
from recs.evaluation.split import Split
from recs.learners.base import CatalogItem, Interactions, Learner
from recs.learners.blending import WeightSearch
from recs.learners.popularity import hour_band
from recs.serving import blend_table
from recs.serving.recommend import rank_offline
from recs.serving.types import RecommendationContext

# The learner behind each kind of precomputed list (as recs.training.pipeline writes them).
ROLES = ("user", "similar_cf", "similar_content", "popular", "trending")
# The storefront's home placement as shipped (merch migration 0003: 8 slots, at most 3 from
# one category), asked for 20 items with the category cap scaled alike (3/8 of 20, rounded up).
HOME = PlacementConfig(
    key="home", name="Home page", default_strategy="auto", size=LIST_SIZE,
    exclude_purchased=True, max_per_category=-(-3 * LIST_SIZE // 8), is_active=True,
)  # fmt: skip
# How deep the replay asks each learner (the render path reads lists 50 deep, deeper if thin).
LIST_DEPTH = 100
VIEW_KINDS = ("view", "click")


@dataclass
class ShopperState:
    """What the online feature store holds for a shopper at the cut."""

    interaction_count: int = 0
    recent: list[str] = field(default_factory=list)  # viewed or clicked, newest first
    cart: list[str] = field(default_factory=list)
    purchased: list[str] = field(default_factory=list)  # newest first


def shopper_states(train: Interactions, shoppers: Sequence[TestShopper]) -> dict[str, ShopperState]:
    """The feature store's view of each shopper from their training events (linear in them)."""
    wanted = np.array(
        [train.user_index[s.user_id] for s in shoppers if s.user_id in train.user_index],
        dtype=np.int64,
    )
    states = {s.user_id: ShopperState(interaction_count=s.interaction_count) for s in shoppers}
    if not len(wanted):
        return states
    kinds = {str(k): code for code, k in enumerate(train.event_vocabulary)}
    views = {kinds[k] for k in VIEW_KINDS if k in kinds}
    cart_code, purchase_code = kinds.get("add_to_cart", -1), kinds.get("purchase", -1)
    remove_code = kinds.get("remove_from_cart", -1)
    carts: dict[str, dict[str, None]] = {}
    viewed: dict[str, dict[str, None]] = {}  # oldest first; dict order is the recency
    bought: dict[str, dict[str, None]] = {}
    for position in np.flatnonzero(np.isin(train.user_codes, wanted)):
        user = str(train.users[train.user_codes[position]])
        item = str(train.items[train.item_codes[position]])
        kind = int(train.event_codes[position])
        if kind in views:
            seen = viewed.setdefault(user, {})
            seen.pop(item, None)
            seen[item] = None
        elif kind == cart_code:
            carts.setdefault(user, {})[item] = None
        elif kind == purchase_code:
            mine = bought.setdefault(user, {})
            mine.pop(item, None)
            mine[item] = None
            carts.get(user, {}).pop(item, None)
        elif kind == remove_code:
            carts.get(user, {}).pop(item, None)
    for user, state in states.items():
        state.recent = list(reversed(viewed.get(user, {})))[: aisle_settings.RECENTLY_VIEWED_SIZE]
        state.purchased = list(reversed(bought.get(user, {})))[:500]
        state.cart = list(carts.get(user, {}))
    return states


class LazyCards(Mapping):
    """Catalog cards of the split's catalog, made when first asked for (1M items stay cheap)."""

    def __init__(self, catalog: Sequence[CatalogItem]):
        self.items = {item.sku: item for item in catalog}
        self.made: dict[str, CatalogCard] = {}

    def __getitem__(self, sku: str) -> CatalogCard:
        card = self.made.get(sku)
        if card is None:
            item = self.items[sku]
            card = CatalogCard(
                sku=item.sku, title=item.title, price=f"{item.price:.2f}", currency="",
                image_url="", category_path=item.category_path, brand=item.brand,
                launched_at=item.launched_at, is_active=True,
            )  # fmt: skip
            self.made[sku] = card
        return card

    def __contains__(self, sku: object) -> bool:
        return sku in self.items

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class Replay:
    """Serves each shopper of a split through the render path's code, from learners by role."""

    def __init__(
        self,
        learners: Mapping[str, Learner],
        split: Split,
        shoppers: Sequence[TestShopper],
    ):
        self.learners, self.split, self.shoppers = learners, split, shoppers
        self.cards = LazyCards(split.catalog)
        self.states = shopper_states(split.train, shoppers)
        self.now_s = split.cutoff
        self._neighbours: dict[str, list[tuple[str, float]]] = {}
        popular, trending = learners.get("popular"), learners.get("trending")
        self.popular_all = popular.popular(None, LIST_DEPTH * 2) if popular else []
        self.trending = trending.popular(None, LIST_DEPTH) if trending else []
        self.band = hour_band(time.gmtime(self.now_s).tm_hour)
        self.hour_list = popular.popular(f"hour:{self.band}", LIST_DEPTH) if popular else []

    def _similar(self, role: str, list_key: Callable[[str], str], sku: str, lists: dict) -> None:
        key = list_key(sku)
        if key not in self._neighbours:
            learner = self.learners.get(role)
            self._neighbours[key] = (
                learner.similar_items(sku, aisle_settings.SIMILAR_ITEMS_SIZE) if learner else []
            )
        lists[key] = self._neighbours[key]

    def state_after_first_event(self, shopper: TestShopper) -> ShopperState:
        """The feature store a moment after the shopper's revealed first test event."""
        before = self.states[shopper.user_id]
        state = ShopperState(
            before.interaction_count + 1, list(before.recent), list(before.cart),
            list(before.purchased),
        )  # fmt: skip
        item = shopper.history[-1]
        if shopper.revealed_kind in VIEW_KINDS:
            state.recent = [item, *(s for s in state.recent if s != item)]
        elif shopper.revealed_kind == "add_to_cart":
            state.cart = [*(s for s in state.cart if s != item), item]
        elif shopper.revealed_kind == "purchase":
            state.purchased = [item, *(s for s in state.purchased if s != item)]
            state.cart = [s for s in state.cart if s != item]
        return state

    def serve(self, shopper: TestShopper, table: dict[str, dict[str, float]] | None):
        state = self.state_after_first_event(shopper)
        country = shopper.context.get("country", "")
        lists: dict[str, list[tuple[str, float]]] = {
            redis_keys.POPULAR_ALL: self.popular_all,
            redis_keys.TRENDING_ALL: self.trending,
            redis_keys.hour_popular_list(self.band): self.hour_list,
        }
        segments = {}
        popular = self.learners.get("popular")
        if country and popular:
            country_list = popular.popular(f"country:{country}", LIST_DEPTH)
            lists[redis_keys.country_popular_list(country)] = country_list
            segments["country"] = country_list
        user_learner = self.learners.get("user")
        weights = (table or blend_table.default_table())[
            blend_table.tier_of(state.interaction_count)
        ]
        if user_learner and weights["user_list"] > 0:
            # The event re-scores the shopper's list, from what the re-score task reads.
            history = rescore_history(state.purchased, state.recent)
            lists[redis_keys.user_list(shopper.user_id)] = user_learner.recommend(
                shopper.user_id, history, LIST_DEPTH
            )
        anchors = list(dict.fromkeys([*state.recent, *state.cart]))[
            : aisle_settings.RECENT_CONTEXT_SIZE
        ]
        for sku in anchors:
            self._similar("similar_cf", redis_keys.similar_cf_list, sku, lists)
            self._similar("similar_content", redis_keys.similar_content_list, sku, lists)
        context = RecommendationContext(
            placement=HOME.key, user_id=shopper.user_id, country=country, limit=LIST_SIZE,
            now_s=self.now_s,
        )  # fmt: skip
        return rank_offline(
            context, HOME, lists=lists, interaction_count=state.interaction_count,
            recent=state.recent, cart=state.cart, purchased=state.purchased, segments=segments,
            trending=self.trending, table=table, cards=self.cards, now_s=self.now_s,
        )  # fmt: skip

    def lists(self, table: dict[str, dict[str, float]] | None) -> list[list[str]]:
        return [[item.sku for item in self.serve(s, table)[0]] for s in self.shoppers]


def tune_table(replay: Replay) -> dict[str, dict[str, float]]:
    """Each tier's blend weights that maximise Recall@20 on the replay's shoppers (validation).

    The blend is linear in the table's weights, so one serving with every weight at 1 gives
    each candidate's contribution per source; every combination of weight steps is then scored
    as a matrix product (filters and the category cap are applied when the table is used).
    Sources without any proposal in a tier keep their default weight there."""
    search = WeightSearch(blend_table.SOURCES, depth=LIST_SIZE)
    unit = {tier: dict.fromkeys(blend_table.SOURCES, 1.0) for tier in blend_table.TIERS}
    fired: dict[str, set[str]] = {}  # tier -> sources that proposed anything at all
    for shopper in replay.shoppers:
        purchased = set(replay.state_after_first_event(shopper).purchased)
        _, tier, blend = replay.serve(shopper, unit)
        fired.setdefault(tier, set()).update(g for g, c in blend.by_group.items() if c)
        skus = [s for s in blend.scores if s in replay.cards and s not in purchased]
        search.add(tier, blend.by_group, skus, shopper.relevant)  # what the placement could show
    table = blend_table.default_table()
    for tier in search.totals:
        best = search.best(tier, table[tier])
        # A source that never proposed anything here (views in a purchase-only log) had no
        # evidence either way: it keeps its default rather than the grid's arbitrary value.
        table[tier] = {
            s: w if s in fired.get(tier, ()) else table[tier][s] for s, w in best.items()
        }
    return table


def evaluate_served(
    validation_learners: Mapping[str, Learner],
    validation: Split,
    validation_shoppers: Sequence[TestShopper],
    test_learners: Sequence[Mapping[str, Learner]],
    test: Split,
    test_shoppers: Sequence[TestShopper],
) -> tuple[ModelResult, dict[str, dict[str, float]], ModelResult]:
    """(test result over seeds, the tuned table, the default table's test result)."""
    table = tune_table(Replay(validation_learners, validation, validation_shoppers))
    tuned, default = [], []
    for seed, learners in enumerate(test_learners):
        replay = Replay(learners, test, test_shoppers)
        tuned.append(summarise("served", replay.lists(table), test_shoppers, len(test.catalog)))
        if seed == 0:  # the untuned table, for comparison: one seed is enough
            default.append(
                summarise("served_default", replay.lists(None), test_shoppers, len(test.catalog))
            )
    result = mean_of(tuned)
    result.params = {"blend": table}
    return result, table, mean_of(default)
