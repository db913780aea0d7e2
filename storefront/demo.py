"""What the demo needs: the merchandiser, a few shoppers with history, a write key and a running
experiment."""

import os
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db.models import Count

from aisle.conf import aisle_settings
from merch.models import Experiment, Placement
from merch.services.experiments import VariantSpec, create_experiment, start_experiment
from recs.api_keys import ApiKey, create_api_key, hash_key
from recs.models import Event, ModelVersion

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


DEMO_EXPERIMENT_NAME = "Home page: personal vs trending"
DEMO_EXPERIMENT_PLACEMENT = "home"
DEMO_EXPERIMENT_HYPOTHESIS = (
    "Trending products on the home page get more shoppers to add to cart and buy than the "
    "placement's default (personal lists for shoppers it knows, popular ones otherwise), because "
    "first-time visitors respond to what is selling now. The {shadow} learner is scored in the "
    "shadow to see whether its lists would have caught what shoppers looked at and bought next."
)
# A learner the shadow scores when training has served one, else a strategy every shop has.
DEMO_SHADOW_LEARNERS = ("ease", "item_knn")
DEMO_SHADOW_FALLBACK = "popular"


def demo_experiment() -> Experiment | None:
    """The demo's experiment, whatever became of it since (a merchandiser may have stopped it)."""
    return (
        Experiment.objects.filter(
            name=DEMO_EXPERIMENT_NAME, placement__key=DEMO_EXPERIMENT_PLACEMENT
        )
        .order_by("pk")
        .first()
    )


def _demo_shadow_strategy() -> str:
    serving = set(
        ModelVersion.objects.filter(status=ModelVersion.Status.SERVING).values_list(
            "key", flat=True
        )
    )
    allowed = set(aisle_settings.EXPERIMENT_MODEL_KEYS)
    return next(
        (key for key in DEMO_SHADOW_LEARNERS if key in serving and key in allowed),
        DEMO_SHADOW_FALLBACK,
    )


def ensure_demo_experiment() -> tuple[Experiment | None, str]:
    """The running home-page experiment the demo ships, so that the experiment dashboard has
    something to show: kept when it exists, else created and started. Returns it (None when it
    cannot run: no home placement, or another experiment is live there) and what happened."""
    existing = demo_experiment()
    if existing is not None:
        return existing, f"kept ({existing.status})"
    placement = Placement.objects.filter(key=DEMO_EXPERIMENT_PLACEMENT).first()
    if placement is None:
        return None, f"skipped: no '{DEMO_EXPERIMENT_PLACEMENT}' placement"
    live = placement.experiments.filter(status__in=Experiment.LIVE_STATUSES).first()
    if live is not None:
        return None, f"skipped: '{live.name}' is already {live.status} on {placement}"
    control = placement.default_strategy
    challenger = "popular" if control == "trending" else "trending"
    shadow = _demo_shadow_strategy()
    if shadow in (control, challenger):
        shadow = next(s for s in ("popular", "auto") if s not in (control, challenger))
    experiment = create_experiment(
        DEMO_EXPERIMENT_NAME,
        placement,
        [
            VariantSpec("control", control, 0, is_control=True),
            VariantSpec(challenger, challenger, 50),
            VariantSpec(f"{shadow.replace('_', '-')}-shadow", shadow, 0, is_shadow=True),
        ],
        hypothesis=DEMO_EXPERIMENT_HYPOTHESIS.format(shadow=shadow),
        # A merchandiser's usual safety net: pause the challenger if it confidently costs revenue.
        guardrails=[("revenue_per_shopper", 10)],
    )
    start_experiment(experiment)
    return experiment, "created and started"
