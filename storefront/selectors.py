"""Catalog reads of the storefront pages: only active products, with stock and category."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q, QuerySet

from merch.models import Category, Product

NEW_ARRIVALS_SIZE = 8


def storefront_products() -> QuerySet[Product]:
    """Products a shopper may see; inactive ones do not exist for the storefront."""
    return Product.objects.filter(is_active=True).select_related("category", "stock")


def product_for_page(sku: str) -> Product | None:
    return storefront_products().filter(sku=sku).first()


def top_categories() -> QuerySet[Category]:
    return Category.objects.filter(parent__isnull=True).order_by("name")


def category_by_path(path: str) -> Category | None:
    return Category.objects.filter(path=path.strip("/")).first()


def category_trail(category: Category) -> list[Category]:
    """The category and its ancestors, root first, in one query (the path holds the ancestry)."""
    parts = category.path.split("/")
    paths = ["/".join(parts[: depth + 1]) for depth in range(len(parts))]
    by_path = {c.path: c for c in Category.objects.filter(path__in=paths)}
    return [by_path[path] for path in paths if path in by_path]


def products_in_category(category: Category) -> QuerySet[Product]:
    """Products of the category and of every category below it."""
    return storefront_products().filter(
        Q(category__path=category.path) | Q(category__path__startswith=f"{category.path}/")
    )


def search_products(query: str) -> QuerySet[Product]:
    """Title words anywhere, or a SKU from its start (shoppers paste SKUs from receipts)."""
    query = query.strip()
    return storefront_products().filter(Q(title__icontains=query) | Q(sku__istartswith=query))


def new_arrivals(limit: int = NEW_ARRIVALS_SIZE) -> list[Product]:
    return list(storefront_products().in_stock().order_by("-launched_at", "sku")[:limit])


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def available_quantity(self) -> int:
        stock = getattr(self.product, "stock", None)
        return stock.available_quantity if stock is not None else 0

    @property
    def line_total(self) -> Decimal:
        return self.product.price * self.quantity


def cart_lines(quantities: dict[str, int]) -> list[CartLine]:
    """The cart's lines in the order they were added; SKUs no longer sold are left out."""
    products = {p.sku: p for p in storefront_products().filter(sku__in=list(quantities))}
    return [
        CartLine(product=products[sku], quantity=quantity)
        for sku, quantity in quantities.items()
        if sku in products
    ]
