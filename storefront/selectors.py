"""Catalog reads of the storefront pages: only active products, with stock and category.

Listings (search results, category pages) are ordered the way a shop sorts: the database
selects the candidates as (SKU, title, in stock) rows, the order is decided on those (search
relevance, the engine's popularity, or the shopper's own order from recs.serving.listing), and
only the page shown is loaded as products. Sold-out products come last in every order but the
shopper's explicit "Name" and "Price".
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.core.paginator import Page, Paginator
from django.db.models import BooleanField, ExpressionWrapper, F, Q, QuerySet

from merch.models import Category, Product
from recs.serving import listing
from recs.serving.types import RecommendationContext
from storefront.search import WORD_SEPARATORS, parse_query, relevance, starts_with_term

NEW_ARRIVALS_SIZE = 8
PRODUCTS_PER_PAGE = 24

# The category page's sort control, in the order it is shown; the first is the default.
SORTS = {
    "popular": "Popular",
    "recommended": "Recommended for you",
    "name": "Name",
    "price": "Price (low to high)",
}
DEFAULT_SORT = "popular"
# What a shopper who asked for their own order is told when they get the popular one.
POPULAR_INSTEAD = {
    listing.NO_HISTORY: "We don't know your taste yet, so these are the best sellers first. "
    "View a few products and this order will follow what you like.",
    listing.NOTHING_RELATED: "Nothing you have looked at so far relates to this category, so "
    "these are its best sellers first.",
    listing.REDIS_DOWN: "We can't personalise this page just now, so these are the best sellers "
    "first.",
}
NO_SALES_YET = "Nothing here has sold yet, so products are in name order."


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
    """Products with a title word that starts like one of the query's terms (in any form:
    "hearts" finds "Heart", "lant" finds "Lantern"), or whose SKU starts with the query
    (shoppers paste SKUs from receipts)."""
    text = query.strip()
    matches = Q(sku__istartswith=text) if text else Q(pk__in=[])
    for root in parse_query(text).roots:
        matches |= Q(title__istartswith=root)
        for separator in WORD_SEPARATORS:
            matches |= Q(title__icontains=separator + root)
    return storefront_products().filter(matches)


def search_page(query: str, page_number: str | int | None) -> Page:
    """One page of the results, best first: by relevance (storefront.search.relevance), then
    in stock before sold out, then by popularity (the engine's best-seller list), then titles
    that start with the first term, then by title."""
    parsed = parse_query(query)
    ranks = listing.popularity_ranks()
    unranked = len(ranks)
    rows = _listing_rows(search_products(query))

    def order(row: tuple[str, str, bool]) -> tuple:
        sku, title, available = row
        matched = relevance(parsed, title, sku)
        return (
            tuple(-n for n in matched),
            not available,
            ranks.get(sku, unranked),
            not starts_with_term(parsed, title),
            title.lower(),
            sku,
        )

    return _sku_page([row[0] for row in sorted(rows, key=order)], page_number)


@dataclass(frozen=True)
class CategoryListing:
    """A page of a category's products in the chosen order, and what the shopper should be
    told about that order ("" when it is what they asked for)."""

    page: Page
    sort: str
    note: str = ""


def category_listing(
    category: Category,
    sort: str,
    page_number: str | int | None,
    shopper: RecommendationContext,
) -> CategoryListing:
    """Popular: the category's best sellers first (the engine's popular lists), the rest by
    name. Recommended for you: the shopper's own order (recs.serving.listing.order_for_shopper),
    or the popular one, saying why. Name, Price: as the database sorts them."""
    sort = sort if sort in SORTS else DEFAULT_SORT
    products = products_in_category(category)
    if sort == "name":
        return CategoryListing(_db_page(products.order_by("title", "sku"), page_number), sort)
    if sort == "price":
        ordered = products.order_by("price", "title", "sku")
        return CategoryListing(_db_page(ordered, page_number), sort)
    rows = _listing_rows(products.order_by("title", "sku"))
    skus = [sku for sku, _, _ in rows]
    sold_out = {sku for sku, _, available in rows if not available}
    if sort == "recommended":
        mine = listing.order_for_shopper(shopper, skus)
        ordered, note = mine.skus, "" if mine.personal else POPULAR_INSTEAD[mine.why_popular]
    else:
        ranks = listing.popularity_ranks(category.path)
        ordered = listing.by_popularity(skus, ranks)
        note = "" if not skus or any(sku in ranks for sku in skus) else NO_SALES_YET
    return CategoryListing(_sku_page(_sold_out_last(ordered, sold_out), page_number), sort, note)


def _listing_rows(products: QuerySet[Product]) -> list[tuple[str, str, bool]]:
    """(sku, title, in stock) of each product, in one query and without loading products."""
    in_stock = ExpressionWrapper(Q(stock__on_hand__gt=F("stock__reserved")), BooleanField())
    return [
        (sku, title, bool(available))
        for sku, title, available in products.annotate(in_stock=in_stock).values_list(
            "sku", "title", "in_stock"
        )
    ]


def _sold_out_last(skus: Iterable[str], sold_out: set[str]) -> list[str]:
    skus = list(skus)
    return [s for s in skus if s not in sold_out] + [s for s in skus if s in sold_out]


def _db_page(products: QuerySet[Product], page_number: str | int | None) -> Page:
    return Paginator(products, PRODUCTS_PER_PAGE).get_page(page_number)


def _sku_page(skus: Sequence[str], page_number: str | int | None) -> Page:
    """A page of an ordered SKU list, its products loaded (one query) in that order."""
    page = Paginator(skus, PRODUCTS_PER_PAGE).get_page(page_number)
    wanted = list(page.object_list)
    loaded = storefront_products().in_bulk(wanted, field_name="sku")
    page.object_list = [loaded[sku] for sku in wanted if sku in loaded]
    return page


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
