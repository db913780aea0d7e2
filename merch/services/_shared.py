"""Helpers that more than one of the merch.services modules needs; private to the package."""

from django.db import models


def differs_from_stored(instance: models.Model) -> bool:
    """Whether saving would change the stored row (a new row always does); locks the row."""
    if instance._state.adding or instance.pk is None:
        return True
    model = type(instance)
    stored = model._default_manager.select_for_update().filter(pk=instance.pk).first()
    if stored is None:
        return True
    return any(
        getattr(stored, field.attname) != getattr(instance, field.attname)
        for field in model._meta.concrete_fields
        if not getattr(field, "auto_now", False) and not getattr(field, "auto_now_add", False)
    )
