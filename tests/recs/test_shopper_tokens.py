"""recs.shopper_tokens: minted here or by a shop's own backend with the shared secret."""

import io
import time

import jwt
import pytest
from django.core.management import CommandError, call_command

from recs.shopper_tokens import InvalidShopperToken, mint_shopper_token, read_shopper_token


def test_a_token_round_trips_its_shopper():
    claims = read_shopper_token(mint_shopper_token(user_id="12347", session_id="s-1", ttl_s=60))
    assert (claims.user_id, claims.session_id) == ("12347", "s-1")
    assert claims.expires_at - time.time() <= 60


def test_a_backend_in_another_language_mints_with_the_shared_secret(settings):
    settings.AISLE = {
        **settings.AISLE,
        "SHOPPER_TOKEN_SECRET": "shared-with-the-node-backend-0123456789abcdef",
    }
    now = int(time.time())
    foreign = jwt.encode({"sub": "c-9", "aud": "aisle", "iat": now, "exp": now + 300},
                         "shared-with-the-node-backend-0123456789abcdef", algorithm="HS256")  # fmt: skip
    assert read_shopper_token(foreign).user_id == "c-9"


@pytest.mark.parametrize(
    "kwargs", [{}, {"user_id": "u", "ttl_s": 0}, {"user_id": "u", "ttl_s": 10**7},
               {"user_id": "u" * 65}],
)  # fmt: skip
def test_minting_refuses_what_would_be_refused_later(kwargs):
    with pytest.raises(ValueError):
        mint_shopper_token(**kwargs)


def test_a_token_signed_with_none_is_refused():
    unsigned = jwt.encode({"sub": "u", "aud": "aisle", "iat": 0, "exp": 2**31}, None,
                          algorithm="none")  # fmt: skip
    with pytest.raises(InvalidShopperToken):
        read_shopper_token(unsigned)


def test_the_command_prints_a_token():
    out = io.StringIO()
    call_command("mint_shopper_token", "--user-id", "12347", "--ttl", "120", stdout=out)
    assert read_shopper_token(out.getvalue().strip()).user_id == "12347"
    with pytest.raises(CommandError, match="user_id, a session_id"):
        call_command("mint_shopper_token")
