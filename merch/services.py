"""Writes to the catalog, inventory and merchandising. Every change announces itself on commit."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.text import slugify

from merch.models import Category, MerchandisingRule, Placement, Product, Stock
from merch.signals import (
    StockChange,
    merchandising_changed,
    products_activation_changed,
    stock_changed,
)


def _announce_stock_changes(changes: list[StockChange]) -> None:
    if changes:
        transaction.on_commit(lambda: stock_changed.send(sender=Stock, changes=changes))


@transaction.atomic
def set_stock(
    product: Product | int, *, on_hand: int | None = None, reserved: int | None = None
) -> Stock:
    """Set a product's on-hand and/or reserved quantity; creates the stock row when missing."""
    product_id = product if isinstance(product, int) else product.pk
    if (on_hand is not None and on_hand < 0) or (reserved is not None and reserved < 0):
        raise ValueError("Stock quantities cannot be negative.")
    stock, _ = (
        Stock.objects.select_for_update()
        .select_related("product")
        .get_or_create(product_id=product_id)
    )
    was_available = stock.is_available
    before = (stock.on_hand, stock.reserved)
    if on_hand is not None:
        stock.on_hand = on_hand
    if reserved is not None:
        stock.reserved = reserved
    if (stock.on_hand, stock.reserved) != before or stock._state.adding:
        stock.save()
        _announce_stock_changes(
            [
                StockChange(
                    product_id=product_id,
                    sku=stock.product.sku,
                    available_quantity=stock.available_quantity,
                    was_available=was_available,
                )
            ]
        )
    return stock


@dataclass(frozen=True)
class StockLevel:
    sku: str
    on_hand: int
    reserved: int = 0


@transaction.atomic
def set_stock_levels(levels: Iterable[StockLevel]) -> list[StockChange]:
    """Set many products' stock in one transaction with bulk queries (imports, flash sales).

    Unknown SKUs raise KeyError before anything is written.
    """
    levels = list(levels)
    products = dict(
        Product.objects.filter(sku__in=[level.sku for level in levels]).values_list("sku", "pk")
    )
    missing = sorted({level.sku for level in levels} - products.keys())
    if missing:
        raise KeyError(f"Unknown SKUs: {', '.join(missing[:20])}")
    existing = {
        stock.product_id: stock
        for stock in Stock.objects.select_for_update().filter(product_id__in=products.values())
    }
    to_create: list[Stock] = []
    to_update: list[Stock] = []
    changes: list[StockChange] = []
    now = timezone.now()
    for level in levels:
        if level.on_hand < 0 or level.reserved < 0:
            raise ValueError(f"Stock quantities cannot be negative (SKU {level.sku}).")
        product_id = products[level.sku]
        stock = existing.get(product_id)
        if stock is None:
            stock = Stock(product_id=product_id, on_hand=level.on_hand, reserved=level.reserved)
            stock.updated_at = now
            existing[product_id] = stock
            to_create.append(stock)
            was_available = False
        elif (stock.on_hand, stock.reserved) == (level.on_hand, level.reserved):
            continue
        else:
            was_available = stock.is_available
            stock.on_hand, stock.reserved, stock.updated_at = level.on_hand, level.reserved, now
            to_update.append(stock)
        changes.append(
            StockChange(
                product_id=product_id,
                sku=level.sku,
                available_quantity=stock.available_quantity,
                was_available=was_available,
            )
        )
    Stock.objects.bulk_create(to_create, batch_size=1000)
    Stock.objects.bulk_update(to_update, ["on_hand", "reserved", "updated_at"], batch_size=1000)
    _announce_stock_changes(changes)
    return changes


def mark_out_of_stock(product_ids: Sequence[int]) -> list[StockChange]:
    """Sell out products: on hand drops to what is already reserved (nothing left to sell)."""
    stocks = Stock.objects.filter(product_id__in=product_ids).select_related("product")
    levels = {
        s.product.sku: StockLevel(s.product.sku, on_hand=s.reserved, reserved=s.reserved)
        for s in stocks
    }
    for sku in (
        Product.objects.filter(pk__in=product_ids)
        .exclude(stock__isnull=False)
        .values_list("sku", flat=True)
    ):
        levels[sku] = StockLevel(sku, on_hand=0, reserved=0)
    return set_stock_levels(levels.values())


@transaction.atomic
def set_products_active(product_ids: Sequence[int], *, is_active: bool) -> int:
    """Activate or deactivate products; returns how many changed."""
    changing = Product.objects.filter(pk__in=product_ids).exclude(is_active=is_active)
    skus = list(changing.values_list("sku", flat=True))
    updated = changing.update(is_active=is_active, updated_at=timezone.now())
    if skus:
        transaction.on_commit(
            lambda: products_activation_changed.send(sender=Product, skus=skus, is_active=is_active)
        )
    return updated


