"""Reads of the event log."""

from django.db.models import Q

from aisle.sql import in_values
from recs.batches import batched
from recs.events.records import RECORD_FIELDS, EventRecord
from recs.models import Event


def event_records(condition: Q | None = None) -> list[EventRecord]:
    """Events matching a condition as plain records, oldest first."""
    queryset = Event.objects.all() if condition is None else Event.objects.filter(condition)
    return [
        EventRecord(**dict(zip(RECORD_FIELDS, values, strict=True)))
        for values in queryset.order_by("occurred_at", "id").values_list(*RECORD_FIELDS)
    ]


def stored_event_ids(event_ids: list[str]) -> set[str]:
    """Which of these event ids are already in the log (one indexed query per 1,000)."""
    stored: set[str] = set()
    for batch in batched(event_ids, 1000):
        rows = Event.objects.filter(event_id__in=in_values(batch))
        stored.update(rows.values_list("event_id", flat=True))
    return stored
