"""recs.templatetags.recs: the request -> context mapping, the carousel and never breaking a page."""

import logging
import re
from decimal import Decimal
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse
from django.template import Context, Template
from django.test import RequestFactory, override_settings

from aisle.conf import aisle_settings
from recs import redis_keys
from recs.candidates import store
from recs.serving import availability, catalog, fallback, merchandising
from recs.serving import redis as serving_redis
from recs.serving.types import RecommendationContext, Recommendations, RecommendedItem
from recs.shopper_session import ShopperSessionMiddleware, session_id_from_cookie
from recs.shopper_tokens import read_shopper_token
from recs.templatetags import recs as tags
from tests.factories import CategoryFactory, ProductFactory, StockFactory

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1"
)
FIREFOX_ANDROID_TABLET = "Mozilla/5.0 (Android 13; Tablet; rv:120.0) Gecko/120.0 Firefox/120.0"
KINDLE = (
    "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Silk/120.3.1 like Chrome/120.0.0.0 Safari/537.36"
)
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Safari/605.1.15"
)
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


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


def make_request(path: str = "/", *, user=None, **headers):
    request = RequestFactory().get(path, headers=headers)
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    request.user = user or AnonymousUser()
    return request


def render(source: str, **context) -> str:
    return Template("{% load recs %}" + source).render(Context(context))


def served(*items: RecommendedItem, placement: str = "product_detail") -> Recommendations:
    return Recommendations(
        placement=placement,
        items=list(items),
        tier="content",
        source="similar",
        variant="treatment-b",
        model_version="hybrid#7",
        rec_id="r123",
        generated_at=1.0,
    )


def item(sku: str, **fields) -> RecommendedItem:
    defaults = {
        "score": 1.0,
        "reason": f"similar to what you viewed ({sku})",
        "title": f"Lantern {sku}",
        "price": "4.95",
        "currency": "GBP",
        "category_path": "home/candles",
    }
    return RecommendedItem(sku=sku, **{**defaults, **fields})


@pytest.fixture
def asked():
    """Replace recommend() by a recorder; the list of contexts it was asked with."""
    contexts: list[RecommendationContext] = []

    def fake(context: RecommendationContext) -> Recommendations:
        contexts.append(context)
        return served(item("A1"), placement=context.placement)

    with mock.patch.object(tags, "recommend", side_effect=fake):
        yield contexts


# --- the context built from the request


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (IPHONE, "mobile"),
        (ANDROID_PHONE, "mobile"),
        ("Opera/9.80 (J2ME/MIDP; Opera Mini/9.80; U; en) Presto/2.5.25 Version/10.54", "mobile"),
        (IPAD, "tablet"),
        (ANDROID_TABLET, "tablet"),
        (FIREFOX_ANDROID_TABLET, "tablet"),
        (KINDLE, "tablet"),
        (WINDOWS, "desktop"),
        (MAC, "desktop"),
        (LINUX_FIREFOX, "desktop"),
        ("", ""),
    ],
)
def test_device_is_parsed_from_the_user_agent(user_agent, device):
    assert tags.device_from_user_agent(user_agent) == device


@pytest.mark.django_db
def test_tag_serves_an_authenticated_customer_by_username(asked):
    customer = User.objects.create_user("12347", password="x")
    request = make_request(user=customer)
    render('{% recommendations "home" as recs %}', request=request)
    [context] = asked
    assert context.user_id == "12347" and context.placement == "home"
    assert context.session_id, "a logged-in shopper keeps a session id too"


@pytest.mark.django_db
def test_tag_gives_an_anonymous_shopper_a_signed_cookie_session_and_no_session_row(asked):
    request = make_request()
    render(
        '{% recommendations "home" as recs %}{% recommendations "home" as more %}', request=request
    )
    first, second = asked
    assert first.user_id == "" and first.session_id
    assert second.session_id == first.session_id
    response = ShopperSessionMiddleware(lambda r: HttpResponse())(request)
    response = SessionMiddleware(lambda r: response).process_response(request, response)
    assert aisle_settings.SHOPPER_SESSION_COOKIE in response.cookies, (
        "the id must reach the browser"
    )
    assert settings.SESSION_COOKIE_NAME not in response.cookies, "no Django session for a view"
    assert not request.session.session_key
    returning = make_request()
    returning.COOKIES = {k: v.value for k, v in response.cookies.items()}
    render('{% recommendations "home" as recs %}', request=returning)
    assert asked[-1].session_id == first.session_id


@pytest.mark.django_db
def test_session_id_is_not_the_session_key(asked):
    """The key is the login credential; it must not end up in page source or the event log."""
    request = make_request()
    render('{% recommendations "home" as recs %}', request=request)
    request.session.save()
    assert asked[0].session_id != request.session.session_key


