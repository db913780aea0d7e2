"""Writes to the catalog and stock: products, categories, activation, stock levels.

Each write announces itself on commit (merch.signals), so readers never see a rolled-back change.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from merch.models import Category, Product, Stock
from merch.signals import StockChange, products_activation_changed, products_changed, stock_changed


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
    """A product's stock as a feed states it; `reserved=None` keeps what is stored (0 if new)."""

    sku: str
    on_hand: int
    reserved: int | None = 0


@dataclass(frozen=True)
class StockLevelsResult:
    """What update_stock_levels did, by SKU."""

    updated: list[str]
    unchanged: list[str]
    unknown: list[str]
    changes: list[StockChange]


@transaction.atomic
def set_stock_levels(levels: Iterable[StockLevel]) -> list[StockChange]:
    """Set many products' stock in one transaction with bulk queries (imports, flash sales).

    Unknown SKUs raise KeyError before anything is written.
    """
    levels = list(levels)
    known = set(Product.objects.filter(sku__in={level.sku for level in levels}).values_list(
        "sku", flat=True
    ))  # fmt: skip
    missing = sorted({level.sku for level in levels} - known)
    if missing:
        raise KeyError(f"Unknown SKUs: {', '.join(missing[:20])}")
    return update_stock_levels(levels).changes


@transaction.atomic
def update_stock_levels(levels: Iterable[StockLevel]) -> StockLevelsResult:
    """Like set_stock_levels, but unknown SKUs are reported instead of failing the batch, so
    that a feed's other rows still land (the catalog API's partial acceptance). A SKU given
    twice takes its last level."""
    by_sku = {level.sku: level for level in levels}
    for level in by_sku.values():
        if level.on_hand < 0 or (level.reserved is not None and level.reserved < 0):
            raise ValueError(f"Stock quantities cannot be negative (SKU {level.sku}).")
    products = dict(Product.objects.filter(sku__in=list(by_sku)).values_list("sku", "pk"))
    existing = {
        stock.product_id: stock
        for stock in Stock.objects.select_for_update().filter(product_id__in=products.values())
    }
    to_create: list[Stock] = []
    to_update: list[Stock] = []
    changes: list[StockChange] = []
    unchanged: list[str] = []
    now = timezone.now()
    for sku, level in by_sku.items():
        product_id = products.get(sku)
        if product_id is None:
            continue
        stock = existing.get(product_id)
        if stock is None:
            reserved = level.reserved or 0
            stock = Stock(product_id=product_id, on_hand=level.on_hand, reserved=reserved)
            stock.updated_at = now
            to_create.append(stock)
            was_available = False
        else:
            reserved = stock.reserved if level.reserved is None else level.reserved
            if (stock.on_hand, stock.reserved) == (level.on_hand, reserved):
                unchanged.append(sku)
                continue
            was_available = stock.is_available
            stock.on_hand, stock.reserved, stock.updated_at = level.on_hand, reserved, now
            to_update.append(stock)
        changes.append(
            StockChange(
                product_id=product_id,
                sku=sku,
                available_quantity=stock.available_quantity,
                was_available=was_available,
            )
        )
    Stock.objects.bulk_create(to_create, batch_size=1000)
    Stock.objects.bulk_update(to_update, ["on_hand", "reserved", "updated_at"], batch_size=1000)
    _announce_stock_changes(changes)
    return StockLevelsResult(
        updated=[change.sku for change in changes],
        unchanged=unchanged,
        unknown=[sku for sku in by_sku if sku not in products],
        changes=changes,
    )


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
    _announce_activation(skus, is_active)
    return updated


def _announce_activation(skus: list[str], is_active: bool) -> None:
    if skus:
        transaction.on_commit(
            lambda: products_activation_changed.send(sender=Product, skus=skus, is_active=is_active)
        )


