"""What a shop's own `aisle` module would hold: callables CATALOG_SOURCE names by dotted path."""

from django.db.models import QuerySet

from tests.host_shop.models import ShopProduct


def home_products() -> QuerySet:
    """The part of the catalog the shop lets Aisle recommend: the home department."""
    return ShopProduct.objects.filter(category__slug_path__startswith="home")


def category_names(product: ShopProduct) -> list[str]:
    """The category as display names, e.g. ["Home", "Candles"]."""
    if product.category is None:
        return []
    return [part.replace("-", " ").title() for part in product.category.slug_path.split("/")]


def broken(product: ShopProduct) -> str:
    if product.sku.endswith("13"):
        raise ValueError("the brand service is down")
    return "Aisle Home"
