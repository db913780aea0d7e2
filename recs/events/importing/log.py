"""What an import asks of the database: the catalog's SKUs, and the events and session links
it appends to the log, deduped by event_id, in the caller's transaction."""

from collections.abc import Sequence

from django.db import connection
from django.db.models.constants import OnConflict
from django.utils import timezone

from merch.selectors.catalog import existing_skus
from recs.batches import batched
from recs.events.records import EventRecord
from recs.models import Event, SessionLink

IN_QUERY_BATCH = 900  # values per `IN (...)` query: below SQLite's 999 variables


EVENT_COLUMNS = (
    "event_id", "event_type", "user_id", "session_id", "product_sku", "quantity", "price",
    "order_id", "country", "device", "context", "occurred_at", "received_at", "ingest_batch_id",
)  # fmt: skip


def insert_events(records: Sequence[EventRecord], *, batch_id: str) -> int:
    """Append events to the log, skipping those whose event_id it has; returns how many were new.

    The same INSERT ... ON CONFLICT DO NOTHING as persist_events' bulk_create(ignore_conflicts),
    but prepared once for the chunk (executemany): bulk_create compiles SQL for every row, which
    was most of an import's time. Values are adapted by the model fields, as the ORM does.
    """
    if not records:
        return 0
    meta = Event._meta
    fields = [meta.get_field(name) for name in EVENT_COLUMNS]
    ops = connection.ops
    sql = (
        f"{ops.insert_statement(on_conflict=OnConflict.IGNORE)} {ops.quote_name(meta.db_table)} "
        f"({', '.join(ops.quote_name(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"{ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None)}"
    )
    price, context, occurred_at = (meta.get_field(n) for n in ("price", "context", "occurred_at"))
    received_at = meta.get_field("received_at").get_db_prep_save(timezone.now(), connection)
    no_context = context.get_db_prep_save({}, connection)
    rows = [
        (
            r.event_id, r.event_type, r.user_id, r.session_id, r.product_sku, r.quantity,
            None if r.price is None else price.get_db_prep_save(r.price, connection),
            r.order_id, r.country, r.device,
            context.get_db_prep_save(r.context, connection) if r.context else no_context,
            occurred_at.get_db_prep_save(r.occurred_at, connection), received_at, batch_id,
        )
        for r in records
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
        return cursor.rowcount


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
