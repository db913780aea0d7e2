"""Reads of the catalog and inventory; the only merch module other apps (recs) may read through."""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from merch.models import Product


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
