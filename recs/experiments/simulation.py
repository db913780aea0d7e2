"""Simulated shoppers for an experiment: demo data for the dashboards and a rehearsal of a test.

Each simulated shopper has a taste (one category of the catalog, its products weighted by how
often they sell), arrives on a product page of it, is then served by the real render path (so the
experiment assigns them) and sends events through the real event pipeline: impression, and with
probabilities that depend on the variant they saw, click -> add-to-cart -> purchase of a listed
product, seconds apart. Then they browse the shop on their own: views (now and then an
add-to-cart) of products of their taste, without a rec_id. Shoppers differ in how engaged they
are (a lognormal factor with mean 1): an engaged one came back more often in the past weeks
(earlier views and purchases under the same session, the history CUPED reads) and is likelier to
cart and buy now, while each variant's mean rates stay the ones asked for. The outcome is known by construction,
which is what a rehearsal of the measurement needs; the organic browsing is what a shadow
comparison scores lists against. Timestamps spread over the past hours so that the dashboard's
charts have a history.
"""

import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import accumulate

from django.db.models import Count

from merch.models import Product
from merch.selectors.experiments import ExperimentConfig
from recs.events.records import EventRecord
from recs.events.services import apply_event_batch
from recs.experiments.attribution import rollup_experiment
from recs.experiments.served import drain_served_log
from recs.experiments.shadow import score_shadows
from recs.models import Event
from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext, RecommendedItem

COUNTRIES = ("United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands")
DEVICES = ("desktop", "mobile", "tablet")
DEFAULT_CONVERSION = 0.05
DEFAULT_ADD_TO_CART = 0.12
# Spread of shoppers' engagement (lognormal sigma; its mean is 1), and per unit of it the chance
# of an earlier purchase in the weeks before the visit.
ENGAGEMENT_SIGMA = 1.1
HISTORY_PURCHASE_RATE = 0.15
HISTORY_DAYS = (1.0, 21.0)
# The last shopper is served this long before now, so that their whole visit is in the past.
VISIT_SECONDS = 900
EVENT_BATCH = 500


@dataclass
class SimulationResult:
    served: Counter = field(default_factory=Counter)
    converted: Counter = field(default_factory=Counter)
    carted: Counter = field(default_factory=Counter)
    organic_views: int = 0
    events: int = 0


@dataclass(frozen=True)
class ShopTastes:
    """The catalog as shoppers' tastes: per category, its products and cumulative weights
    (sales + 1, so that a product nobody bought yet is still seen now and then)."""

    categories: tuple[tuple[str, ...], ...]
    product_weights: tuple[tuple[float, ...], ...]  # cumulative, per category
    category_weights: tuple[float, ...]  # cumulative
    prices: dict[str, Decimal] = field(default_factory=dict)

    def taste(self, rng: random.Random) -> int | None:
        """A shopper's category: a busy one is more likely (None: nothing to browse)."""
        if not self.categories:
            return None
        return rng.choices(range(len(self.categories)), cum_weights=self.category_weights)[0]

    def products(self, rng: random.Random, taste: int | None, count: int) -> list[str]:
        """Up to `count` distinct products of the taste, the better sellers more likely."""
        if taste is None or count <= 0:
            return []
        skus = self.categories[taste]
        drawn = rng.choices(skus, cum_weights=self.product_weights[taste], k=count)
        return list(dict.fromkeys(drawn))


def shop_tastes() -> ShopTastes:
    """Active, in-stock products by category (uncategorised ones as one more), weighted by sales
    in the event log."""
    sales = dict(
        Event.objects.filter(event_type="purchase")
        .values("product_sku")
        .annotate(sold=Count("id"))
        .values_list("product_sku", "sold")
    )
    by_category: dict[str, list[str]] = {}
    prices: dict[str, Decimal] = {}
    products = (
        Product.objects.filter(is_active=True)
        .in_stock()
        .order_by("sku")
        .values_list("sku", "category__path", "price")
    )
    for sku, path, price in products:
        by_category.setdefault(path or "", []).append(sku)
        prices[sku] = price
    categories, product_weights, totals = [], [], []
    for path in sorted(by_category):
        skus = by_category[path]
        weights = list(accumulate(sales.get(sku, 0) + 1.0 for sku in skus))
        categories.append(tuple(skus))
        product_weights.append(tuple(weights))
        totals.append(weights[-1])
    return ShopTastes(tuple(categories), tuple(product_weights), tuple(accumulate(totals)), prices)


