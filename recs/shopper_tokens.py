"""Signed shopper tokens: how a page or a headless frontend proves which shopper it speaks for.

A token is a JWT (HS256) the shop's backend mints after its own login, or `{% aisle_head %}`
mints for the page it renders. Claims: `sub` (the shop's customer id, optional), `sid` (the
shopper's session id, optional; one of the two is required), `aud`, `iat`, `exp`. Any language
can mint one with the shared secret (SHOPPER_TOKEN_SECRET); `mint_shopper_token` and
`manage.py mint_shopper_token` do it here. Tokens live at most SHOPPER_TOKEN_MAX_TTL_S.
"""

import hashlib
import hmac
import time
from dataclasses import dataclass

import jwt
from django.conf import settings

from aisle.conf import aisle_settings

ALGORITHM = "HS256"
HEADER = "X-Aisle-Shopper-Token"
MAX_ID_LENGTH = 64


class InvalidShopperToken(Exception):
    """The token is malformed, forged, expired or for another audience; str() says which."""


@dataclass(frozen=True)
class ShopperClaims:
    user_id: str
    session_id: str
    expires_at: int


def token_secret() -> bytes:
    """SHOPPER_TOKEN_SECRET, or a key derived from SECRET_KEY for it (never SECRET_KEY itself)."""
    if aisle_settings.SHOPPER_TOKEN_SECRET:
        return aisle_settings.SHOPPER_TOKEN_SECRET.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"aisle.shopper-token", hashlib.sha256).digest()


def mint_shopper_token(*, user_id: str = "", session_id: str = "", ttl_s: int | None = None) -> str:
    """A token for this shopper, valid for `ttl_s` (default SHOPPER_TOKEN_TTL_S)."""
    if not user_id and not session_id:
        raise ValueError("A shopper token names a user_id, a session_id or both.")
    if len(user_id) > MAX_ID_LENGTH or len(session_id) > MAX_ID_LENGTH:
        raise ValueError(f"Ids are at most {MAX_ID_LENGTH} characters.")
    ttl_s = aisle_settings.SHOPPER_TOKEN_TTL_S if ttl_s is None else ttl_s
    if not 0 < ttl_s <= aisle_settings.SHOPPER_TOKEN_MAX_TTL_S:
        raise ValueError(f"ttl_s must be between 1 and {aisle_settings.SHOPPER_TOKEN_MAX_TTL_S}.")
    now = int(time.time())
    claims = {"aud": aisle_settings.SHOPPER_TOKEN_AUDIENCE, "iat": now, "exp": now + ttl_s}
    if user_id:
        claims["sub"] = user_id
    if session_id:
        claims["sid"] = session_id
    return jwt.encode(claims, token_secret(), algorithm=ALGORITHM)


def read_shopper_token(token: str) -> ShopperClaims:
    """The shopper a valid token names; InvalidShopperToken says what is wrong otherwise."""
    try:
        claims = jwt.decode(
            token,
            token_secret(),
            algorithms=[ALGORITHM],
            audience=aisle_settings.SHOPPER_TOKEN_AUDIENCE,
            options={"require": ["exp", "iat", "aud"]},
            leeway=aisle_settings.SHOPPER_TOKEN_LEEWAY_S,
        )
    except jwt.ExpiredSignatureError as error:
        raise InvalidShopperToken("The shopper token has expired; mint a new one.") from error
    except jwt.InvalidAudienceError as error:
        raise InvalidShopperToken("The shopper token is for another audience.") from error
    except jwt.InvalidTokenError as error:
        raise InvalidShopperToken(f"The shopper token is invalid ({error}).") from error
    if claims["exp"] - claims["iat"] > aisle_settings.SHOPPER_TOKEN_MAX_TTL_S:
        raise InvalidShopperToken(
            f"The shopper token lives longer than {aisle_settings.SHOPPER_TOKEN_MAX_TTL_S} s; "
            "mint shorter-lived ones."
        )
    user_id, session_id = claims.get("sub", ""), claims.get("sid", "")
    if not isinstance(user_id, str) or not isinstance(session_id, str):
        raise InvalidShopperToken("The shopper token's sub and sid must be strings.")
    if not user_id and not session_id:
        raise InvalidShopperToken(
            "The shopper token names neither a user (sub) nor a session (sid)."
        )
    if len(user_id) > MAX_ID_LENGTH or len(session_id) > MAX_ID_LENGTH:
        raise InvalidShopperToken(f"The shopper token's ids are longer than {MAX_ID_LENGTH}.")
    return ShopperClaims(user_id=user_id, session_id=session_id, expires_at=int(claims["exp"]))
