"""storefront: pages over the real catalog, the session cart and checkout."""

import re
from decimal import Decimal
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from django.test import override_settings

from aisle.conf import aisle_settings
from merch.models import Stock
from merch.services.catalog import set_products_active, set_stock
from merch.signals import stock_changed
from recs import redis_keys
from recs.candidates import store
from recs.serving import availability, catalog, fallback, merchandising
from recs.serving import redis as serving_redis
from recs.shopper_session import session_id_from_cookie
from recs.shopper_tokens import read_shopper_token
from tests.factories import CategoryFactory, ProductFactory, StockFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_reader_state(settings, tmp_path):
    """The render path's in-process copies start empty, as in a newly started web process,
    with no fallback snapshot from a local training run."""
    settings.AISLE = {**settings.AISLE, "MODEL_ARTIFACT_DIR": tmp_path}
    for module in (availability, catalog, fallback, merchandising):
        module.clear()
    serving_redis.reset()
    yield
    serving_redis.reset()


@pytest.fixture
def shop():
    home = CategoryFactory(name="Home", slug="home", path="home")
    candles = CategoryFactory(name="Candles", slug="candles", path="home/candles", parent=home)
    kitchen = CategoryFactory(name="Kitchen", slug="kitchen", path="kitchen")
    products = {
        "lantern": ProductFactory(
            sku="85123A", title="Red heart lantern", category=candles, price=Decimal("2.55")
        ),
        "holder": ProductFactory(sku="84406B", title="Cream cupid holder", category=candles),
        "sold_out": ProductFactory(sku="22423", title="Regency cakestand", category=kitchen),
        "hidden": ProductFactory(sku="HIDDEN1", title="Withdrawn lantern", category=candles),
        "mug": ProductFactory(sku="37370", title="Retro coffee mug", category=kitchen),
    }
    StockFactory(product=products["lantern"], on_hand=5)
    StockFactory(product=products["holder"], on_hand=1)
    StockFactory(product=products["sold_out"], on_hand=0)
    StockFactory(product=products["hidden"], on_hand=5)
    StockFactory(product=products["mug"], on_hand=20)
    set_products_active([products["hidden"].pk], is_active=False)
    return products


def on_hand(product) -> int:
    return Stock.objects.get(product=product).on_hand


def cart_of(client) -> dict[str, int]:
    return client.session.get("cart", {})


def add(client, sku: str, quantity: int = 1):
    return client.post("/cart/add/", {"sku": sku, "quantity": quantity})


def with_candidates(*skus: str) -> None:
    """Anonymous shoppers are then served these, most popular first (global popularity)."""
    catalog.sync_catalog_cards()
    store.write_lists(
        [(redis_keys.POPULAR_ALL, [(sku, float(100 - i)) for i, sku in enumerate(skus)])]
    )


# --- pages


def test_every_storefront_page_renders(client, shop):
    pages = ["/", "/?q=lantern", "/c/home/", "/c/home/candles/", "/p/85123A/", "/p/22423/"]
    pages += ["/cart/", "/login/"]
    for url in pages:
        assert client.get(url).status_code == 200, url
    add(client, "85123A")
    assert client.get("/cart/").status_code == 200
    confirmation = client.post("/checkout/", follow=True)
    assert confirmation.redirect_chain == [("/checkout/confirmation/", 302)]
    assert confirmation.status_code == 200


def test_root_is_the_storefront_and_the_admin_and_api_stay_where_they_were(client, shop):
    assert b"Shop by category" in client.get("/").content
    assert client.get("/admin/").status_code == 302
    assert client.post("/api/v1/events", {}, content_type="application/json").status_code in (
        401,
        403,
    )


def without_carousel(html: str) -> str:
    """The page's own listing: the recommendation carousel (which may show any product) cut out."""
    return re.sub(r'<section class="aisle-carousel".*?</section>', "", html, flags=re.S)


def test_home_lists_top_categories_and_new_products(client, shop):
    html = client.get("/").content.decode()
    assert 'href="/c/home/"' in html and 'href="/c/kitchen/"' in html
    assert 'href="/c/home/candles/"' not in html, "only top-level categories on the home page"
    assert "Red heart lantern" in html and "Withdrawn lantern" not in html


