"""recs.api_keys: API keys are random, stored hashed, cached, revocable; publishable keys can only
ever write, secret keys carry the scopes they were given."""

import pytest
from django.core.cache import cache

from recs.api_keys import ApiKey, authenticate_key, create_api_key, hash_key, revoke_keys

pytestmark = pytest.mark.django_db


def test_only_a_hash_of_the_key_is_stored():
    key, plaintext = create_api_key("shop", "secret", ["write"])
    assert plaintext.startswith("sk_") and len(plaintext) > 40
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == hash_key(plaintext) and plaintext not in str(stored.__dict__)
    assert stored.key_prefix == plaintext[:8]


def test_a_known_key_authenticates_from_the_cache_without_a_query(django_assert_num_queries):
    key, plaintext = create_api_key("shop", "secret", ["write", "read"])
    assert authenticate_key(plaintext) == key
    with django_assert_num_queries(0):
        assert authenticate_key(plaintext) == key


def test_unknown_and_revoked_keys_do_not_authenticate():
    key, plaintext = create_api_key("shop", "secret", ["write"])
    authenticate_key(plaintext)
    assert authenticate_key("sk_not-a-key") is None
    assert revoke_keys([key]) == 1
    assert authenticate_key(plaintext) is None
    assert cache.get(f"api-key:{key.key_hash}") is None


def test_scopes_are_checked():
    with pytest.raises(ValueError, match="Scopes"):
        create_api_key("shop", "secret", ["delete-everything"])
    with pytest.raises(ValueError, match="at least one scope"):
        create_api_key("shop", "secret", [])
    with pytest.raises(ValueError, match="publishable key"):
        create_api_key("shop", "publishable", ["read"])


def test_a_publishable_key_can_only_ever_write():
    key, plaintext = create_api_key("storefront", "publishable")
    assert plaintext.startswith("pk_") and key.scopes == ["write"]
    key.scopes = ["write", "read", "catalog", "admin"]  # even if the row says otherwise
    assert key.has_scope("write")
    assert not any(key.has_scope(scope) for scope in ("read", "catalog", "admin"))


def test_a_secret_key_has_exactly_its_scopes():
    key, _ = create_api_key("erp", "secret", ["catalog"])
    assert key.has_scope("catalog") and not key.has_scope("read") and not key.has_scope("write")


def test_the_admin_shows_a_new_key_once(admin_client):
    response = admin_client.post(
        "/admin/recs/apikey/add/",
        {"name": "ERP", "kind": "secret", "scopes": '["catalog"]', "is_active": "on"},
        follow=True,
    )
    text = response.content.decode()
    key = ApiKey.objects.get(name="ERP")
    assert "copy it now" in text and key.kind == "secret" and key.scopes == ["catalog"]
    shown = text.split("Secret key for ERP: ")[1].split(" ")[0]
    assert authenticate_key(shown) == key


def test_the_admin_refuses_a_publishable_key_that_reads(admin_client):
    response = admin_client.post(
        "/admin/recs/apikey/add/",
        {"name": "Shop", "kind": "publishable", "scopes": '["read"]', "is_active": "on"},
    )
    assert response.status_code == 200 and "can only send events" in response.content.decode()
    assert not ApiKey.objects.filter(name="Shop").exists()
