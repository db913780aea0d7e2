"""What an import asks of the database: the catalog's SKUs, and the session links it appends
(the events themselves go in through recs.events.log, as the live path's do)."""

from collections.abc import Sequence

from merch.selectors.catalog import existing_skus
from recs.batches import batched
from recs.events.records import EventRecord
from recs.models import SessionLink

IN_QUERY_BATCH = 900  # values per `IN (...)` query: below SQLite's 999 variables


class KnownProducts:
    """Which SKUs are in the catalog, asked once per SKU for the whole file."""

    def __init__(self) -> None:
        self.known: set[str] = set()
        self.unknown: set[str] = set()

    def unknown_of(self, skus: set[str]) -> set[str]:
        for batch in batched(skus - self.known - self.unknown, IN_QUERY_BATCH):
            found = existing_skus(batch)
            self.known |= found
            self.unknown.update(sku for sku in batch if sku not in found)
        return skus & self.unknown


def link_sessions(records: Sequence[EventRecord]) -> int:
    """SessionLink rows for the (session, user) pairs in these events, as the live path records
    logins (the first link of a session wins), without its online replay: the rebuild after an
    import covers the online store. Returns how many sessions were linked now."""
    first: dict[str, EventRecord] = {}
    for record in records:
        if record.session_id and record.user_id and record.session_id not in first:
            first[record.session_id] = record
    if not first:
        return 0
    known: set[str] = set()
    for batch in batched(first, IN_QUERY_BATCH):
        known.update(
            SessionLink.objects.filter(session_id__in=batch).values_list("session_id", flat=True)
        )
    new = [
        SessionLink(session_id=s, user_id=r.user_id, linked_at=r.occurred_at)
        for s, r in first.items()
        if s not in known
    ]
    SessionLink.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    return len(new)