def test_search_matches_titles_and_sku_prefixes_of_active_products(client, shop):
    html = client.get("/", {"q": "lantern"}).content.decode()
    assert "Red heart lantern" in html and "Withdrawn lantern" not in html
    assert 'data-aisle-event="search" data-aisle-query="lantern"' in html
    by_sku = without_carousel(client.get("/", {"q": "8440"}).content.decode())
    assert "Cream cupid holder" in by_sku and "Retro coffee mug" not in by_sku
    assert "Nothing matches" in client.get("/", {"q": "zebra"}).content.decode()


def test_category_lists_products_of_its_subcategories(client, shop):
    html = without_carousel(client.get("/c/home/").content.decode())
    assert "Red heart lantern" in html and "Cream cupid holder" in html
    assert "Retro coffee mug" not in html and "Withdrawn lantern" not in html
    assert 'href="/c/home/candles/"' in html, "subcategories are linked"


def test_category_pages_are_paginated(client, shop):
    bulk = CategoryFactory(name="Bulk", slug="bulk", path="bulk")
    for n in range(30):
        ProductFactory(sku=f"BULK{n:02d}", title=f"Bulk item {n:02d}", category=bulk)
    first = client.get("/c/bulk/").content.decode()
    second = client.get("/c/bulk/", {"page": 2}).content.decode()
    assert "Bulk item 00" in first and "Bulk item 29" not in first
    assert "Bulk item 29" in second and "Page 2 of 2" in second


def test_unknown_category_is_not_found(client, shop):
    assert client.get("/c/nowhere/").status_code == 404


def test_inactive_product_is_not_found(client, shop):
    assert client.get("/p/HIDDEN1/").status_code == 404
    assert client.get("/p/NOPE/").status_code == 404


def test_product_page_shows_price_stock_and_add_to_cart_form(client, shop):
    html = client.get("/p/85123A/").content.decode()
    assert "Red heart lantern" in html and "£2.55" in html and "In stock" in html
    assert 'action="/cart/add/"' in html and 'data-aisle-event="add_to_cart"' in html
    sold_out = client.get("/p/22423/").content.decode()
    assert "Sold out" in sold_out and 'action="/cart/add/"' not in sold_out


def test_product_page_sends_a_view_event(client, shop):
    html = client.get("/p/85123A/").content.decode()
    assert 'data-aisle-event="view" data-aisle-product-id="85123A"' in html
    assert "recs/aisle.js" in html


def test_product_page_includes_product_detail_carousel_when_candidates_exist(client, shop):
    with_candidates("37370", "84406B", "85123A")
    html = client.get("/p/85123A/").content.decode()
    assert 'data-aisle-placement="product_detail"' in html
    assert 'data-aisle-sku="37370"' in html and 'data-aisle-sku="84406B"' in html
    assert 'data-aisle-sku="85123A"' not in html, "not the product on the page"


def test_without_any_list_yet_the_carousel_shows_the_newest_products(client, shop):
    html = client.get("/p/85123A/").content.decode()
    assert 'data-aisle-source="newest"' in html, "cold start: the catalog's newest in stock"
    assert 'data-aisle-sku="85123A"' not in html, "not the product on the page"


def test_carousels_on_home_category_and_cart_pages(client, shop):
    with_candidates("37370", "84406B", "85123A")
    assert 'data-aisle-placement="home"' in client.get("/").content.decode()
    assert 'data-aisle-placement="category"' in client.get("/c/home/").content.decode()
    add(client, "85123A")
    cart_page = client.get("/cart/").content.decode()
    assert 'data-aisle-placement="cart"' in cart_page
    assert 'data-aisle-sku="85123A"' not in cart_page.split("aisle-carousel", 1)[-1]


def meta_content(html: str, name: str) -> str:
    found = re.search(rf'<meta name="{name}" content="([^"]*)">', html)
    assert found, f"no meta {name}"
    return found.group(1)


def shopper_cookie(client) -> str:
    request = HttpRequest()
    request.COOKIES = {k: v.value for k, v in client.cookies.items()}
    return session_id_from_cookie(request)


@override_settings(AISLE={**settings.AISLE, "STOREFRONT_PUBLISHABLE_KEY": "pk_storefront"})
def test_pages_carry_the_publishable_key_and_a_token_of_the_pages_own_shopper(client, shop):
    html = client.get("/").content.decode()
    assert meta_content(html, "aisle-key") == "pk_storefront"
    claims = read_shopper_token(meta_content(html, "aisle-shopper-token"))
    assert claims.session_id == shopper_cookie(client) != ""
    assert claims.user_id == ""
    assert 'name="aisle-session-id"' not in html and 'name="aisle-user-id"' not in html