def score_shadows_now(entries: list[dict]) -> None:
    """drain_served_log's hand-off, scoring in this process instead of queueing: a simulated
    shopper's later events are applied right after, and a worker scoring later would find them in
    the shopper's history, which a learner leaves out of its list; in a real shop a worker scores
    seconds after the answer. It also scores when no worker runs yet (setup_demo)."""
    for entry in entries:
        context = entry.pop("context")
        shadows = entry.pop("shadows")
        score_shadows(RecommendationContext(**context), entry, shadows)


def _event(
    kind: str,
    session: str,
    suffix: str,
    sku: str,
    at: float,
    *,
    rec_id: str = "",
    item: RecommendedItem | None = None,
    price: Decimal | None = None,
    order_id: str = "",
) -> EventRecord:
    if price is None and item is not None and item.price:
        price = Decimal(item.price)
    return EventRecord(
        event_id=f"{session}-{suffix}", event_type=kind, session_id=session, product_sku=sku,
        occurred_at=datetime.fromtimestamp(at, tz=UTC),
        context={"rec_id": rec_id} if rec_id else {},
        price=price if kind in ("add_to_cart", "purchase") else None,
        quantity=1 if kind in ("add_to_cart", "purchase") else None, order_id=order_id,
    )  # fmt: skip


