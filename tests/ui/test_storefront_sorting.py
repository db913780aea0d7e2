"""The storefront sorts like a shop, in a real browser: search finds a best-selling heart first,
a category opens on its best sellers, and "Recommended for you" follows each shopper."""

from datetime import timedelta

import pytest
from django.utils import timezone

from merch.models import Category
from recs import features, redis_keys
from recs.candidates import store
from recs.shopper_tokens import read_shopper_token
from recs.training.pipeline import train_models
from tests.celery_worker import celery_worker, wait_for
from tests.factories import CategoryFactory, EventFactory, ProductFactory, StockFactory

pytestmark = pytest.mark.browser

CANDLES, DECORATIONS, BAKING = "home/candles-lights", "home/decorations", "kitchen/baking"
# (sku, title, category, buyers out of twelve customers); the Hearts Garland is sold out.
CATALOG = [
    ("85123A", "White Hanging Heart T-Light Holder", CANDLES, 12),
    ("21733", "Red Hanging Heart T-Light Holder", CANDLES, 6),
    ("71053", "White Metal Lantern", CANDLES, 8),
    ("22464", "Hanging Metal Heart Lantern", CANDLES, 3),
    ("84970S", "Glass Star Frosted T-Light Holder", CANDLES, 5),
    ("47566", "Party Bunting", DECORATIONS, 10),
    ("84879", "Assorted Colour Bird Ornament", DECORATIONS, 7),
    ("22470", "Heart Of Wicker Large", DECORATIONS, 4),
    ("22469", "Heart Of Wicker Small", DECORATIONS, 6),
    ("23298", "Hearts Garland", DECORATIONS, 2),
    ("22423", "Regency Cakestand 3 Tier", BAKING, 9),
    ("21212", "Pack Of 72 Retrospot Cake Cases", BAKING, 5),
    ("22138", "Baking Set 9 Piece Retrospot", BAKING, 3),
]
CUSTOMERS = 12
SOLD_OUT = "23298"


@pytest.fixture
def retail_shop(default_placements, artifact_dir):
    """A small gift shop with two months of purchases, trained like the demo: the popular
    lists (overall and per category) and the content neighbours come from training. The
    heart T-light holder is everyone's favourite: each customer buys it three times."""
    parents = {
        "home": CategoryFactory(name="Home", slug="home", path="home"),
        "kitchen": CategoryFactory(name="Kitchen", slug="kitchen", path="kitchen"),
    }
    categories = {}
    for path, name in ((CANDLES, "Candles & Lights"), (DECORATIONS, "Decorations"),
                       (BAKING, "Baking")):  # fmt: skip
        top, slug = path.split("/")
        categories[path] = CategoryFactory(name=name, slug=slug, path=path, parent=parents[top])
    start = timezone.now() - timedelta(days=60)
    n = 0
    for index, (sku, title, path, buyers) in enumerate(CATALOG):
        product = ProductFactory(sku=sku, title=title, category=categories[path])
        StockFactory(product=product, on_hand=0 if sku == SOLD_OUT else 20)
        times = 3 if sku == "85123A" else 1
        for buyer in range(buyers):
            customer = (buyer + index) % CUSTOMERS
            for repeat in range(times):
                n += 1
                day = (customer * 5 + index * 3 + repeat * 20) % 58 + 1
                EventFactory(
                    event_id=f"sort-{n}", event_type="purchase", user_id=f"c{customer}",
                    product_sku=sku, order_id=f"o{customer}-{day}", country="United Kingdom",
                    occurred_at=start + timedelta(days=day, hours=customer % 9),
                )  # fmt: skip
    train_models()
    assert store.read_list(redis_keys.category_popular_list("home")), "training wrote the lists"


def grid_skus(page) -> list[str]:
    return page.locator(".product-grid .product-tile__title a").evaluate_all(
        "links => links.map(a => a.getAttribute('href').split('/')[2])"
    )


def first_row_skus(page) -> list[str]:
    """The tiles laid out on the grid's first line, as the shopper sees them."""
    return page.locator(".product-grid .product-tile").evaluate_all(
        """tiles => tiles.filter(t => t.offsetTop === tiles[0].offsetTop)
                         .map(t => t.querySelector('a').getAttribute('href').split('/')[2])"""
    )


def best_sellers(list_key: str) -> list[str]:
    """The trained popular list, what can be sold of it."""
    return [sku for sku, _ in store.read_list(list_key) if sku != SOLD_OUT]


