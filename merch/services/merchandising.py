"""Writes to merchandising: placements and their rules (pins, boosts, buries, exclusions).

Each write announces itself on commit with merchandising_changed, and only if something changed.
"""

from collections.abc import Iterable
from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from merch.models import MerchandisingRule, Placement
from merch.services._shared import differs_from_stored
from merch.signals import merchandising_changed


def _announce_merchandising_change(sender: type[models.Model]) -> None:
    transaction.on_commit(lambda: merchandising_changed.send(sender=sender))


def _rule_ids(rule_ids: Iterable[int | str]) -> list[int]:
    try:
        return [int(rule_id) for rule_id in rule_ids]
    except (TypeError, ValueError) as error:
        raise ValidationError(f"Rule ids must be integers ({error}).") from error


Saved = TypeVar("Saved", Placement, MerchandisingRule)


def _save_and_announce(instance: Saved) -> Saved:
    instance.full_clean()
    if differs_from_stored(instance):
        instance.save()
        _announce_merchandising_change(type(instance))
    return instance


@transaction.atomic
def save_placement(placement: Placement) -> Placement:
    """Validate and save a placement; readers hear about it on commit if anything changed."""
    return _save_and_announce(placement)


@transaction.atomic
def save_merchandising_rule(rule: MerchandisingRule) -> MerchandisingRule:
    """Validate and save a rule; readers hear about it on commit if anything changed."""
    return _save_and_announce(rule)


@transaction.atomic
def delete_merchandising_rules(rule_ids: Iterable[int]) -> int:
    """Delete rules; returns how many were deleted."""
    deleted, _ = MerchandisingRule.objects.filter(pk__in=_rule_ids(rule_ids)).delete()
    if deleted:
        _announce_merchandising_change(MerchandisingRule)
    return deleted


@transaction.atomic
def set_rules_active(rule_ids: Iterable[int], *, is_active: bool) -> int:
    """Switch rules on or off without deleting them; returns how many changed."""
    if not isinstance(is_active, bool):
        raise ValidationError("is_active must be True or False.")
    changed = (
        MerchandisingRule.objects.filter(pk__in=_rule_ids(rule_ids))
        .exclude(is_active=is_active)
        .update(is_active=is_active, updated_at=timezone.now())
    )
    if changed:
        _announce_merchandising_change(MerchandisingRule)
    return changed
