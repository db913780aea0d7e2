"""Reads of the catalog and stock: products, their categories and what may be sold now."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count

from aisle.sql import in_values
from merch.models import Category, Product


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
    return set(Product.objects.filter(sku__in=in_values(set(skus))).values_list("sku", flat=True))


def unavailable_skus() -> set[str]:
    """SKUs that must not be served: inactive, or nothing available to sell."""
    inactive = Product.objects.filter(is_active=False).values_list("sku", flat=True)
    sold_out = Product.objects.out_of_stock().values_list("sku", flat=True)
    return set(inactive) | set(sold_out)


def product_categories(skus: Iterable[str]) -> dict[str, str]:
    """Category path per SKU ("" for uncategorised), in one query."""
    rows = Product.objects.filter(sku__in=in_values(set(skus))).values_list("sku", "category__path")
    return {sku: path or "" for sku, path in rows}


def example_category_path() -> str | None:
    """A real category path to show as an example (the one with the most products, preferring
    a subcategory, whose path shows the '/'), so a hint never names a path the shop lacks."""
    paths = (
        Category.objects.annotate(product_count=Count("products"))
        .order_by("-product_count", "path")
        .values_list("path", flat=True)
    )
    return paths.filter(parent__isnull=False).first() or paths.first()


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
    # The product's own page when it has one (a host catalog's URL); blank: the storefront's.
    url: str = ""


def catalog_cards() -> list[CatalogCard]:
    """A card for every product (active or not), in one query."""
    rows = Product.objects.order_by("sku").values_list(
        "sku", "title", "price", "currency", "image_url", "category__path", "brand",
        "launched_at", "is_active", "url",
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
            url=url,
        )
        for (
            sku, title, price, currency, image_url, category_path, brand, launched_at, is_active,
            url,
        ) in rows
    ]  # fmt: skip


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
