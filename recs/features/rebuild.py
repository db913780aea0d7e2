"""Rebuild the online store from the event log, e.g. after Redis lost its data."""

from collections.abc import Callable

from django.db.models import Q

from recs import redis_keys
from recs.events.selectors import event_records
from recs.features.enrich import enrich
from recs.features.online import apply_events, mark_layout_current, redis_client
from recs.models import Event

ONLINE_KEY_PATTERNS = (redis_keys.FEATURE_PREFIX + "*", redis_keys.EVENT_MARKER_PREFIX + "*")


def clear_online_store() -> int:
    """Delete every feature value and applied-event marker; returns how many keys went."""
    client = redis_client()
    deleted = 0
    for pattern in ONLINE_KEY_PATTERNS:
        batch = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += client.unlink(*batch)
                batch = []
        if batch:
            deleted += client.unlink(*batch)
    return deleted


def rebuild_online_store(
    chunk_size: int = 5000, progress: Callable[[int], None] | None = None
) -> int:
    """Clear the online store and replay the whole event log into it; returns events replayed.

    Live workers may keep applying meanwhile: the per-event markers make each event count once.
    """
    clear_online_store()
    replayed = 0
    last_id = 0
    while True:
        ids = list(
            Event.objects.filter(id__gt=last_id)
            .order_by("id")
            .values_list("id", flat=True)[:chunk_size]
        )
        if not ids:
            mark_layout_current()
            return replayed
        records = event_records(Q(id__in=ids))
        apply_events(enrich(records))
        replayed += len(records)
        last_id = ids[-1]
        if progress:
            progress(len(records))
