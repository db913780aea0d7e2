"""API keys: created in the admin, stored hashed, checked without a DB query.

The read API holds the keys it has seen in process and checks them against the keys' version
(bumped by every revocation or edit) read in the request's one Redis round trip
(`authenticate_key(..., held_in_process=True)` then `confirm_held_key`); other views ask
Django's cache on every request, so a revoked key stops working at once everywhere.

Two kinds, as payment APIs have them:
- publishable (`pk_...`): rendered into storefront pages, so public. Write-only, and only for the
  shopper a signed shopper token names (see recs.shopper_tokens); never reads anything personal.
- secret (`sk_...`): kept on the shop's servers. Scopes: read (any shopper's recommendations),
  write (events for any shopper), catalog (products and stock), admin (erasure).
"""

import contextlib
import hashlib
import secrets
import threading

from django.db import models
from django.utils import timezone

from aisle.conf import aisle_cache
from recs import redis_clients, redis_keys

KEY_PREFIX_LENGTH = 8
AUTH_CACHE_SECONDS = 60
LAST_USED_RESOLUTION_S = 60


class KeyKind(models.TextChoices):
    PUBLISHABLE = "publishable", "publishable (in pages; events of the page's own shopper)"
    SECRET = "secret", "secret (server to server; never in a page)"


class KeyScope(models.TextChoices):
    WRITE = "write", "send events"
    READ = "read", "read any shopper's recommendations"
    CATALOG = "catalog", "upsert products and stock"
    ADMIN = "admin", "erase shoppers"


PUBLISHABLE_SCOPES = (KeyScope.WRITE.value,)
KIND_PREFIXES = {KeyKind.PUBLISHABLE.value: "pk_", KeyKind.SECRET.value: "sk_"}


class ApiKey(models.Model):
    """A key of one storefront or server integration. Only a SHA-256 of it is kept: keys are
    256-bit random tokens, so a fast hash is enough (no dictionary to guess from), and it lets
    the hot path look a key up by hash."""

    name = models.CharField(max_length=100, help_text="Who uses it, e.g. 'storefront' or 'ERP'")
    kind = models.CharField(
        max_length=12, choices=KeyKind.choices, default=KeyKind.PUBLISHABLE,
        help_text="Publishable keys go into pages and can only send the page's own shopper's "
        "events; secret keys stay on servers.",
    )  # fmt: skip
    key_prefix = models.CharField(max_length=KEY_PREFIX_LENGTH, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(
        default=list,
        help_text='Secret keys: any of "read", "write", "catalog", "admin". '
        'Publishable keys always have ["write"] only.',
    )
    is_active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["name", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def is_secret(self) -> bool:
        return self.kind == KeyKind.SECRET

    def has_scope(self, scope: str) -> bool:
        if not self.is_secret and scope not in PUBLISHABLE_SCOPES:
            return False
        return scope in self.scopes

    # DRF's IsAuthenticated checks request.user; a key authenticates an integration, not a person.
    is_authenticated = True


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _cache_key(key_hash: str) -> str:
    return f"api-key:{key_hash}"


def validate_key_scopes(kind: str, scopes: list[str]) -> list[str]:
    """The scopes a key of this kind gets; ValueError says what is wrong."""
    if kind not in KeyKind.values:
        raise ValueError(f"The kind must be one of {', '.join(KeyKind.values)}.")
    unknown = set(scopes) - set(KeyScope.values)
    if unknown:
        raise ValueError(f"Scopes must be among {', '.join(KeyScope.values)}.")
    if kind == KeyKind.PUBLISHABLE:
        if set(scopes) - set(PUBLISHABLE_SCOPES):
            raise ValueError(
                "A publishable key is rendered into pages, so it can only send events "
                "(scope 'write'); use a secret key for read, catalog or admin."
            )
        return list(PUBLISHABLE_SCOPES)
    if not scopes:
        raise ValueError("A secret key needs at least one scope.")
    return sorted(set(scopes))


def create_api_key(name: str, kind: str, scopes: list[str] | None = None) -> tuple[ApiKey, str]:
    """Create a key; returns it with the plaintext, which is shown once and never stored."""
    scopes = validate_key_scopes(kind, list(scopes or []))
    plaintext = KIND_PREFIXES[kind] + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name,
        kind=kind,
        key_prefix=plaintext[:KEY_PREFIX_LENGTH],
        key_hash=hash_key(plaintext),
        scopes=scopes,
    )
    return key, plaintext


# Keys the read API has seen: key hash -> (key, the keys' version it was last checked under).
_held: dict[str, tuple[ApiKey, str]] = {}
_held_lock = threading.Lock()
HELD_KEYS_MAX = 10_000


def authenticate_key(plaintext: str, *, held_in_process: bool = False) -> ApiKey | None:
    """The active key with this plaintext, or None. Positive answers are cached for a minute;
    with `held_in_process` a key this process holds is taken as it is, and the caller must
    `confirm_held_key` it against the version its round trip read."""
    if not plaintext:
        return None
    key_hash = hash_key(plaintext)
    held = _held.get(key_hash) if held_in_process else None
    key = held[0] if held is not None else _looked_up(key_hash, held_in_process)
    if key is None:
        return None
    now = timezone.now()
    if (
        key.last_used_at is None
        or (now - key.last_used_at).total_seconds() > LAST_USED_RESOLUTION_S
    ):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        _cache_quietly(key_hash, key)
    return key


def _looked_up(key_hash: str, hold: bool) -> ApiKey | None:
    try:
        key = aisle_cache().get(_cache_key(key_hash))
    except Exception:  # the cache (Redis) is down: the database still answers
        key = None
    if key is None:
        key = ApiKey.objects.filter(key_hash=key_hash, is_active=True).first()
        if key is None:
            return None
        _cache_quietly(key_hash, key)
    if hold:
        with _held_lock:
            if len(_held) >= HELD_KEYS_MAX:
                _held.clear()
            _held[key_hash] = (key, "")  # "": not yet checked under any version
    return key


def _cache_quietly(key_hash: str, key: ApiKey) -> None:
    with contextlib.suppress(Exception):  # a cold cache only costs a query
        aisle_cache().set(_cache_key(key_hash), key, AUTH_CACHE_SECONDS)


def confirm_held_key(key: ApiKey, version: bytes | None) -> ApiKey | None:
    """The key as it stands now, or None when it was revoked: free while the keys' `version`
    (read in the request's round trip; None when Redis did not answer) is the one this process
    last checked it under, one query otherwise."""
    seen = version.decode() if version is not None else None
    held = _held.get(key.key_hash)
    if seen is not None and held is not None and held[1] == seen:
        return held[0]
    current = ApiKey.objects.filter(pk=key.pk, is_active=True).first()
    with _held_lock:
        if current is None:
            _held.pop(key.key_hash, None)
        elif seen is not None:
            _held[key.key_hash] = (current, seen)
    return current


def announce_key_change() -> None:
    """Make every process check the keys it holds again (after a revocation or an edit)."""
    with contextlib.suppress(*redis_clients.CONNECTION_ERRORS):  # then the DB check applies
        redis_clients.worker_client().incr(redis_keys.API_KEYS_VERSION)


def revoke_keys(keys: list[ApiKey]) -> int:
    """Deactivate keys and drop them from the auth cache at once."""
    revoked = ApiKey.objects.filter(pk__in=[k.pk for k in keys], is_active=True).update(
        is_active=False
    )
    aisle_cache().delete_many([_cache_key(k.key_hash) for k in keys])
    announce_key_change()
    return revoked


def clear_held_keys() -> None:
    with _held_lock:
        _held.clear()
