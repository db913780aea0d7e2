"""`{% load recs %}`: recommendations for a page, the carousel that shows them, the tracking head.

A tag on a storefront page must never break the page: whatever goes wrong behind
`recommend()` is logged and the page renders without the widget.
"""

import functools
import logging
import re
import zlib
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django import template
from django.conf import settings
from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import slugify

from aisle.conf import aisle_settings
from merch.catalog_source import product_sku
from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext, Recommendations, RecommendedItem
from recs.shopper_session import shopper_session_id
from recs.shopper_tokens import mint_shopper_token

logger = logging.getLogger(__name__)
register = template.Library()

SESSION_COUNTRY_KEY = "aisle_country"
SESSION_CART_KEY = "cart"  # the storefront's cart: {sku: quantity}
PLACEHOLDER_PALETTE_SIZE = 8
MAX_COUNTRY_LENGTH = 64

# Tablets first: their user agents also say "Android" or "Mobile"-like things.
_TABLET = re.compile(
    r"ipad|tablet|kindle|silk/|playbook|nexus (7|9|10)|sm-t\d|android(?!.*mobi)", re.I
)
_MOBILE = re.compile(
    r"mobi|iphone|ipod|android|windows phone|iemobile|blackberry|bb10|opera mini|webos", re.I
)

# ISO 3166 codes (the CF-IPCountry header) -> country names as the event data spells them, so
# that a visitor lands in the same segment as the history ("EIRE", "USA", "RSA" included).
ISO_COUNTRY_NAMES = {
    "AE": "United Arab Emirates", "AT": "Austria", "AU": "Australia", "BE": "Belgium",
    "BH": "Bahrain", "BR": "Brazil", "CA": "Canada", "CH": "Switzerland", "CY": "Cyprus",
    "CZ": "Czech Republic", "DE": "Germany", "DK": "Denmark", "ES": "Spain", "FI": "Finland",
    "FR": "France", "GB": "United Kingdom", "GG": "Channel Islands", "GR": "Greece",
    "HK": "Hong Kong", "IE": "EIRE", "IL": "Israel", "IS": "Iceland", "IT": "Italy",
    "JE": "Channel Islands", "JP": "Japan", "LB": "Lebanon", "LT": "Lithuania", "MT": "Malta",
    "NL": "Netherlands", "NO": "Norway", "PL": "Poland", "PT": "Portugal", "SA": "Saudi Arabia",
    "SE": "Sweden", "SG": "Singapore", "UK": "United Kingdom", "US": "USA", "ZA": "RSA",
}  # fmt: skip
# Cloudflare's codes for "unknown" and "Tor": no segment to serve.
_NO_COUNTRY = {"XX", "T1"}

CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def device_from_user_agent(user_agent: str) -> str:
    """ "mobile", "tablet" or "desktop" ("" without a user agent), as segments know devices.

    iPadOS Safari announces itself as a Mac, so it counts as desktop: the server cannot tell.
    """
    if not user_agent:
        return ""
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    return "desktop"


def normalize_country(value: str) -> str:
    """A country name as the event data spells it, from a name or an ISO code ("" if unknown)."""
    value = (value or "").strip()[:MAX_COUNTRY_LENGTH]
    if len(value) == 2:
        code = value.upper()
        return "" if code in _NO_COUNTRY else ISO_COUNTRY_NAMES.get(code, code)
    return value


def shopper_user_id(request: HttpRequest | None) -> str:
    """The customer id: storefront customers' usernames are the shop's customer ids."""
    user = getattr(request, "user", None)
    return user.get_username() if user is not None and user.is_authenticated else ""


def shopper_country(request: HttpRequest | None) -> str:
    """From `?country=`, else the X-Country / CF-IPCountry header, else what the session
    remembers; a new answer is remembered so that later pages keep the visitor's segment."""
    if request is None:
        return ""
    given = (
        request.GET.get("country")
        or request.headers.get("X-Country")
        or request.headers.get("CF-IPCountry")
        or ""
    )
    country = normalize_country(given)
    session = getattr(request, "session", None)
    # Only a session that exists already remembers it: a page view alone writes no session row.
    if session is None or not session.session_key:
        return country
    if country:
        if session.get(SESSION_COUNTRY_KEY) != country:
            session[SESSION_COUNTRY_KEY] = country
        return country
    return session.get(SESSION_COUNTRY_KEY, "")


