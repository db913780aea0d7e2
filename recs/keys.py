"""Per-storefront API keys: created in the admin, stored hashed, checked without a DB query."""

import contextlib
import hashlib
import secrets

from django.core.cache import cache
from django.db import models
from django.utils import timezone

KEY_PREFIX_LENGTH = 8
AUTH_CACHE_SECONDS = 60
LAST_USED_RESOLUTION_S = 60


class KeyScope(models.TextChoices):
    WRITE = "write", "write events"
    READ = "read", "read recommendations"


class StorefrontKey(models.Model):
    """A storefront's key. Only a SHA-256 of it is kept: keys are 256-bit random tokens, so a fast
    hash is enough (no dictionary to guess from), and it lets the hot path look a key up by hash."""

    name = models.CharField("storefront", max_length=100)
    key_prefix = models.CharField(max_length=KEY_PREFIX_LENGTH, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list, help_text='e.g. ["write"], ["read"] or both')
    is_active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "storefront key"
        ordering = ["name", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    # DRF's IsAuthenticated checks request.user; a key authenticates a storefront, not a person.
    is_authenticated = True


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _cache_key(key_hash: str) -> str:
    return f"storefront-key:{key_hash}"


def create_storefront_key(name: str, scopes: list[str]) -> tuple[StorefrontKey, str]:
    """Create a key; returns it with the plaintext, which is shown once and never stored."""
    unknown = set(scopes) - set(KeyScope.values)
    if unknown or not scopes:
        raise ValueError(f"Scopes must be among {', '.join(KeyScope.values)}")
    plaintext = "ak_" + secrets.token_urlsafe(32)
    key = StorefrontKey.objects.create(
        name=name,
        key_prefix=plaintext[:KEY_PREFIX_LENGTH],
        key_hash=hash_key(plaintext),
        scopes=sorted(set(scopes)),
    )
    return key, plaintext


def authenticate_key(plaintext: str) -> StorefrontKey | None:
    """The active key with this plaintext, or None. Positive answers are cached for a minute."""
    if not plaintext:
        return None
    key_hash = hash_key(plaintext)
    try:
        key = cache.get(_cache_key(key_hash))
    except Exception:  # the cache (Redis) is down: the database still answers
        key = None
    if key is None:
        key = StorefrontKey.objects.filter(key_hash=key_hash, is_active=True).first()
        if key is None:
            return None
        _cache_quietly(key_hash, key)
    now = timezone.now()
    if (
        key.last_used_at is None
        or (now - key.last_used_at).total_seconds() > LAST_USED_RESOLUTION_S
    ):
        StorefrontKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        _cache_quietly(key_hash, key)
    return key


def _cache_quietly(key_hash: str, key: StorefrontKey) -> None:
    with contextlib.suppress(Exception):  # a cold cache only costs a query
        cache.set(_cache_key(key_hash), key, AUTH_CACHE_SECONDS)


def revoke_keys(keys: list[StorefrontKey]) -> int:
    """Deactivate keys and drop them from the auth cache at once."""
    revoked = StorefrontKey.objects.filter(pk__in=[k.pk for k in keys], is_active=True).update(
        is_active=False
    )
    cache.delete_many([_cache_key(k.key_hash) for k in keys])
    return revoked
