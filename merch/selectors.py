"""Reads of catalog, stock, merchandising and experiments: the only merch module recs reads."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet

from merch.models import (
    Experiment,
    ExperimentVariant,
    MerchandisingRule,
    Placement,
    Product,
    remaining_traffic,
)


@dataclass(frozen=True)
class ProductSummary:
    """What the recommendation engine needs to know about a product, without ORM objects."""

    id: int
    sku: str
    title: str
    description: str
    category_path: str
    brand: str
    price: Decimal
    attributes: dict
    is_active: bool
    is_available: bool
    launched_at: object


def product_summaries(skus: Iterable[str] | None = None) -> list[ProductSummary]:
    """All products (or those with the given SKUs) with their availability, in one query."""
    queryset = Product.objects.select_related("category", "stock")
    if skus is not None:
        queryset = queryset.filter(sku__in=list(skus))
    return [
        ProductSummary(
            id=p.pk,
            sku=p.sku,
            title=p.title,
            description=p.description,
            category_path=p.category.path if p.category else "",
            brand=p.brand,
            price=p.price,
            attributes=p.attributes,
            is_active=p.is_active,
            is_available=p.is_active and hasattr(p, "stock") and p.stock.is_available,
            launched_at=p.launched_at,
        )
        for p in queryset
    ]


def existing_skus(skus: Iterable[str]) -> set[str]:
    """Which of these SKUs are in the catalog (active or not)."""
    return set(Product.objects.filter(sku__in=set(skus)).values_list("sku", flat=True))


def unavailable_skus() -> set[str]:
    """SKUs that must not be served: inactive, or nothing available to sell."""
    inactive = Product.objects.filter(is_active=False).values_list("sku", flat=True)
    sold_out = Product.objects.out_of_stock().values_list("sku", flat=True)
    return set(inactive) | set(sold_out)


def product_categories(skus: Iterable[str]) -> dict[str, str]:
    """Category path per SKU ("" for uncategorised), in one query."""
    return {
        sku: path or ""
        for sku, path in Product.objects.filter(sku__in=set(skus)).values_list(
            "sku", "category__path"
        )
    }


def available_skus(skus: Iterable[str]) -> set[str]:
    """Which of these SKUs may be sold right now (active and in stock), in one query.

    The render path asks this only when Redis, which normally holds availability, is down.
    """
    wanted = set(skus)
    if not wanted:
        return set()
    return set(
        Product.objects.filter(sku__in=wanted, is_active=True)
        .in_stock()
        .values_list("sku", flat=True)
    )


@dataclass(frozen=True)
class CatalogCard:
    """What a recommendation widget shows for a product; the engine caches these."""

    sku: str
    title: str
    price: str
    currency: str
    image_url: str
    category_path: str
    brand: str
    launched_at: float
    is_active: bool


def catalog_cards() -> list[CatalogCard]:
    """A card for every product (active or not), in one query."""
    rows = Product.objects.order_by("sku").values_list(
        "sku", "title", "price", "currency", "image_url", "category__path", "brand",
        "launched_at", "is_active",
    )  # fmt: skip
    return [
        CatalogCard(
            sku=sku,
            title=title,
            price=str(price),
            currency=currency,
            image_url=image_url,
            category_path=category_path or "",
            brand=brand,
            launched_at=launched_at.timestamp(),
            is_active=is_active,
        )
        for (
            sku, title, price, currency, image_url, category_path, brand, launched_at, is_active
        ) in rows
    ]  # fmt: skip


@dataclass(frozen=True)
class PlacementConfig:
    """How one placement is filled, as plain data the engine can cache."""

    key: str
    name: str
    default_strategy: str
    size: int
    exclude_purchased: bool
    max_per_category: int
    is_active: bool


@dataclass(frozen=True)
class RuleConfig:
    """One active merchandising rule as plain data; times are epoch seconds, "" = no category."""

    id: int
    placement_key: str
    category_path: str
    sku: str
    action: str
    position: int | None
    multiplier: float
    starts_at: float | None
    ends_at: float | None

    def is_live(self, now: float) -> bool:
        """Within its schedule at `now` (epoch seconds): start inclusive, end exclusive."""
        return (self.starts_at is None or self.starts_at <= now) and (
            self.ends_at is None or now < self.ends_at
        )

    def applies_to_category(self, category_path: str) -> bool:
        """A rule scoped to a category applies on that category's pages and those below it."""
        return not self.category_path or (
            category_path == self.category_path
            or category_path.startswith(self.category_path + "/")
        )


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def merchandising_config() -> tuple[dict[str, PlacementConfig], list[RuleConfig]]:
    """Every placement by key, and every active rule, in two queries.

    The schedule is not applied here: the result is cached, and a cached copy must not go stale
    when a rule's start or end passes, so the reader checks `RuleConfig.is_live` per request.
    """
    placements = {
        placement.key: PlacementConfig(
            key=placement.key,
            name=placement.name,
            default_strategy=placement.default_strategy,
            size=placement.size,
            exclude_purchased=placement.exclude_purchased,
            max_per_category=placement.max_per_category,
            is_active=placement.is_active,
        )
        for placement in Placement.objects.order_by("key")
    }
    rows = (
        MerchandisingRule.objects.filter(is_active=True)
        .order_by("pk")
        .values_list(
            "pk", "placement__key", "category__path", "product__sku", "action", "position",
            "multiplier", "starts_at", "ends_at",
        )
    )  # fmt: skip
    rules = [
        RuleConfig(
            id=pk,
            placement_key=placement_key,
            category_path=category_path or "",
            sku=sku,
            action=action,
            position=position,
            multiplier=multiplier,
            starts_at=_epoch(starts_at),
            ends_at=_epoch(ends_at),
        )
        for (
            pk, placement_key, category_path, sku, action, position, multiplier, starts_at, ends_at
        ) in rows
    ]  # fmt: skip
    return placements, rules


