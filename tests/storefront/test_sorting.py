"""The storefront sorts like a shop: search by relevance then popularity, category pages by
popularity, by name, by price or for the shopper, sold-out products last; one placeholder."""

import re
from decimal import Decimal

import pytest

from aisle.conf import aisle_settings
from recs import redis_keys
from recs.candidates import store
from recs.serving import fallback
from recs.serving import redis as serving_redis
from recs.shopper_session import signed_cookie_value
from recs.templatetags.recs import initials, placeholder_tone
from storefront import selectors
from storefront.search import match_root, parse_query, relevance, starts_with_term, stem
from tests.factories import CategoryFactory, ProductFactory, StockFactory
from tests.recs.conftest import (  # noqa: F401 - the render path's fixtures
    default_placements,
    fresh_reader_state,
    ranked,
    touch,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_placements")]

HOLDER, RED_HOLDER, WICKER_L, WICKER_S = "85123A", "21733", "22470", "22469"
TRINKET, BUNTING, GARLAND, ORNAMENT, MUG = "21175", "47566", "23298", "84879", "37370"
CUTTERS = "22965"
# The shop's best sellers, as training writes them (c:popular:all and per category).
BEST_SELLERS = [HOLDER, BUNTING, ORNAMENT, WICKER_S, RED_HOLDER, WICKER_L, MUG, GARLAND]
DECORATIONS_BEST = [BUNTING, ORNAMENT, WICKER_S, WICKER_L, GARLAND, TRINKET]
HOME_BEST = [HOLDER, BUNTING, ORNAMENT, WICKER_S, RED_HOLDER, WICKER_L, GARLAND]


@pytest.fixture
def hearts(settings, tmp_path):
    """Heart products and others in Home > Candles, Home > Decorations and Kitchen, with the
    popular lists training would write. The Hearts Garland is sold out."""
    settings.AISLE = {**settings.AISLE, "MODEL_ARTIFACT_DIR": tmp_path}
    home = CategoryFactory(name="Home", slug="home", path="home")
    candles = CategoryFactory(name="Candles", slug="candles", path="home/candles", parent=home)
    decorations = CategoryFactory(
        name="Decorations", slug="decorations", path="home/decorations", parent=home
    )
    kitchen = CategoryFactory(name="Kitchen", slug="kitchen", path="kitchen")
    catalog = [
        (HOLDER, "White Hanging Heart T-Light Holder", candles, "2.95"),
        (RED_HOLDER, "Red Hanging Heart T-Light Holder", candles, "2.95"),
        (WICKER_L, "Heart Of Wicker Large", decorations, "2.95"),
        (WICKER_S, "Heart Of Wicker Small", decorations, "1.65"),
        (TRINKET, "Sweetheart Ceramic Trinket Box", decorations, "1.25"),
        (BUNTING, "Party Bunting", decorations, "4.95"),
        (GARLAND, "Hearts Garland", decorations, "3.75"),
        (ORNAMENT, "Assorted Colour Bird Ornament", decorations, "1.69"),
        (MUG, "Retro Coffee Mug", kitchen, "2.10"),
        (CUTTERS, "3 Traditional Biscuit Cutters Set", kitchen, "2.10"),
    ]
    for sku, title, category, price in catalog:
        product = ProductFactory(sku=sku, title=title, category=category, price=Decimal(price))
        StockFactory(product=product, on_hand=0 if sku == GARLAND else 10)
    store.write_lists(
        [
            (redis_keys.POPULAR_ALL, ranked(*BEST_SELLERS)),
            (redis_keys.category_popular_list("home"), ranked(*HOME_BEST)),
            (redis_keys.category_popular_list("home/decorations"), ranked(*DECORATIONS_BEST)),
            (redis_keys.similar_content_list(WICKER_L), ranked(WICKER_S, TRINKET, GARLAND)),
            (redis_keys.similar_content_list(RED_HOLDER), ranked(HOLDER, ORNAMENT)),
        ]
    )


def grid(html: str) -> list[str]:
    """The SKUs of the product grid, in page order (carousels left out)."""
    return re.findall(r'class="product-tile__title"><a href="/p/([^/]+)/"', html)


def search(client, query: str, **params) -> list[str]:
    return grid(client.get("/", {"q": query, **params}).content.decode())


def as_shopper(client, session_id: str):
    """The client carries the signed shopper cookie of this session, as a browser would."""
    client.cookies[aisle_settings.SHOPPER_SESSION_COOKIE] = signed_cookie_value(session_id)
    return client


# --- search: the rules ---------------------------------------------------------------------


def test_queries_keep_their_useful_words():
    assert parse_query("  Set of 3 RED hearts ").terms == ("set", "3", "red", "hearts")
    assert parse_query("of the").terms == ("of", "the"), "only stop words: keep them"
    assert parse_query("a b 2 heart heart").terms == ("2", "heart"), "one letter: digits only"


@pytest.mark.parametrize(
    ("word", "singular"),
    [("hearts", "heart"), ("boxes", "box"), ("candies", "candy"), ("glass", "glass"),
     ("dish", "dish"), ("bus", "bus"), ("set", "set")],
)  # fmt: skip
def test_plurals_match_their_singular(word, singular):
    assert stem(word) == singular


def test_a_term_matches_words_that_start_with_it_in_any_form():
    assert match_root("candies") == "cand"
    assert relevance(parse_query("hearts"), "Heart Of Wicker", "X")[1:3] == (1, 1)
    assert relevance(parse_query("lant"), "Red Lantern", "X")[1:3] == (1, 0), "a prefix"
    assert relevance(parse_query("heart"), "Sweetheart Trinket Box", "X")[1:3] == (0, 0)


def test_relevance_orders_sku_then_terms_then_whole_words_then_phrase():
    query = parse_query("hot water bottle")
    phrase = relevance(query, "Chocolate Hot Water Bottle", "1")
    scattered = relevance(query, "Water Bottle Hot Pink", "2")
    two_terms = relevance(query, "Hot Chocolate Bottle", "3")
    prefixes = relevance(query, "Hottie Waterproof Bottles", "4")
    assert phrase > scattered > prefixes > two_terms
    assert relevance(parse_query("22470"), "Heart Of Wicker Large", "22470")[0] == 1
    assert starts_with_term(parse_query("heart"), "Heart Of Wicker Large")
    assert not starts_with_term(parse_query("heart"), "White Hanging Heart T-Light Holder")


# --- search: the page ----------------------------------------------------------------------


def test_search_ranks_whole_word_matches_by_popularity_sold_out_last(client, hearts):
    assert search(client, "heart") == [HOLDER, WICKER_S, RED_HOLDER, WICKER_L, GARLAND]
    assert search(client, "hearts") == search(client, "heart"), "plural and singular alike"
    assert TRINKET not in search(client, "heart"), "Sweetheart does not start with heart"


def test_search_puts_products_matching_every_term_first(client, hearts):
    assert search(client, "wicker heart")[:2] == [WICKER_S, WICKER_L]
    results = search(client, "red heart")
    assert results[0] == RED_HOLDER and set(results) == {
        HOLDER, RED_HOLDER, WICKER_S, WICKER_L, GARLAND,
    }  # fmt: skip


def test_search_finds_a_pasted_sku_first(client, hearts):
    assert search(client, "22470")[0] == WICKER_L
    assert search(client, "8512") == [HOLDER], "a SKU prefix"


def test_search_without_popularity_orders_equals_by_title(client, hearts):
    store.writer_client().delete(redis_keys.POPULAR_ALL)
    fallback.clear()
    assert search(client, "heart") == [WICKER_L, WICKER_S, RED_HOLDER, HOLDER, GARLAND]


def test_search_results_are_paginated(client, hearts):
    bulk = CategoryFactory(name="Bulk", slug="bulk", path="bulk")
    for n in range(30):
        StockFactory(product=ProductFactory(sku=f"BK{n:02d}", title=f"Heart tin {n:02d}",
                                            category=bulk))  # fmt: skip
    first = client.get("/", {"q": "heart"}).content.decode()
    assert "35 products" in first and len(grid(first)) == selectors.PRODUCTS_PER_PAGE
    assert grid(first)[0] == HOLDER
    second = client.get("/", {"q": "heart", "page": 2}).content.decode()
    assert len(grid(second)) == 35 - selectors.PRODUCTS_PER_PAGE
    assert 'href="?q=heart&amp;page=1"' in second


# --- category pages ------------------------------------------------------------------------


def test_a_category_opens_on_its_best_sellers(client, hearts):
    html = client.get("/c/home/").content.decode()
    in_stock_best = [sku for sku in HOME_BEST if sku != GARLAND]
    assert grid(html)[: len(in_stock_best)] == in_stock_best
    assert grid(html)[-2:] == [TRINKET, GARLAND], "then the rest, sold out last"
    assert '<a class="sort-control__option" href="?sort=popular" aria-current="true">' in html


def test_name_and_price_sort_as_asked(client, hearts):
    by_name = grid(client.get("/c/home/decorations/", {"sort": "name"}).content.decode())
    assert by_name == [ORNAMENT, WICKER_L, WICKER_S, GARLAND, BUNTING, TRINKET]
    by_price = grid(client.get("/c/home/decorations/", {"sort": "price"}).content.decode())
    assert by_price == [TRINKET, WICKER_S, ORNAMENT, WICKER_L, GARLAND, BUNTING]


def test_an_unknown_sort_is_popular(client, hearts):
    html = client.get("/c/home/decorations/", {"sort": "cheapest-first"}).content.decode()
    assert grid(html)[:2] == [BUNTING, ORNAMENT]
    assert 'href="?sort=popular" aria-current="true"' in html


def test_recommended_without_history_is_popular_and_says_so(client, hearts):
    html = as_shopper(client, "first-visit").get("/c/home/", {"sort": "recommended"})
    html = html.content.decode()
    assert grid(html) == grid(client.get("/c/home/").content.decode())
    assert "We don&#x27;t know your taste yet" in html
    assert 'href="?sort=recommended" aria-current="true"' in html


def test_recommended_follows_what_the_shopper_viewed(client, hearts):
    touch(WICKER_L, session_id="wicker-fan")
    html = as_shopper(client, "wicker-fan").get("/c/home/", {"sort": "recommended"})
    html = html.content.decode()
    assert "sort-note" not in html
    mine = grid(html)
    assert mine[0] == WICKER_S and mine.index(TRINKET) < mine.index(BUNTING)
    assert mine != grid(client.get("/c/home/").content.decode())
    assert mine[-1] == GARLAND, "sold out last, even when recommended"


def test_pages_keep_the_sort(client, hearts):
    bulk = CategoryFactory(name="Bulk", slug="bulk", path="bulk")
    for n in range(30):
        StockFactory(product=ProductFactory(sku=f"BK{n:02d}", title=f"Bulk {n:02d}",
                                            price=Decimal(100 - n), category=bulk))  # fmt: skip
    first = client.get("/c/bulk/", {"sort": "price"}).content.decode()
    assert grid(first)[0] == "BK29" and 'href="?sort=price&amp;page=2"' in first
    second = client.get("/c/bulk/", {"sort": "price", "page": 2}).content.decode()
    assert grid(second)[-1] == "BK00"
    popular = client.get("/c/bulk/").content.decode()
    assert "Nothing here has sold yet, so products are in name order." in popular
    assert grid(popular)[0] == "BK00"


def test_with_redis_down_listings_still_sort(client, hearts):
    client.get("/c/home/")  # the process keeps a copy of the global best sellers
    serving_redis.trip()
    html = client.get("/c/home/", {"sort": "recommended"}).content.decode()
    assert "We can&#x27;t personalise this page just now" in html
    assert grid(html)[:3] == [HOLDER, BUNTING, ORNAMENT]
    assert search(client, "heart")[0] == HOLDER


# --- one placeholder -----------------------------------------------------------------------


def test_products_without_an_image_show_the_same_placeholder_everywhere(client, hearts):
    tone = placeholder_tone("kitchen")
    placeholder = f'aisle-card__placeholder aisle-tone-{tone}" aria-hidden="true">TB</div>'
    assert initials("3 Traditional Biscuit Cutters Set") == "TB"
    assert placeholder in client.get("/c/kitchen/").content.decode()
    assert placeholder in client.get(f"/p/{CUTTERS}/").content.decode()
    assert placeholder in client.get("/", {"q": "biscuit"}).content.decode()


@pytest.mark.parametrize(
    ("title", "expected"),
    [("White hanging heart", "WH"), ("3 Traditional Biscuit Cutters", "TB"),
     ("12 Pencils Tall Tube", "PT"), ("*usb Office Mirror Ball", "UO"), ("3 4", "34"),
     ("", "?")],
)  # fmt: skip
def test_initials_take_words_that_start_with_a_letter(title, expected):
    assert initials(title) == expected