def view_products(browsing, skus: list[str]):
    """A new shopper views these product pages; returns their page and session id once a
    worker has applied the views (sent by the pages' own script to the events API)."""
    page = browsing.new_page()
    for sku in skus:
        page.goto(f"/p/{sku}/")
    page.goto("/")  # leaving the last product page sends its view
    token = page.locator("meta[name='aisle-shopper-token']").get_attribute("content")
    session_id = read_shopper_token(token).session_id

    def applied() -> bool:
        viewed = features.get_online("session", session_id, ["recently_viewed"])
        return set(skus) <= set(viewed["recently_viewed"])

    wait_for(applied, timeout_s=30)
    return page, session_id


def test_search_finds_a_best_selling_heart_first(browsing, retail_shop):
    shopper = browsing.new_page()
    shopper.goto("/")
    shopper.get_by_label("Search products").fill("heart")
    shopper.get_by_role("button", name="Search").click()
    shopper.wait_for_url("**/?q=heart")
    first_three = grid_skus(shopper)[:3]
    top_sellers = set(best_sellers(redis_keys.POPULAR_ALL)[:3])
    titles = {sku: title for sku, title, *_ in CATALOG}
    assert any("Heart" in titles[sku] and sku in top_sellers for sku in first_three), (
        first_three, top_sellers,
    )  # fmt: skip
    assert first_three[0] == "85123A", "everyone's favourite, a whole-word heart"
    browsing.screenshot(shopper, "search-heart")


def test_a_category_opens_on_its_best_sellers(browsing, retail_shop):
    shopper = browsing.new_page()
    shopper.goto("/c/home/")
    row = first_row_skus(shopper)
    assert len(row) >= 4, "a row of tiles at 1280 px"
    assert row == best_sellers(redis_keys.category_popular_list("home"))[: len(row)]
    assert grid_skus(shopper)[-1] == SOLD_OUT, "sold out last"
    popular = shopper.get_by_role("navigation", name="Sort products").get_by_role(
        "link", name="Popular"
    )
    assert popular.get_attribute("aria-current") == "true", "Popular is the default"
    browsing.screenshot(shopper, "category-popular")

    shopper.get_by_role("link", name="Price (low to high)").click()
    shopper.wait_for_url("**/c/home/?sort=price")
    prices = shopper.locator(".product-grid .product-tile__price").all_inner_texts()
    amounts = [float(price.lstrip("£")) for price in prices]
    assert amounts == sorted(amounts)


@pytest.mark.worker
def test_recommended_for_you_follows_each_shoppers_history(browsing, retail_shop, storefront_key):
    viewed = {"candles": ["21733", "22464"], "wicker": ["22470", "84879"]}
    with celery_worker(queues="events"):  # applies the views the pages' script sends
        shoppers = {name: view_products(browsing, skus) for name, skus in viewed.items()}
    orders = {}
    for name, (page, _) in shoppers.items():
        page.goto("/c/home/")
        page.get_by_role("link", name="Recommended for you").click()
        page.wait_for_url("**/c/home/?sort=recommended")
        assert page.locator(".sort-note").count() == 0, "ordered for them, no fallback note"
        orders[name] = grid_skus(page)
        browsing.screenshot(page, f"recommended-{name}")
    assert orders["candles"] != orders["wicker"]
    assert sorted(orders["candles"]) == sorted(orders["wicker"]), "the same products"
    for name, order in orders.items():
        related = _related_to(viewed[name])
        assert order[0] in related, (name, order, related)

    newcomer = browsing.new_page()
    newcomer.goto("/c/home/?sort=recommended")
    assert "We don't know your taste yet" in newcomer.locator(".sort-note").inner_text()
    browsing.screenshot(newcomer, "recommended-newcomer")
    newcomer_order = grid_skus(newcomer)
    newcomer.goto("/c/home/")
    assert newcomer_order == grid_skus(newcomer), "the popular order, as it says"


def _related_to(viewed: list[str]) -> set[str]:
    """What a shopper's views can lift: their neighbours and the products of their categories."""
    related = set()
    for sku in viewed:
        for key in (redis_keys.similar_content_list(sku), redis_keys.similar_cf_list(sku)):
            related.update(neighbour for neighbour, _ in store.read_list(key))
    paths = {Category.objects.get(products__sku=sku).path for sku in viewed}
    related.update(sku for sku, _, path, _ in CATALOG if path in paths)
    return related