def external_referrer(request: HttpRequest | None) -> str:
    """The host of the Referer when it is another site; our own pages are not a referrer."""
    if request is None:
        return ""
    host = (urlsplit(request.headers.get("Referer", "")).hostname or "").lower()
    own_host = (urlsplit(f"//{request.get_host()}").hostname or "").lower()
    return host if host and host != own_host else ""


def _session_cart_skus(request: HttpRequest | None) -> tuple[str, ...]:
    session = getattr(request, "session", None)
    cart = session.get(SESSION_CART_KEY) if session is not None else None
    return tuple(str(sku) for sku in cart) if isinstance(cart, dict) else ()


def build_context(
    request: HttpRequest | None,
    placement: str,
    *,
    product: Any = None,
    category: Any = None,
    cart: Iterable[str] | None = None,
    limit: int | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    country: str | None = None,
    device: str | None = None,
) -> RecommendationContext:
    """What the page knows about the shopper; explicit arguments win over the request."""
    return RecommendationContext(
        placement=placement,
        user_id=user_id if user_id is not None else shopper_user_id(request),
        session_id=session_id if session_id is not None else shopper_session_id(request),
        product_sku=product_sku(product),
        cart_skus=tuple(str(sku) for sku in cart)
        if cart is not None
        else _session_cart_skus(request),
        category_path=str(getattr(category, "path", category) or ""),
        device=device
        if device is not None
        else device_from_user_agent(request.headers.get("User-Agent", "") if request else ""),
        country=normalize_country(country) if country is not None else shopper_country(request),
        referrer=external_referrer(request),
        limit=int(limit) if limit is not None else None,
    )


def empty_recommendations(placement: str, reason: str) -> Recommendations:
    """What a page gets when recommending failed: nothing to show, and why (for debugging)."""
    return Recommendations(
        placement=placement,
        items=[],
        tier="",
        source="error",
        variant="",
        model_version="",
        rec_id="",
        generated_at=0.0,
        fallbacks=[reason],
    )


@register.simple_tag(takes_context=True)
def recommendations(
    context: template.Context,
    placement: str,
    *,
    product: Any = None,
    category: Any = None,
    cart: Iterable[str] | None = None,
    limit: int | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    country: str | None = None,
    device: str | None = None,
) -> Recommendations:
    """`{% recommendations "product_detail" product=product limit=8 as recs %}`."""
    request = context.get("request")
    try:
        page_context = build_context(
            request,
            placement,
            product=product,
            category=category,
            cart=cart,
            limit=limit,
            user_id=user_id,
            session_id=session_id,
            country=country,
            device=device,
        )
        return recommend(page_context)
    except ValueError:
        # recommend() raises ValueError for a placement it does not know: a template bug that
        # a developer should see, but a shopper should not pay for.
        if settings.DEBUG:
            raise
        logger.exception("Recommendations for placement %r failed", placement)
        return empty_recommendations(placement, "template_tag_error")
    except Exception:
        logger.exception("Recommendations for placement %r failed", placement)
        return empty_recommendations(placement, "template_tag_error")


def format_price(price: str, currency: str) -> str:
    """ "£4.95", or "4.95 CHF" for currencies without a known symbol."""
    try:
        amount = f"{Decimal(price):.2f}"
    except (InvalidOperation, TypeError, ValueError):
        amount = str(price or "")
    if not amount:
        return ""
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{amount}" if symbol else f"{amount} {currency}".strip()


@register.filter(name="initials")
def initials(title: str) -> str:
    """A product's placeholder tile, the same in carousels, grids and product pages: the first
    letters of its first two words that start with a letter ("White hanging heart" -> "WH",
    "3 Traditional Biscuit Cutters" -> "TB"), else of its first two words, else "?".
    `{{ product.title|initials }}`."""
    words = [word for word in re.split(r"[^\w]+", str(title or "")) if word]
    lettered = [word for word in words if word[0].isalpha()]
    return "".join(word[0] for word in (lettered or words)[:2]).upper() or "?"