def test_tag_reads_the_cart_from_the_session_unless_given(asked):
    request = make_request()
    request.session["cart"] = {"22423": 2, "85123A": 1}
    render(
        '{% recommendations "cart" as a %}{% recommendations "cart" cart=skus as b %}',
        request=request,
        skus=["99999"],
    )
    from_session, given = asked
    assert set(from_session.cart_skus) == {"22423", "85123A"}
    assert given.cart_skus == ("99999",)


@pytest.mark.django_db
def test_tag_takes_product_and_category_as_objects_or_strings(asked):
    category = CategoryFactory(name="Candles", slug="candles", path="home/candles")
    product = ProductFactory(sku="85123A", category=category)
    render(
        '{% recommendations "product_detail" product=product category=category limit=4 as a %}'
        '{% recommendations "category" product="22423" category="kitchen/baking" as b %}',
        request=make_request(),
        product=product,
        category=category,
    )
    objects, strings = asked
    assert (objects.product_sku, objects.category_path, objects.limit) == (
        "85123A",
        "home/candles",
        4,
    )
    assert (strings.product_sku, strings.category_path, strings.limit) == (
        "22423",
        "kitchen/baking",
        None,
    )


def test_tag_passes_device_country_and_external_referrer(asked):
    request = make_request(
        "/p/85123A/",
        **{"User-Agent": IPHONE, "CF-IPCountry": "DE", "Referer": "https://www.google.com/search"},
    )
    render('{% recommendations "product_detail" as recs %}', request=request)
    [context] = asked
    assert (context.device, context.country, context.referrer) == (
        "mobile",
        "Germany",
        "www.google.com",
    )


@pytest.mark.django_db
def test_country_is_remembered_for_later_pages_and_the_query_wins(asked):
    """Remembered in a session that exists (cart, login); a bare page view stores nothing."""
    session_request = make_request(**{"X-Country": "EIRE"})
    session_request.session.save()
    render('{% recommendations "home" as recs %}', request=session_request)
    later = make_request()
    later.session = session_request.session
    render('{% recommendations "home" as recs %}', request=later)
    overridden = make_request("/?country=FR", **{"X-Country": "EIRE"})
    render('{% recommendations "home" as recs %}', request=overridden)
    assert [c.country for c in asked] == ["EIRE", "EIRE", "France"]


@pytest.mark.parametrize(
    ("header", "country"), [("GB", "United Kingdom"), ("US", "USA"), ("XX", ""), ("T1", "")]
)
def test_country_codes_map_to_the_names_the_event_data_uses(header, country):
    assert tags.shopper_country(make_request(**{"CF-IPCountry": header})) == country


def test_a_referrer_from_our_own_site_is_not_a_referrer(asked):
    request = make_request(**{"Referer": "http://testserver/c/home/"})
    render('{% recommendations "home" as recs %}', request=request)
    assert asked[0].referrer == ""


def test_explicit_arguments_win_over_the_request(asked):
    request = make_request(**{"User-Agent": IPHONE, "X-Country": "Germany"})
    render(
        '{% recommendations "home" user_id="u-9" session_id="s-9" country="FR" device="tablet"'
        " as recs %}",
        request=request,
    )
    [context] = asked
    assert (context.user_id, context.session_id, context.country, context.device) == (
        "u-9",
        "s-9",
        "France",
        "tablet",
    )


def test_tag_works_without_a_request(asked):
    render('{% recommendations "home" as recs %}')
    assert asked[0].session_id == "" and asked[0].user_id == ""


# --- never breaking the page


def test_tag_never_raises_when_recommend_raises(caplog):
    with mock.patch.object(tags, "recommend", side_effect=RuntimeError("redis exploded")):
        html = render(
            '{% recommendations "home" as recs %}[{% recommendation_carousel recs %}]'
            "{{ recs.items|length }}",
            request=make_request(),
        )
    assert "".join(html.split()) == "[]0"
    assert "redis exploded" in caplog.text


@pytest.mark.django_db
def test_unknown_placement_is_logged_in_production(caplog):
    caplog.set_level(logging.ERROR, logger="recs.templatetags.recs")
    html = render(
        '{% recommendations "nowhere" as recs %}{{ recs.items|length }}', request=make_request()
    )
    assert html == "0"
    assert "nowhere" in caplog.text


@pytest.mark.django_db
@override_settings(DEBUG=True)
def test_unknown_placement_raises_while_debugging():
    with pytest.raises(ValueError, match="nowhere"):
        render('{% recommendations "nowhere" as recs %}', request=make_request())


# --- the carousel


def test_carousel_renders_tracking_attributes_for_each_item():
    html = render(
        "{% recommendation_carousel recs %}",
        recs=served(item("85123A"), item("22423"), item("84879")),
    )
    assert 'data-aisle-rec-id="r123"' in html
    assert 'data-aisle-placement="product_detail"' in html
    assert 'data-aisle-variant="treatment-b"' in html
    assert 'data-aisle-tier="content"' in html
    assert 'data-aisle-source="similar"' in html
    for position, sku in enumerate(["85123A", "22423", "84879"], start=1):
        assert f'data-aisle-sku="{sku}" data-aisle-position="{position}"' in html
        assert f'href="/p/{sku}/"' in html