def test_a_cookieless_page_view_writes_no_session_row(client, shop):
    before = Session.objects.count()
    for path in ("/", "/c/home/", "/p/85123A/", "/?country=DE"):
        assert client.get(path).status_code == 200
        client.cookies.clear()
    assert Session.objects.count() == before


def test_the_shopper_cookie_is_signed_and_a_forged_one_is_replaced(client, shop):
    client.get("/")
    issued = shopper_cookie(client)
    client.cookies[aisle_settings.SHOPPER_SESSION_COOKIE] = "someone-elses-session-id"
    html = client.get("/").content.decode()
    claims = read_shopper_token(meta_content(html, "aisle-shopper-token"))
    assert claims.session_id not in ("someone-elses-session-id", issued)


# --- cart


def test_add_to_cart_redirects_to_the_cart_and_keeps_the_quantity(client, shop):
    response = add(client, "85123A", 2)
    assert response.status_code == 302 and response["Location"] == "/cart/"
    add(client, "85123A", 1)
    assert cart_of(client) == {"85123A": 3}
    html = client.get("/cart/").content.decode()
    assert "Red heart lantern" in html and "£7.65" in html


def test_adding_more_than_is_left_is_capped_with_a_message(client, shop):
    response = client.post("/cart/add/", {"sku": "84406B", "quantity": 3}, follow=True)
    assert cart_of(client) == {"84406B": 1}
    assert "Only 1 left" in response.content.decode()


def test_sold_out_and_inactive_products_cannot_be_added(client, shop):
    response = client.post("/cart/add/", {"sku": "22423", "quantity": 1}, follow=True)
    assert "sold out" in response.content.decode()
    add(client, "HIDDEN1")
    assert cart_of(client) == {}


def test_update_changes_the_quantity_and_zero_removes_the_line(client, shop):
    add(client, "85123A")
    add(client, "37370")
    response = client.post("/cart/update/", {"sku": "85123A", "quantity": 4})
    assert response.status_code == 302 and response["Location"] == "/cart/"
    assert cart_of(client) == {"85123A": 4, "37370": 1}
    client.post("/cart/update/", {"sku": "85123A", "quantity": 0})
    assert cart_of(client) == {"37370": 1}


def test_invalid_quantity_changes_nothing(client, shop):
    add(client, "85123A", 2)
    response = client.post("/cart/update/", {"sku": "85123A", "quantity": -1}, follow=True)
    assert cart_of(client) == {"85123A": 2}
    assert "Choose a quantity" in response.content.decode()


def test_remove_takes_the_line_out_of_the_cart(client, shop):
    add(client, "85123A")
    add(client, "37370")
    client.post("/cart/remove/", {"sku": "85123A"})
    assert cart_of(client) == {"37370": 1}


def test_cart_forms_only_accept_post(client, shop):
    for url in ("/cart/add/", "/cart/update/", "/cart/remove/"):
        assert client.get(url).status_code == 405


def test_cart_page_forms_declare_their_events(client, shop):
    add(client, "85123A", 2)
    html = client.get("/cart/").content.decode()
    assert 'data-aisle-event="cart_update"' in html and 'data-aisle-quantity-before="2"' in html
    assert 'data-aisle-event="remove_from_cart"' in html


# --- checkout


def test_checkout_takes_stock_through_the_service_and_confirms(
    client, shop, django_capture_on_commit_callbacks
):
    add(client, "85123A", 2)
    add(client, "37370", 3)
    with (
        mock.patch("storefront.services.set_stock", wraps=set_stock) as set_stock_spy,
        django_capture_on_commit_callbacks(execute=False) as callbacks,
    ):
        response = client.post("/checkout/")
    assert response.status_code == 302 and response["Location"] == "/checkout/confirmation/"
    assert {call.kwargs["on_hand"] for call in set_stock_spy.call_args_list} == {3, 17}
    assert (on_hand(shop["lantern"]), on_hand(shop["mug"])) == (3, 17)
    assert len(callbacks) == 2, "each stock change is announced at commit"
    assert cart_of(client) == {}


