"""Writes to the event log: rows appended in as few statements as the database allows,
deduped by event_id. The live event path and the importer both append through here."""

import functools
from collections.abc import Sequence
from contextlib import nullcontext

from django.db import connection, transaction
from django.db.models import CharField, IntegerField
from django.utils import timezone

from recs.events.records import RECORD_FIELDS, EventRecord
from recs.models import Event

# Rows per statement: 14 arrays of 1,000 values on PostgreSQL, one prepared statement run
# 1,000 times elsewhere.
INSERT_CHUNK_SIZE = 1000
# A log row's columns apart from its id: the record's fields and where the row came from.
LOG_FIELDS = (*RECORD_FIELDS, "received_at", "ingest_batch_id")


def insert_events(records: Sequence[EventRecord], *, batch_id: str) -> int:
    """Append events to the log, skipping those whose event_id it has; returns how many were new.

    The ORM's bulk_create spent more time building SQL than the database spent writing, so
    the rows go in as INSERT ... ON CONFLICT DO NOTHING: on PostgreSQL one statement of column
    arrays (unnest) per chunk, which answers with the ids it stored; elsewhere one prepared row
    statement run for every row (executemany). Records with the same event_id in one call: the
    first is kept."""
    if not records:
        return 0
    rows = event_rows(records, batch_id)
    inserted = 0
    # One PostgreSQL statement is atomic on its own: a transaction around it would cost a
    # BEGIN and a COMMIT round trip. Row-by-row statements need one, to be one write.
    single_statement = connection.vendor == "postgresql" and len(rows) <= INSERT_CHUNK_SIZE
    with nullcontext() if single_statement else transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), INSERT_CHUNK_SIZE):
            chunk = rows[start : start + INSERT_CHUNK_SIZE]
            if connection.vendor == "postgresql":
                cursor.execute(_insert_sql(), [list(column) for column in zip(*chunk, strict=True)])
                inserted += len(cursor.fetchall())
            else:
                cursor.executemany(_insert_sql(), chunk)
                inserted += max(cursor.rowcount, 0)
    return inserted


@functools.cache
def _insert_sql() -> str:
    fields = [Event._meta.get_field(name) for name in LOG_FIELDS]
    table = connection.ops.quote_name(Event._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    unique = connection.ops.quote_name(Event._meta.get_field("event_id").column)
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in fields)
        values = f"SELECT * FROM unnest({arrays})"
        returning = f" RETURNING {unique}"
    else:
        values = f"VALUES ({', '.join(['%s'] * len(fields))})"
        returning = ""
    return f"INSERT INTO {table} ({columns}) {values} ON CONFLICT ({unique}) DO NOTHING{returning}"


def event_rows(records: Sequence[EventRecord], batch_id: str) -> list[tuple]:
    """The log rows' parameters, adapted for the database as the ORM would (dates, decimals,
    JSON); text and integer columns pass through as they are."""
    fields = [Event._meta.get_field(name) for name in RECORD_FIELDS]
    adapt = [
        None if isinstance(field, CharField | IntegerField) else functools.partial(
            field.get_db_prep_save, connection=connection)
        for field in fields
    ]  # fmt: skip
    received_at = Event._meta.get_field("received_at").get_db_prep_save(
        timezone.now(), connection=connection
    )
    rows = []
    for record in records:
        values = [getattr(record, field.attname) for field in fields]
        rows.append(
            (
                *(v if a is None else a(v) for v, a in zip(values, adapt, strict=True)),
                received_at,
                batch_id,
            )
        )
    return rows