def test_carousel_shows_title_price_reason_and_new_badge():
    html = render(
        '{% recommendation_carousel recs title="Goes well with" %}',
        recs=served(
            item("85123A", title="Red heart lantern", reason="trending in Germany", is_new=True),
            item("22423", title="Cake stand", price="12.75", reason="popular", is_new=False),
        ),
    )
    assert 'aria-label="Goes well with"' in html and ">Goes well with</h2>" in html
    assert "Red heart lantern" in html and "£4.95" in html and "£12.75" in html
    assert "trending in Germany" in html
    assert html.count(">New</span>") == 1


def test_carousel_is_an_accessible_list_with_labelled_controls():
    html = render("{% recommendation_carousel recs %}", recs=served(item("A1"), item("A2")))
    assert '<ul class="aisle-carousel__list" id="aisle-product_detail-r123" role="list">' in html
    assert html.count('aria-controls="aisle-product_detail-r123"') == 2
    assert 'aria-label="Previous products"' in html and 'aria-label="Next products"' in html
    # Without JS the buttons would do nothing: they stay hidden until aisle.js shows them.
    assert "data-aisle-controls hidden" in html


def test_carousel_shows_an_image_when_there_is_one_and_a_placeholder_otherwise():
    html = render(
        "{% recommendation_carousel recs %}",
        recs=served(
            item("A1", title="Red heart lantern", image_url="https://img.example/a1.jpg"),
            item("A2", title="white hanging heart"),
        ),
    )
    assert '<img class="aisle-card__image" src="https://img.example/a1.jpg"' in html
    assert 'alt="Red heart lantern" loading="lazy"' in html
    assert 'aria-hidden="true">WH</div>' in html


def test_carousel_escapes_catalog_text():
    html = render(
        "{% recommendation_carousel recs %}",
        recs=served(item("A1", title="<script>alert(1)</script>", reason="<b>x</b>")),
    )
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>" not in html


@pytest.mark.parametrize("recs", [None, "", served()])
def test_carousel_renders_nothing_for_an_empty_list(recs):
    assert render("{% recommendation_carousel recs %}", recs=recs).strip() == ""


def test_placeholder_tone_depends_only_on_the_top_category():
    assert tags.placeholder_tone("home/candles") == tags.placeholder_tone("home/clocks")
    assert 0 <= tags.placeholder_tone("") < tags.PLACEHOLDER_PALETTE_SIZE


@pytest.mark.parametrize(
    ("price", "currency", "shown"),
    [("4.95", "GBP", "£4.95"), (Decimal("12.5"), "EUR", "€12.50"), ("3", "CHF", "3.00 CHF")],
)
def test_money_filter_formats_prices_like_the_carousel(price, currency, shown):
    assert render("{{ price|money:currency }}", price=price, currency=currency) == shown


# --- the page head


@override_settings(AISLE={**settings.AISLE, "STOREFRONT_PUBLISHABLE_KEY": "pk_demo"})
def test_head_carries_the_publishable_key_and_a_token_of_the_pages_shopper():
    request = make_request(**{"User-Agent": IPHONE})
    html = render("{% aisle_head %}", request=request)
    token = re.search(r'<meta name="aisle-shopper-token" content="([^"]+)">', html).group(1)
    claims = read_shopper_token(token)
    assert claims.session_id == session_id_from_cookie(request) != ""
    assert claims.user_id == ""
    assert '<meta name="aisle-key" content="pk_demo">' in html
    assert '<meta name="aisle-device" content="mobile">' in html
    assert '<meta name="aisle-endpoint" content="/api/v1/events">' in html
    assert "recs/aisle.js" in html and "recs/carousel.css" in html


# --- against the real render path


@pytest.mark.django_db
def test_anonymous_shopper_is_served_global_popularity_through_the_tag():
    category = CategoryFactory(name="Candles", slug="candles", path="home/candles")
    for sku in ("P1", "P2", "P3"):
        StockFactory(product=ProductFactory(sku=sku, title=f"Candle {sku}", category=category))
    catalog.sync_catalog_cards()
    store.write_lists([(redis_keys.POPULAR_ALL, [("P2", 3.0), ("P3", 2.0), ("P1", 1.0)])])
    html = render(
        '{% recommendations "home" as recs %}{% recommendation_carousel recs %}',
        request=make_request(),
    )
    assert 'data-aisle-placement="home"' in html and 'data-aisle-tier="anonymous"' in html
    positions = [html.index(f'data-aisle-sku="{sku}"') for sku in ("P2", "P3", "P1")]
    assert positions == sorted(positions)
    assert "Candle P2" in html