def get_or_create_category_path(names: Sequence[str]) -> Category:
    """Return the leaf of a category path like ["Home", "Candles"], creating missing nodes."""
    if not names:
        raise ValueError("A category path needs at least one name.")
    parent: Category | None = None
    path_parts: list[str] = []
    for name in names:
        slug = slugify(name) or "unnamed"
        path_parts.append(slug)
        parent, _ = Category.objects.get_or_create(
            path="/".join(path_parts), defaults={"name": name, "slug": slug, "parent": parent}
        )
    assert parent is not None
    return parent


@dataclass(frozen=True)
class ProductRecord:
    """A product as an importer describes it."""

    sku: str
    title: str
    price: Decimal
    category_path: tuple[str, ...] = ()
    description: str = ""
    brand: str = ""
    currency: str = "GBP"
    attributes: dict[str, Any] | None = None
    image_url: str = ""
    launched_at: Any = None


@transaction.atomic
def upsert_products(records: Iterable[ProductRecord]) -> tuple[int, int]:
    """Create or update products by SKU in bulk; returns (created, updated)."""
    records = list(records)
    categories: dict[tuple[str, ...], Category | None] = {(): None}
    for record in records:
        if record.category_path not in categories:
            categories[record.category_path] = get_or_create_category_path(record.category_path)
    existing = {p.sku: p for p in Product.objects.filter(sku__in=[r.sku for r in records])}
    fields = [
        "title", "description", "category", "brand", "price", "currency", "attributes",
        "image_url", "launched_at",
    ]  # fmt: skip
    to_create, to_update = [], []
    for record in records:
        values = {
            "title": record.title,
            "description": record.description,
            "category": categories[record.category_path],
            "brand": record.brand,
            "price": record.price,
            "currency": record.currency,
            "attributes": record.attributes or {},
            "image_url": record.image_url,
            "launched_at": record.launched_at or timezone.now(),
        }
        product = existing.get(record.sku)
        if product is None:
            to_create.append(Product(sku=record.sku, **values))
        else:
            for name, value in values.items():
                setattr(product, name, value)
            product.updated_at = timezone.now()
            to_update.append(product)
    Product.objects.bulk_create(to_create, batch_size=1000)
    Product.objects.bulk_update(to_update, [*fields, "updated_at"], batch_size=1000)
    return len(to_create), len(to_update)


def _announce_merchandising_change(sender: type[models.Model]) -> None:
    transaction.on_commit(lambda: merchandising_changed.send(sender=sender))


def _differs_from_stored(instance: models.Model) -> bool:
    """Whether saving would change the stored row (a new row always does); locks the row."""
    if instance._state.adding or instance.pk is None:
        return True
    model = type(instance)
    stored = model._default_manager.select_for_update().filter(pk=instance.pk).first()
    if stored is None:
        return True
    return any(
        getattr(stored, field.attname) != getattr(instance, field.attname)
        for field in model._meta.concrete_fields
        if not getattr(field, "auto_now", False) and not getattr(field, "auto_now_add", False)
    )


def _rule_ids(rule_ids: Iterable[int | str]) -> list[int]:
    try:
        return [int(rule_id) for rule_id in rule_ids]
    except (TypeError, ValueError) as error:
        raise ValidationError(f"Rule ids must be integers ({error}).") from error


@transaction.atomic
def save_placement(placement: Placement) -> Placement:
    """Validate and save a placement; readers hear about it on commit if anything changed."""
    placement.full_clean()
    if _differs_from_stored(placement):
        placement.save()
        _announce_merchandising_change(Placement)
    return placement


@transaction.atomic
def save_merchandising_rule(rule: MerchandisingRule) -> MerchandisingRule:
    """Validate and save a rule; readers hear about it on commit if anything changed."""
    rule.full_clean()
    if _differs_from_stored(rule):
        rule.save()
        _announce_merchandising_change(MerchandisingRule)
    return rule


@transaction.atomic
def delete_merchandising_rules(rule_ids: Iterable[int]) -> int:
    """Delete rules; returns how many were deleted."""
    deleted, _ = MerchandisingRule.objects.filter(pk__in=_rule_ids(rule_ids)).delete()
    if deleted:
        _announce_merchandising_change(MerchandisingRule)
    return deleted


@transaction.atomic
def set_rules_active(rule_ids: Iterable[int], *, is_active: bool) -> int:
    """Switch rules on or off without deleting them; returns how many changed."""
    if not isinstance(is_active, bool):
        raise ValidationError("is_active must be True or False.")
    changed = (
        MerchandisingRule.objects.filter(pk__in=_rule_ids(rule_ids))
        .exclude(is_active=is_active)
        .update(is_active=is_active, updated_at=timezone.now())
    )
    if changed:
        _announce_merchandising_change(MerchandisingRule)
    return changed