@dataclass(frozen=True)
class VariantConfig:
    """One experiment variant as plain data; the control's traffic is what the others leave."""

    name: str
    strategy: str
    traffic_percent: float
    is_control: bool
    is_shadow: bool


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment as plain data the engine can cache; times are epoch seconds.

    Variants come control first, then in the order they were created.
    """

    id: int
    name: str
    placement_key: str
    status: str
    salt: str
    starts_at: float | None
    ends_at: float | None
    variants: tuple[VariantConfig, ...]

    def is_live(self, now: float) -> bool:
        """Running and within its schedule at `now` (start inclusive, end exclusive).

        When it is not live, every shopper gets the control.
        """
        return (
            self.status == Experiment.Status.RUNNING
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )


def _experiment_configs(experiments: QuerySet[Experiment]) -> list[ExperimentConfig]:
    """ExperimentConfigs for a queryset, in two queries (one when it is empty)."""
    rows = list(
        experiments.values_list(
            "pk", "name", "placement__key", "status", "salt", "starts_at", "ends_at"
        )
    )
    if not rows:
        return []
    variants: dict[int, list[ExperimentVariant]] = {pk: [] for pk, *_ in rows}
    for variant in ExperimentVariant.objects.filter(experiment_id__in=variants).order_by(
        "-is_control", "pk"
    ):
        variants[variant.experiment_id].append(variant)
    return [
        ExperimentConfig(
            id=pk,
            name=name,
            placement_key=placement_key,
            status=status,
            salt=salt,
            starts_at=_epoch(starts_at),
            ends_at=_epoch(ends_at),
            variants=tuple(
                VariantConfig(
                    name=variant.name,
                    strategy=variant.strategy,
                    traffic_percent=float(
                        remaining_traffic(variants[pk])
                        if variant.is_control
                        else variant.traffic_percent
                    ),
                    is_control=variant.is_control,
                    is_shadow=variant.is_shadow,
                )
                for variant in variants[pk]
            ),
        )
        for pk, name, placement_key, status, salt, starts_at, ends_at in rows
    ]


def experiments_config() -> list[ExperimentConfig]:
    """The running and paused experiments (at most one per placement), in two queries.

    Like merchandising_config, the schedule is left to the reader (`ExperimentConfig.is_live`),
    so that a cached copy does not go stale when a start or end passes. A paused experiment is
    included (not live: everyone gets its control) so the reader can tell that case apart.
    """
    return _experiment_configs(
        Experiment.objects.filter(status__in=Experiment.LIVE_STATUSES).order_by(
            "placement__key", "pk"
        )
    )


def experiment_summaries() -> list[ExperimentConfig]:
    """Every experiment, newest first, for dashboards; in two queries."""
    return _experiment_configs(Experiment.objects.order_by("-created_at", "-pk"))


def experiment_by_id(pk: int) -> ExperimentConfig | None:
    """One experiment, or None when there is no such experiment; in two queries."""
    configs = _experiment_configs(Experiment.objects.filter(pk=pk))
    return configs[0] if configs else None


def placement_keys() -> list[str]:
    """The keys of the defined placements, for the API schema's enum."""
    return list(Placement.objects.order_by("key").values_list("key", flat=True))


@dataclass(frozen=True)
class ProductDetail:
    """One product as stored, with its stock: what the catalog API returns for a SKU."""

    sku: str
    title: str
    description: str
    category_names: list[str]
    brand: str
    price: Decimal
    currency: str
    image_url: str
    attributes: dict
    launched_at: datetime
    is_active: bool
    created_at: datetime
    updated_at: datetime
    on_hand: int
    reserved: int
    available_quantity: int


def product_detail(sku: str) -> ProductDetail | None:
    """The product with this SKU (active or not), None when there is none; in one query."""
    product = (
        Product.objects.select_related("stock", "category__parent__parent__parent")
        .filter(sku=sku)
        .first()
    )
    if product is None:
        return None
    names, node = [], product.category
    while node is not None:
        names.append(node.name)
        node = node.parent
    stock = getattr(product, "stock", None)
    return ProductDetail(
        sku=product.sku,
        title=product.title,
        description=product.description,
        category_names=names[::-1],
        brand=product.brand,
        price=product.price,
        currency=product.currency,
        image_url=product.image_url,
        attributes=product.attributes,
        launched_at=product.launched_at,
        is_active=product.is_active,
        created_at=product.created_at,
        updated_at=product.updated_at,
        on_hand=stock.on_hand if stock else 0,
        reserved=stock.reserved if stock else 0,
        available_quantity=stock.available_quantity if stock else 0,
    )
