"""recs.keys: storefront keys are random, stored hashed, cached, revocable."""

import pytest
from django.core.cache import cache

from recs.keys import StorefrontKey, authenticate_key, create_storefront_key, hash_key, revoke_keys

pytestmark = pytest.mark.django_db


def test_only_a_hash_of_the_key_is_stored():
    key, plaintext = create_storefront_key("shop", ["write"])
    assert plaintext.startswith("ak_") and len(plaintext) > 40
    stored = StorefrontKey.objects.get(pk=key.pk)
    assert stored.key_hash == hash_key(plaintext) and plaintext not in str(stored.__dict__)
    assert stored.key_prefix == plaintext[:8]


def test_a_known_key_authenticates_from_the_cache_without_a_query(django_assert_num_queries):
    key, plaintext = create_storefront_key("shop", ["write", "read"])
    assert authenticate_key(plaintext) == key
    with django_assert_num_queries(0):
        assert authenticate_key(plaintext) == key


def test_unknown_and_revoked_keys_do_not_authenticate():
    key, plaintext = create_storefront_key("shop", ["write"])
    authenticate_key(plaintext)
    assert authenticate_key("ak_not-a-key") is None
    assert revoke_keys([key]) == 1
    assert authenticate_key(plaintext) is None
    assert cache.get(f"storefront-key:{key.key_hash}") is None


def test_scopes_are_checked():
    with pytest.raises(ValueError, match="Scopes"):
        create_storefront_key("shop", ["admin"])


def test_the_admin_shows_a_new_key_once(admin_client):
    response = admin_client.post(
        "/admin/recs/storefrontkey/add/",
        {"name": "Main shop", "scopes": '["write"]', "is_active": "on"},
        follow=True,
    )
    text = response.content.decode()
    key = StorefrontKey.objects.get(name="Main shop")
    assert "copy it now" in text
    shown = text.split("Key for Main shop: ")[1].split(" ")[0]
    assert authenticate_key(shown) == key
