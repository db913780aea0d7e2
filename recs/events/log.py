"""Writes to the event log and its session links: rows appended in as few statements as the
database allows, deduped by their unique key. The live event path and the importer both
append through here."""

import functools
import json
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import CharField, IntegerField
from django.utils import timezone

from recs.events.records import RECORD_FIELDS, EventRecord
from recs.features.enrich import session_links
from recs.models import Event, SessionLink

# Rows per statement: a JSON document of 1,000 rows on PostgreSQL, one prepared statement run
# 1,000 times elsewhere.
INSERT_CHUNK_SIZE = 1000
# A log row's columns apart from its id: the record's fields and where the row came from.
LOG_FIELDS = (*RECORD_FIELDS, "received_at", "ingest_batch_id")


def insert_events(records: Sequence[EventRecord], *, batch_id: str) -> int:
    """Append events to the log, skipping those whose event_id it has; returns how many were new.

    The ORM's bulk_create spent more time building SQL than the database spent writing, so
    the rows go in as INSERT ... ON CONFLICT DO NOTHING: on PostgreSQL one statement per chunk
    that reads its rows from one JSON document and answers with the ids it stored; elsewhere
    one prepared row statement run for every row (executemany). Records with the same event_id
    in one call: the first is kept."""
    if not records:
        return 0
    if connection.vendor == "postgresql":
        return _insert_postgresql(records, batch_id)
    rows = event_rows(records, batch_id)
    inserted = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), INSERT_CHUNK_SIZE):
            cursor.executemany(_insert_sql(), rows[start : start + INSERT_CHUNK_SIZE])
            inserted += max(cursor.rowcount, 0)
    return inserted


def _insert_postgresql(records: Sequence[EventRecord], batch_id: str) -> int:
    """The rows travel as one JSON text read by json_to_recordset: json.dumps encodes them in
    C, where psycopg's array dumpers and the fields' own adaptation took a third of a worker's
    CPU per event (profiled: docs/PERFORMANCE.md). One statement is atomic on its own, so a
    single chunk needs no BEGIN and COMMIT round trips."""
    received_at = timezone.now()
    inserted = 0
    single_statement = len(records) <= INSERT_CHUNK_SIZE
    with nullcontext() if single_statement else transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(records), INSERT_CHUNK_SIZE):
            # A record's attributes are exactly its fields (a plain dataclass), named as the
            # recordset's columns.
            document = json.dumps(
                [vars(record) for record in records[start : start + INSERT_CHUNK_SIZE]],
                default=_json_value,
                separators=(",", ":"),
            )
            cursor.execute(_insert_sql(), [received_at, batch_id, document])
            inserted += len(cursor.fetchall())
    return inserted


def _json_value(value: Any) -> str:
    """A record's datetime and Decimal in the text PostgreSQL reads for the column; a naive
    datetime is taken in the default time zone, as the ORM would."""
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            value = timezone.make_aware(value, timezone.get_default_timezone())
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@functools.cache
def _insert_sql() -> str:
    quote = connection.ops.quote_name
    fields = [Event._meta.get_field(name) for name in LOG_FIELDS]
    table = quote(Event._meta.db_table)
    columns = ", ".join(quote(field.column) for field in fields)
    unique = quote(Event._meta.get_field("event_id").column)
    if connection.vendor != "postgresql":
        values = ", ".join(["%s"] * len(fields))
        return (
            f"INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({unique}) DO NOTHING"
        )
    record_fields = [Event._meta.get_field(name) for name in RECORD_FIELDS]
    selected = ", ".join(f"r.{quote(field.name)}" for field in record_fields)
    recordset = ", ".join(
        f"{quote(field.name)} {field.db_type(connection)}" for field in record_fields
    )
    return (
        f"INSERT INTO {table} ({columns}) SELECT {selected}, %s, %s "
        f"FROM json_to_recordset(%s::json) AS r({recordset}) "
        f"ON CONFLICT ({unique}) DO NOTHING RETURNING {unique}"
    )


def event_rows(records: Sequence[EventRecord], batch_id: str) -> list[tuple]:
    """The log rows' parameters for a row statement, adapted for the database as the ORM
    would (dates, decimals, JSON); text and integer columns pass through as they are."""
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


def insert_session_links(links: dict[str, str]) -> dict[str, str]:
    """Link sessions to users (session -> user), keeping a session's first link. Returns links
    of these sessions as stored: on PostgreSQL those this call stored, from one statement
    that answers with them (no transaction, no ORM: a batch's logins are hundreds of rows),
    so a session another worker linked first is missing; elsewhere, after bulk_create, all of
    them read back."""
    if not links:
        return {}
    linked_at = timezone.now()
    if connection.vendor != "postgresql":
        SessionLink.objects.bulk_create(
            [SessionLink(session_id=s, user_id=u, linked_at=linked_at) for s, u in links.items()],
            ignore_conflicts=True,
        )
        return session_links(links)
    with connection.cursor() as cursor:
        cursor.execute(_link_sql(), [linked_at, json.dumps([[s, u] for s, u in links.items()])])
        return dict(cursor.fetchall())


@functools.cache
def _link_sql() -> str:
    quote = connection.ops.quote_name
    meta = SessionLink._meta
    session, user, linked_at = (
        quote(meta.get_field(name).column) for name in ("session_id", "user_id", "linked_at")
    )
    return (
        f"INSERT INTO {quote(meta.db_table)} ({session}, {user}, {linked_at}) "
        "SELECT pair->>0, pair->>1, %s FROM json_array_elements(%s::json) AS pair "
        f"ON CONFLICT ({session}) DO NOTHING RETURNING {session}, {user}"
    )
