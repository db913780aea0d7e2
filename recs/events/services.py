"""Writes to the event log. Idempotent by event_id: applying the same event twice stores it once."""

from collections.abc import Iterable

from recs.events.records import EventRecord
from recs.models import Event


def persist_events(records: Iterable[EventRecord], *, batch_size: int = 2000) -> list[EventRecord]:
    """Append events to the log; returns those that were new (duplicates by event_id are skipped)."""
    records = list({record.event_id: record for record in records}.values())
    new_records: list[EventRecord] = []
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        known = set(
            Event.objects.filter(event_id__in=[r.event_id for r in chunk]).values_list(
                "event_id", flat=True
            )
        )
        fresh = [r for r in chunk if r.event_id not in known]
        Event.objects.bulk_create(
            [
                Event(
                    event_id=r.event_id,
                    event_type=r.event_type,
                    user_id=r.user_id,
                    session_id=r.session_id,
                    product_sku=r.product_sku,
                    quantity=r.quantity,
                    price=r.price,
                    order_id=r.order_id,
                    country=r.country,
                    device=r.device,
                    context=r.context,
                    occurred_at=r.occurred_at,
                )
                for r in fresh
            ],
            ignore_conflicts=True,
        )
        new_records.extend(fresh)
    return new_records
