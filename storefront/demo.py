"""Accounts and keys the demo needs: the merchandiser, a few shoppers with history, a write key."""

import os
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db.models import Count

from recs.api_keys import ApiKey, create_api_key, hash_key
from recs.models import Event

DEMO_KEY_NAME = "Demo storefront"


def ensure_superuser(username: str, password: str) -> None:
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()


def ensure_customers(count: int, password: str, always: tuple[str, ...] = ()) -> list[str]:
    """Storefront logins for the customers with the most history (username = customer id), so
    that logging in shows collaborative recommendations."""
    busiest = (
        Event.objects.exclude(user_id="")
        .values("user_id")
        .annotate(events=Count("id"))
        .order_by("-events", "user_id")
        .values_list("user_id", flat=True)[:count]
    )
    known = set(Event.objects.filter(user_id__in=always).values_list("user_id", flat=True))
    usernames = list(dict.fromkeys([*(u for u in always if u in known), *busiest]))
    for username in usernames:
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = False
        user.set_password(password)
        user.save()
    return usernames


def ensure_storefront_key(key_file: Path) -> str:
    """The demo storefront's publishable key: reused from `key_file` while it is valid, else a new
    one (stored hashed; the plaintext only in that file, readable by its owner)."""
    if key_file.exists():
        plaintext = key_file.read_text().strip()
        if ApiKey.objects.filter(key_hash=hash_key(plaintext), is_active=True).exists():
            return plaintext
    _, plaintext = create_api_key(DEMO_KEY_NAME, "publishable")
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(plaintext + "\n")
    os.chmod(key_file, 0o600)
    return plaintext