@register.filter(name="placeholder_tone")
def placeholder_tone(category_path: str) -> int:
    """A palette slot per top-level category, stable across processes (crc32, not hash()):
    the `aisle-tone-<n>` class of a placeholder tile.
    `{{ product.category.path|placeholder_tone }}`."""
    top = str(category_path or "").split("/", 1)[0]
    return zlib.crc32(top.encode()) % PLACEHOLDER_PALETTE_SIZE


def product_url(item: RecommendedItem) -> str:
    """The product's page: the URL its catalog card carried into the answer (a shop's own
    catalog knows pages that reverse() cannot build from a SKU, e.g. slug and id), else the
    page named by the RECS_PRODUCT_URL_NAME setting."""
    if item.url:
        return item.url
    return _reversed_product_url(
        aisle_settings.RECS_PRODUCT_URL_NAME,
        item.sku,
        get_urlconf() or settings.ROOT_URLCONF,
        get_script_prefix(),
    )


@functools.lru_cache(maxsize=8192)
def _reversed_product_url(url_name: str, sku: str, urlconf: str, prefix: str) -> str:
    """reverse() of a product page, remembered (it costs a carousel tens of microseconds a
    card); keyed by everything reverse() reads, so a changed URLconf or prefix misses."""
    try:
        return reverse(url_name, args=[sku], urlconf=urlconf)
    except NoReverseMatch:
        return ""


def _card(item: RecommendedItem, position: int) -> dict[str, Any]:
    return {
        "sku": item.sku,
        "position": position,
        "title": item.title or item.sku,
        "price": format_price(item.price, item.currency),
        "reason": item.reason,
        "is_new": item.is_new,
        "url": product_url(item),
        "image_url": item.image_url,
        "initials": initials(item.title or item.sku),
        "tone": placeholder_tone(item.category_path),
    }


@register.inclusion_tag("recs/carousel.html")
def recommendation_carousel(
    recs: Recommendations | None, title: str = "You might also like"
) -> dict[str, Any]:
    """`{% recommendation_carousel recs title="..." %}`: renders nothing for an empty list."""
    items = list(getattr(recs, "items", None) or [])
    if not items:
        return {"cards": []}
    placement = recs.placement
    return {
        "title": title,
        "dom_id": "aisle-" + slugify(f"{placement}-{recs.rec_id or 'list'}"),
        "placement": placement,
        "rec_id": recs.rec_id,
        "variant": recs.variant,
        "tier": recs.tier,
        "source": recs.source,
        "cards": [_card(item, position) for position, item in enumerate(items, start=1)],
    }


@register.simple_tag(takes_context=True)
def aisle_head(context: template.Context) -> SafeString:
    """The widget's stylesheet, script and the meta tags the script sends events with.

    The publishable key is public by design; what makes the events this shopper's is the
    shopper token minted here for the page's own session (and customer, when signed in).
    """
    request = context.get("request")
    user_agent = request.headers.get("User-Agent", "") if request is not None else ""
    try:
        endpoint = reverse("aisle:api-events")
    except NoReverseMatch:
        endpoint = "/api/v1/events"
    session_id = shopper_session_id(request)
    token = (
        mint_shopper_token(user_id=shopper_user_id(request)[:64], session_id=session_id)
        if session_id
        else ""
    )
    return format_html(
        '<meta name="aisle-key" content="{}">\n'
        '<meta name="aisle-shopper-token" content="{}">\n'
        '<meta name="aisle-device" content="{}">\n'
        '<meta name="aisle-country" content="{}">\n'
        '<meta name="aisle-endpoint" content="{}">\n'
        '<link rel="stylesheet" href="{}">\n'
        '<script src="{}" defer></script>',
        aisle_settings.STOREFRONT_PUBLISHABLE_KEY,
        token,
        device_from_user_agent(user_agent),
        shopper_country(request),
        endpoint,
        static("recs/carousel.css"),
        static("recs/aisle.js"),
    )


@register.filter(name="money")
def money(price: Any, currency: str = "") -> str:
    """`{{ product.price|money:product.currency }}` -> "£4.95", as the carousel shows prices."""
    return format_price(price, currency or aisle_settings.DEFAULT_CURRENCY)
