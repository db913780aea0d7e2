"""Every feature, declared once: entity, which events count, aggregation, window in UTC hours.

The online store (recs/features/online.py) and the offline point-in-time computation
(recs/features/offline.py) are both derived from these declarations, so training and serving
cannot drift apart; `manage.py feature_skew` proves it.
"""

from collections.abc import Callable
from dataclasses import dataclass

from aisle.conf import aisle_settings
from recs.features.aggregations import (
    Aggregation,
    BucketedSum,
    CartState,
    DecayedScore,
    DistinctCount,
    LastN,
)
from recs.features.events import FeatureEvent

INTERACTIONS = frozenset({"view", "click", "add_to_cart", "purchase"})
VIEWS = frozenset({"view", "click"})
CART_EVENTS = frozenset({"add_to_cart", "remove_from_cart", "purchase"})
PURCHASE = frozenset({"purchase"})

# Which entities a feature can belong to. "segment" ids look like "all", "country:Germany",
# "device:mobile"; a user's anonymous session counts for the user once the session is linked.
ENTITIES = ("user", "session", "product", "segment")


def event_weight(event: FeatureEvent) -> float:
    return aisle_settings.EVENT_WEIGHTS.get(event.event_type, 0.0)


def revenue(event: FeatureEvent) -> float:
    return float(event.price or 0) * (event.quantity or 1)


def one(event: FeatureEvent) -> float:
    return 1.0


@dataclass(frozen=True)
class Feature:
    """A stored feature: computed online by the workers and offline from the event log."""

    name: str
    entity: str
    event_types: frozenset[str]
    aggregation: Aggregation
    description: str

    def counts(self, event: FeatureEvent) -> bool:
        return event.event_type in self.event_types


@dataclass(frozen=True)
class DerivedFeature:
    """A feature computed from other features of the same entity, identically online and offline."""

    name: str
    entity: str
    inputs: tuple[str, ...]
    compute: Callable[..., float]
    description: str


def _rate(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


def _features() -> list[Feature | DerivedFeature]:
    shopper_features: list[Feature | DerivedFeature] = []
    for entity in ("user", "session"):
        shopper_features += [
            Feature("interaction_count", entity, INTERACTIONS, BucketedSum(one, None),
                    "All-time views, clicks, add-to-carts and purchases; drives the cold-start tiers."),
            Feature("recently_viewed", entity, VIEWS,
                    LastN(key=lambda e: e.product_sku, size=aisle_settings.RECENTLY_VIEWED_SIZE),
                    "Most recently viewed or clicked products, newest first."),
            Feature("cart", entity, CART_EVENTS, CartState(),
                    "Products in the cart now: added and not since removed or bought."),
            Feature("category_affinity", entity, INTERACTIONS,
                    DecayedScore(weight=event_weight, half_life_hours=aisle_settings.AFFINITY_HALF_LIFE_HOURS,
                                 key=lambda e: e.category),
                    "Event-weighted, exponentially decayed interest per category."),
        ]  # fmt: skip
    return [
        *shopper_features,
        Feature("session_count_168h", "user", INTERACTIONS,
                DistinctCount(key=lambda e: e.session_id, window_hours=168),
                "Distinct sessions in the last 168 h."),
        Feature("purchased_products", "user", PURCHASE, LastN(key=lambda e: e.product_sku, size=500),
                "Products bought, newest first (for the already-bought filter)."),
        Feature("order_value_sum_2160h", "user", PURCHASE, BucketedSum(revenue, 2160),
                "Revenue from the user's purchases in the last 2160 h (90 days)."),
        Feature("order_count_2160h", "user", PURCHASE,
                DistinctCount(key=lambda e: e.order_id or e.session_id, window_hours=2160),
                "Distinct orders in the last 2160 h."),
        DerivedFeature("avg_cart_value_2160h", "user", ("order_value_sum_2160h", "order_count_2160h"),
                       _rate, "Average value of a purchased cart (order) over 2160 h."),
        Feature("views_1h", "product", VIEWS, BucketedSum(one, 1), "Views and clicks, last hour."),
        Feature("views_24h", "product", VIEWS, BucketedSum(one, 24), "Views and clicks, last 24 h."),
        Feature("add_to_carts_1h", "product", frozenset({"add_to_cart"}), BucketedSum(one, 1),
                "Add-to-carts, last hour."),
        Feature("add_to_carts_24h", "product", frozenset({"add_to_cart"}), BucketedSum(one, 24),
                "Add-to-carts, last 24 h."),
        Feature("purchases_1h", "product", PURCHASE, BucketedSum(lambda e: e.quantity or 1, 1),
                "Units bought, last hour."),
        Feature("purchases_24h", "product", PURCHASE, BucketedSum(lambda e: e.quantity or 1, 24),
                "Units bought, last 24 h."),
        DerivedFeature("view_to_purchase_rate_24h", "product", ("purchases_24h", "views_24h"), _rate,
                       "Units bought per view over 24 h (0 without views)."),
        Feature("trending_score", "product", INTERACTIONS,
                DecayedScore(weight=event_weight, half_life_hours=aisle_settings.TRENDING_HALF_LIFE_HOURS),
                "Event-weighted score decaying with TRENDING_HALF_LIFE_HOURS; ranks 'trending now'."),
        Feature("popularity", "segment", INTERACTIONS,
                DecayedScore(weight=event_weight, half_life_hours=aisle_settings.POPULARITY_HALF_LIFE_HOURS,
                             key=lambda e: e.product_sku, top_n=aisle_settings.SEGMENT_POPULARITY_SIZE),
                "Per segment (all, country:X, device:Y): decayed, event-weighted score per product."),
    ]  # fmt: skip


FEATURES: dict[tuple[str, str], Feature | DerivedFeature] = {
    (feature.entity, feature.name): feature for feature in _features()
}


def stored_features() -> list[Feature]:
    return [f for f in FEATURES.values() if isinstance(f, Feature)]


def resolve(
    entity: str, names: list[str] | tuple[str, ...] | None
) -> list[Feature | DerivedFeature]:
    """The declarations for these names (all of the entity's when None); unknown names raise."""
    if entity not in ENTITIES:
        raise KeyError(f"Unknown entity {entity!r}; entities are {', '.join(ENTITIES)}")
    if names is None:
        return [f for (e, _), f in FEATURES.items() if e == entity]
    unknown = [name for name in names if (entity, name) not in FEATURES]
    if unknown:
        raise KeyError(f"Unknown {entity} features: {', '.join(unknown)}")
    return [FEATURES[(entity, name)] for name in names]
