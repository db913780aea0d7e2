"""Helpers that more than one of the merch.admin modules needs; private to the package."""

from django.db.models import QuerySet


def selected_ids(queryset: QuerySet) -> list[int]:
    """The primary keys of an action's selection: services take ids, not querysets."""
    return list(queryset.values_list("pk", flat=True))