def _history(
    rng: random.Random,
    tastes: ShopTastes,
    session: str,
    taste: int | None,
    at: float,
    engagement: float,
    history_views: float,
) -> list[EventRecord]:
    """A returning shopper's earlier visits: Poisson(history_views * engagement) views of their
    taste over the past weeks and, with probability 0.15 * engagement, a purchase of one."""
    views = _poisson(rng, history_views * engagement)
    history = []
    for i, sku in enumerate(tastes.products(rng, taste, views)):
        when = at - rng.uniform(*HISTORY_DAYS) * 86400
        history.append(_event("view", session, f"past-view{i}", sku, when))
    if history and rng.random() < min(HISTORY_PURCHASE_RATE * engagement, 1.0):
        bought = rng.choice(history)
        history.append(
            _event("purchase", session, "past-buy", bought.product_sku,
                   bought.occurred_at.timestamp() + 120, price=tastes.prices.get(bought.product_sku),
                   order_id=f"{session}-past")
        )  # fmt: skip
    return history


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: the means here are small)."""
    if mean <= 0:
        return 0
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _apply(batch_prefix: str, records: list[EventRecord]) -> None:
    for start in range(0, len(records), EVENT_BATCH):
        apply_event_batch(f"{batch_prefix}-{start}", records[start : start + EVENT_BATCH])


def simulate_shoppers(
    experiment: ExperimentConfig,
    shoppers: int,
    *,
    hours: float = 6.0,
    conversion: dict[str, float] | None = None,
    click_rate: float = 0.3,
    add_to_cart: dict[str, float] | None = None,
    organic_views: int = 3,
    organic_cart_rate: float = 0.05,
    history_views: float = 3.0,
    seed: int = 7,
) -> SimulationResult:
    """Serve `shoppers` anonymous visitors on the experiment's placement over the last `hours`
    and apply their events; then roll the experiment up.

    `conversion` maps variant name -> purchase probability (others 0.05), `add_to_cart` ->
    probability of adding a listed product to the cart (others 0.12); a buyer always added it to
    the cart first, and clicked it before that, so the funnel nests: a click at
    max(click_rate, cart, conversion). After being served each shopper views 1 to
    `organic_views` products of their taste, drawn independently of the list (a product it
    happened to show counts as a hit for it), and with `organic_cart_rate` adds one to the cart.
    Before the visit, a shopper of engagement e viewed Poisson(history_views * e) products of
    their taste over the past weeks and, if any, bought one with probability 0.15 e
    (history_views 0: every shopper is new);
    their cart and purchase probabilities now are the variant's times e (at most 1).
    Deterministic per seed on the same data."""
    rng = random.Random(seed)
    conversion = conversion or {}
    add_to_cart = add_to_cart or {}
    tastes = shop_tastes()
    result = SimulationResult()
    now = time.time()
    prefix = f"sim-{experiment.id}-{seed}"

    # Each shopper arrives on a product page of their taste: the history a personal list or a
    # learner starts from, applied before anyone is served.
    visitors = []
    arrivals: list[EventRecord] = []
    for n in range(shoppers):
        at = now - VISIT_SECONDS - hours * 3600 * (1 - n / max(shoppers, 1))
        session = f"{prefix}-{n}"
        taste = tastes.taste(rng)
        engagement = rng.lognormvariate(-(ENGAGEMENT_SIGMA**2) / 2, ENGAGEMENT_SIGMA)
        arrivals += _history(rng, tastes, session, taste, at, engagement, history_views)
        arrivals += [
            _event("view", session, "arrive", sku, at - 30)
            for sku in tastes.products(rng, taste, 1)
        ]
        visitors.append(
            (session, at, taste, engagement, rng.choice(COUNTRIES), rng.choice(DEVICES))
        )
    _apply(f"{prefix}-arrive", arrivals)

    records: list[EventRecord] = []
    for session, at, taste, engagement, country, device in visitors:
        served = recommend(
            RecommendationContext(
                placement=experiment.placement_key, session_id=session, limit=6, now_s=at,
                country=country, device=device,
            )
        )  # fmt: skip
        result.served[served.variant] += 1
        rec_id = served.rec_id
        records += [
            _event("impression", session, f"imp{i}", item.sku, at + 1, rec_id=rec_id)
            for i, item in enumerate(served.items)
        ]
        p_buy = min(conversion.get(served.variant, DEFAULT_CONVERSION) * engagement, 1.0)
        p_cart = max(min(add_to_cart.get(served.variant, DEFAULT_ADD_TO_CART) * engagement, 1.0),
                     p_buy)  # fmt: skip
        draw = rng.random()
        if served.items and draw < max(click_rate, p_cart):
            item = rng.choice(served.items[:3])
            clicked_at = at + rng.uniform(3, 30)
            records.append(_event("click", session, "click", item.sku, clicked_at, rec_id=rec_id))
            if draw < p_cart:
                carted_at = clicked_at + rng.uniform(5, 60)
                records.append(
                    _event("add_to_cart", session, "cart", item.sku, carted_at, rec_id=rec_id,
                           item=item)
                )  # fmt: skip
                result.carted[served.variant] += 1
                if draw < p_buy:
                    records.append(
                        _event("purchase", session, "buy", item.sku,
                               carted_at + rng.uniform(30, 240), rec_id=rec_id, item=item,
                               order_id=f"{session}-order")
                    )  # fmt: skip
                    result.converted[served.variant] += 1
        browsed_at = at + rng.uniform(20, 120)
        viewed = tastes.products(
            rng, taste, rng.randint(1, organic_views) if organic_views > 0 else 0
        )
        for i, sku in enumerate(viewed):
            records.append(_event("view", session, f"view{i}", sku, browsed_at))
            browsed_at += rng.uniform(10, 90)
        result.organic_views += len(viewed)
        if viewed and rng.random() < organic_cart_rate:
            records.append(_event("add_to_cart", session, "own-cart", rng.choice(viewed),
                                  browsed_at + rng.uniform(5, 30)))  # fmt: skip
    drain_served_log(score_shadows_now)
    _apply(prefix, records)
    result.events = len(arrivals) + len(records)
    rollup_experiment(experiment)
    return result
