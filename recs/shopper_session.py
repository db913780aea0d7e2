"""The shopper's session id: a random id in a signed cookie, issued by the server.

Not the Django session: a page view by a visitor without a cookie must not write a session
row (crawlers would fill the table), and the Django session key is the login credential. The
cookie is signed, so a client cannot pick someone else's session id; it survives login, so the
anonymous history is linked to the customer when their first event names both.
"""

import re
import uuid

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from aisle.conf import aisle_settings

COOKIE_SALT = "aisle.shopper-session"
_NEW_ATTR = "_aisle_new_session_id"
_ID_ATTR = "_aisle_session_id"
LEGACY_SESSION_KEY = "aisle_session_id"  # where ids lived before the cookie, inside the session
_VALID_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _valid(value: object) -> bool:
    return isinstance(value, str) and _VALID_ID.fullmatch(value) is not None


def session_id_from_cookie(request: HttpRequest) -> str:
    """The id of a valid signed cookie (or one issued during this request), else ""."""
    issued = getattr(request, _ID_ATTR, None)
    if issued is not None:
        return issued
    cookies = getattr(request, "COOKIES", None)
    if not cookies or aisle_settings.SHOPPER_SESSION_COOKIE not in cookies:
        return ""
    try:
        value = _signer().unsign(
            cookies[aisle_settings.SHOPPER_SESSION_COOKIE],
            max_age=aisle_settings.SHOPPER_SESSION_COOKIE_AGE_S,
        )
    except signing.BadSignature:  # forged, or older than the cookie's age
        return ""
    if not _valid(value):
        return ""
    setattr(request, _ID_ATTR, value)  # a page's tags and the API ask again: unsign once
    return value


def signed_cookie_value(session_id: str) -> str:
    """The cookie's value for a session id (what the middleware sets; benchmarks send it)."""
    return _signer().sign(session_id)


def _signer() -> signing.Signer:
    return signing.get_cookie_signer(salt=COOKIE_SALT)


def shopper_session_id(request: HttpRequest | None) -> str:
    """This visitor's session id, issued now when they have none (the middleware then sets the
    cookie on the response). A session id kept by an older release inside the Django session
    carries over."""
    if request is None:
        return ""
    session_id = session_id_from_cookie(request)
    if session_id:
        return session_id
    session = getattr(request, "session", None)
    stored = session is not None and session.session_key
    legacy = session.get(LEGACY_SESSION_KEY, "") if stored else ""
    session_id = legacy if _valid(legacy) else uuid.uuid4().hex
    setattr(request, _ID_ATTR, session_id)
    setattr(request, _NEW_ATTR, True)
    return session_id


def set_session_cookie(response: HttpResponse, session_id: str) -> None:
    response.set_cookie(
        aisle_settings.SHOPPER_SESSION_COOKIE,
        signed_cookie_value(session_id),
        max_age=aisle_settings.SHOPPER_SESSION_COOKIE_AGE_S,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


class ShopperSessionMiddleware:
    """Sets the signed session cookie on responses that issued a new shopper session id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, _NEW_ATTR, False):
            set_session_cookie(response, getattr(request, _ID_ATTR))
            patch_vary_headers(response, ("Cookie",))
        return response