def test_confirmation_page_sends_purchase_events_with_the_order_id(client, shop):
    add(client, "85123A", 2)
    html = client.post("/checkout/", follow=True).content.decode()
    order_id = client.session["last_order"]["order_id"]
    assert f"Order number <strong>{order_id}</strong>" in html
    assert f'data-aisle-event-id="purchase-{order_id}-85123A"' in html
    assert f'data-aisle-order-id="{order_id}" data-aisle-product-id="85123A"' in html
    assert 'data-aisle-quantity="2" data-aisle-price="2.55"' in html
    assert "£5.10" in html


def test_sold_out_line_is_refused_and_nothing_else_is_lost(client, shop):
    add(client, "85123A", 2)
    add(client, "84406B", 1)
    set_stock(shop["holder"], on_hand=0)  # sold out while it sat in the cart
    received = []
    stock_changed.connect(lambda sender, changes, **kw: received.extend(changes), weak=False)
    response = client.post("/checkout/", follow=True)
    html = response.content.decode()
    assert response.redirect_chain == [("/cart/", 302)]
    assert "“Cream cupid holder” is sold out and was removed from your cart." in html
    assert "Nothing was ordered yet" in html
    assert on_hand(shop["lantern"]) == 5, "no stock was taken for the other lines"
    assert cart_of(client) == {"85123A": 2}, "the other lines stay in the cart"
    assert "last_order" not in client.session
    client.post("/checkout/")
    assert on_hand(shop["lantern"]) == 3


def test_short_line_is_reduced_to_what_is_left(client, shop):
    add(client, "85123A", 5)
    set_stock(shop["lantern"], on_hand=2)
    html = client.post("/checkout/", follow=True).content.decode()
    assert "Only 2 of “Red heart lantern” left" in html
    assert cart_of(client) == {"85123A": 2} and on_hand(shop["lantern"]) == 2


def test_one_address_cannot_empty_the_stock_with_repeated_orders(client, shop, settings):
    settings.AISLE = {**settings.AISLE, "CHECKOUT_ORDERS_PER_HOUR": 2}
    for _ in range(2):
        add(client, "85123A", 1)
        assert client.post("/checkout/")["Location"] == "/checkout/confirmation/"
    add(client, "85123A", 1)
    html = client.post("/checkout/", follow=True).content.decode()
    assert "Too many orders from your network" in html
    assert on_hand(shop["lantern"]) == 3 and cart_of(client) == {"85123A": 1}
    other = type(client)(REMOTE_ADDR="198.51.100.20")
    add(other, "85123A", 1)
    assert other.post("/checkout/")["Location"] == "/checkout/confirmation/"


def test_an_order_larger_than_the_shop_sells_at_once_is_refused(client, shop, settings):
    settings.AISLE = {**settings.AISLE, "CHECKOUT_MAX_UNITS": 4}
    add(client, "85123A", 3)
    add(client, "37370", 2)
    html = client.post("/checkout/", follow=True).content.decode()
    assert "One order takes at most 4 items" in html
    assert on_hand(shop["lantern"]) == 5 and on_hand(shop["mug"]) == 20


def test_checkout_of_an_empty_cart_says_so(client, shop):
    response = client.post("/checkout/", follow=True)
    assert "Your cart is empty." in response.content.decode()
    assert client.get("/checkout/").status_code == 302


def test_confirmation_without_an_order_goes_home(client, shop):
    assert client.get("/checkout/confirmation/")["Location"] == "/"


# --- customers


def test_customer_logs_in_keeps_cart_and_shopper_session_and_logs_out(client, shop):
    User.objects.create_user("12347", password="demo-pass-12347")
    add(client, "85123A")
    client.get("/")
    anonymous_session_id = shopper_cookie(client)
    response = client.post("/login/", {"username": "12347", "password": "demo-pass-12347"})
    assert response.status_code == 302 and response["Location"] == "/"
    html = client.get("/").content.decode()
    claims = read_shopper_token(meta_content(html, "aisle-shopper-token"))
    assert claims.user_id == "12347"
    assert claims.session_id == anonymous_session_id, "links the history at login"
    assert cart_of(client) == {"85123A": 1}
    assert client.post("/logout/")["Location"] == "/"
    html = client.get("/").content.decode()
    assert read_shopper_token(meta_content(html, "aisle-shopper-token")).user_id == ""


def test_wrong_password_shows_an_error(client, shop):
    User.objects.create_user("12347", password="demo-pass-12347")
    response = client.post("/login/", {"username": "12347", "password": "nope"})
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