@transaction.atomic
def deactivate_product(sku: str) -> Product:
    """Take a product off sale by SKU (the catalog API's DELETE); raises Product.DoesNotExist.

    The row and its history stay: events may still name it, and an upsert can bring it back."""
    product = Product.objects.select_for_update().get(sku=sku)
    if product.is_active:
        set_products_active([product.pk], is_active=False)
        product.refresh_from_db()
    return product


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
    """A product as an importer describes it: every field is replaced on upsert, except that a
    missing `launched_at` keeps the stored one (now, for a new product), and a `url` of None
    keeps the stored page URL (blank, for a new product): only the shop's own catalog
    (merch.catalog_source) knows its product pages."""

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
    is_active: bool = True
    url: str | None = None


@dataclass(frozen=True)
class UpsertResult:
    """What upsert_products did, by SKU; an identical re-sent product is `unchanged`."""

    created: list[str]
    updated: list[str]
    unchanged: list[str]


_UPSERT_FIELDS = [
    "title", "description", "category", "brand", "price", "currency", "attributes",
    "image_url", "launched_at", "is_active", "url",
]  # fmt: skip


@transaction.atomic
def upsert_products(records: Iterable[ProductRecord]) -> UpsertResult:
    """Create or update products by SKU in bulk. Idempotent: a product whose fields are already
    stored is left alone (its updated_at too). A SKU given twice takes its last record.

    On commit, readers hear which products were created or changed (products_changed), and
    which may no longer be sold or may be sold again (products_activation_changed)."""
    by_sku = {record.sku: record for record in records}
    categories: dict[tuple[str, ...], Category | None] = {(): None}
    for record in by_sku.values():
        if record.category_path not in categories:
            categories[record.category_path] = get_or_create_category_path(record.category_path)
    existing = {p.sku: p for p in Product.objects.select_for_update().filter(sku__in=list(by_sku))}
    now = timezone.now()
    to_create: list[Product] = []
    to_update: list[Product] = []
    unchanged: list[str] = []
    flipped: dict[bool, list[str]] = {True: [], False: []}
    for sku, record in by_sku.items():
        category = categories[record.category_path]
        values = {
            "title": record.title,
            "description": record.description,
            "category_id": category.pk if category else None,
            "brand": record.brand,
            "price": record.price,
            "currency": record.currency,
            "attributes": record.attributes or {},
            "image_url": record.image_url,
            "is_active": record.is_active,
        }
        if record.url is not None:
            values["url"] = record.url
        product = existing.get(sku)
        if product is None:
            product = Product(sku=sku, launched_at=record.launched_at or now, **values)
            to_create.append(product)
            continue
        if record.launched_at is not None:
            values["launched_at"] = record.launched_at
        if all(getattr(product, name) == value for name, value in values.items()):
            unchanged.append(sku)
            continue
        if product.is_active != record.is_active:
            flipped[record.is_active].append(sku)
        for name, value in values.items():
            setattr(product, name, value)
        product.updated_at = now
        to_update.append(product)
    Product.objects.bulk_create(to_create, batch_size=1000)
    Product.objects.bulk_update(to_update, [*_UPSERT_FIELDS, "updated_at"], batch_size=1000)
    created = [p.sku for p in to_create]
    # A new product has no stock yet: readers must learn that it cannot be sold (and whether
    # it is active) as they would for a flip, or it would count as available until the next
    # periodic sync.
    for is_active in (False, True):
        _announce_activation(
            flipped[is_active] + [p.sku for p in to_create if p.is_active == is_active], is_active
        )
    changed = created + [p.sku for p in to_update]
    if changed:
        transaction.on_commit(lambda: products_changed.send(sender=Product, skus=changed))
    return UpsertResult(created=created, updated=[p.sku for p in to_update], unchanged=unchanged)


def announce_product_edit(product: Product) -> None:
    """A product saved elsewhere (the admin form): readers reload its card and content
    neighbours on commit, as after an upsert."""
    sku = product.sku
    transaction.on_commit(lambda: products_changed.send(sender=Product, skus=[sku]))
