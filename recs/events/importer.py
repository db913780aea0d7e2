"""Bulk import of historic events from CSV or JSON Lines into the event log, resumably.

Each row is validated with the live events API's rules (recs/api/events.py), except two that do
not fit history: there is no maximum age, and `ts` is required (an import has no "now" to
default to). A bad row is rejected with its line number and a reason; the valid rows around it
are stored. Rows go straight to the log in chunks (no Celery: this is an offline bulk path),
deduped by event_id; a row without an event_id gets one derived from its content, so that
importing the same file again, or an export that overlaps it, stores each event once.

After each committed chunk an ImportCheckpoint records how many rows of the file are done, in
the same transaction as the chunk's events, so an import stopped by Ctrl-C or a crash resumes
after the last committed chunk. The online feature store is not updated here: the caller
rebuilds it from the log once at the end (recs.features.rebuild.rebuild_online_store).
"""

import csv
import gzip
import hashlib
import io
import json
import re
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models.constants import OnConflict
from django.utils import timezone

from merch.selectors import existing_skus
from recs.batches import batched
from recs.erasure import without_erased_shoppers
from recs.events.records import EventRecord
from recs.models import Event, EventType, ImportCheckpoint, SessionLink

CHECKPOINT_KIND = "events"
DEFAULT_CHUNK_ROWS = 20_000
MAX_REPORTED_REJECTIONS = 20
DERIVED_ID_PREFIX = "imp-"
FORMATS = ("csv", "jsonl")
IN_QUERY_BATCH = 900  # values per `IN (...)` query: below SQLite's 999 variables

# The fields a row can carry (the live API's names; country, device and the rest of the API's
# context keys are flat here), with the API's limits.
TEXT_LIMITS = {
    "event_id": 64, "user_id": 64, "session_id": 64, "product_id": 32, "order_id": 64,
    "country": 64, "device": 32, "referrer": 500, "placement": 64, "rec_id": 64, "query": 200,
}  # fmt: skip
INTEGER_LIMITS = {"quantity": (1, 10000), "dwell_ms": (0, None), "position": (1, 1000)}
FIELDS = ("type", "ts", "price", *TEXT_LIMITS, *INTEGER_LIMITS)
CONTEXT_KEYS = (
    "country",
    "device",
    "referrer",
    "placement",
    "rec_id",
    "dwell_ms",
    "position",
    "query",
)
# Column names understood without --map: the event log's own names and those of the events
# CSV that `generate_events` writes and `evaluate` reads (recs/evaluation/data.py).
FIELD_ALIASES = {
    "event_type": "type", "occurred_at": "ts", "timestamp": "ts", "product_sku": "product_id",
    "sku": "product_id", "item_id": "product_id",
}  # fmt: skip
REQUIRED_FIELDS = ("type", "ts")

EVENT_TYPES = frozenset(EventType.values)
PRODUCT_EVENT_TYPES = EVENT_TYPES - {EventType.SEARCH.value}
QUANTITY_DEFAULT_TYPES = frozenset({EventType.PURCHASE.value, EventType.ADD_TO_CART.value})
PRICE_MAX_DIGITS, PRICE_DECIMAL_PLACES = 10, 2
CENT = Decimal("0.01")
# Epoch values this large are milliseconds: as seconds they would be after the year 5000.
EPOCH_MS_FROM = 1e11
EPOCH = re.compile(r"^-?\d+(\.\d*)?$")
TRAILING_ZERO_DECIMALS = re.compile(r"\.0*\s*$")


class ImportFileError(Exception):
    """The file cannot be imported at all (missing, unreadable, no usable header, bad mapping)."""


@dataclass(frozen=True)
class Rejection:
    line: int
    event_id: str
    reason: str


@dataclass(frozen=True)
class ChunkDone:
    """Reported after each committed chunk (progress bars, and tests that interrupt an import)."""

    number: int
    rows: int
    stored: int
    duplicates: int
    rejected: int
    rows_done: int


@dataclass
class ImportResult:
    """What one run of an import did; `total_*` are over every run of the file (resumes)."""

    file_name: str
    file_sha256: str
    file_format: str
    already_complete: bool = False
    resumed_from_row: int = 0
    rows_read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_field: Counter = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)
    sessions_linked: int = 0
    erased: int = 0
    unknown_products_kept: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    total_rows: int = 0
    total_stored: int = 0
    total_skipped: int = 0
    seconds: float = 0.0

    @property
    def changed_log(self) -> bool:
        """Whether the online store needs a rebuild: this run, or an interrupted earlier run of
        the same file (which never got to its rebuild), wrote events or session links."""
        if self.already_complete:
            return False
        return bool(self.stored or self.sessions_linked or self.resumed_from_row)

    def reject(self, line: int, event_id: str, errors: Sequence[tuple[str, str]]) -> None:
        self.rejected += 1
        for name, _ in errors:
            self.rejected_by_field[name or "whole row"] += 1
        if len(self.rejections) < MAX_REPORTED_REJECTIONS:
            reason = "; ".join(
                f"{name}: {message}" if name else message for name, message in errors
            )
            self.rejections.append(Rejection(line, event_id, reason))


# --- Files -----------------------------------------------------------------------------------


def fingerprint(path: Path) -> tuple[str, int | None]:
    """The file's sha256, and its line count for a progress total (None when compressed),
    in one streaming pass."""
    digest = hashlib.sha256()
    newlines = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            newlines += block.count(b"\n")
    return digest.hexdigest(), None if path.suffix == ".gz" else newlines


def detect_format(path: Path) -> str:
    """From the name (.csv, .jsonl, .ndjson, optionally .gz), else from the first character."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffixes and suffixes[-1] == ".csv":
        return "csv"
    with _open_text(path) as handle:
        head = handle.read(4096).lstrip()
    if head.startswith("["):
        raise ImportFileError("the file is one JSON array; write one object per line (JSON Lines)")
    return "jsonl" if head.startswith("{") else "csv"


def _open_text(path: Path) -> IO[str]:
    # Undecodable bytes are kept as surrogates and rejected per row (see _text), so that one bad
    # byte costs its row, not the rest of the file.
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """`column=field` strings (the command's --map) as {column: field}."""
    mapping = {}
    for item in items:
        column, sep, name = item.partition("=")
        if not sep or not column.strip() or not name.strip():
            raise ImportFileError(f"--map {item!r}: write COLUMN=FIELD, e.g. item_id=product_id")
        mapping[column.strip()] = name.strip()
    return mapping


def _check_mapping(mapping: Mapping[str, str]) -> None:
    for column, name in mapping.items():
        if name not in FIELDS:
            raise ImportFileError(
                f"--map {column}={name}: unknown field {name!r}; fields: {', '.join(FIELDS)}"
            )
    claimed = Counter(mapping.values())
    twice = sorted(name for name, n in claimed.items() if n > 1)
    if twice:
        raise ImportFileError(f"--map gives more than one column for {', '.join(twice)}")


def _default_field(column: str) -> str | None:
    name = column.strip().lower()
    return name if name in FIELDS else FIELD_ALIASES.get(name)


def resolve_columns(columns: Sequence[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """{column: field} for a file's header: the explicit mapping first, then columns named like
    a field or one of its aliases. A field two unmapped columns could fill is an error (which
    one is meant is a guess), unless --map names one of them."""
    missing = [column for column in mapping if column not in columns]
    if missing:
        raise ImportFileError(
            f"--map names {', '.join(map(repr, missing))}, not in the file's columns: "
            f"{', '.join(columns)}"
        )
    resolved = dict(mapping)
    explicit = set(mapping.values())
    by_default: dict[str, list[str]] = {}
    for column in columns:
        name = _default_field(column)
        if column not in resolved and name and name not in explicit:
            by_default.setdefault(name, []).append(column)
    for name, candidates in by_default.items():
        if len(candidates) > 1:
            raise ImportFileError(
                f"columns {' and '.join(candidates)} could both be {name!r}; "
                f"choose one with --map {candidates[0]}={name}"
            )
        resolved[candidates[0]] = name
    return resolved


def _check_required(fields: Iterable[str], columns: Sequence[str]) -> None:
    present = set(fields)
    lacking = [name for name in REQUIRED_FIELDS if name not in present]
    if not {"user_id", "session_id"} & present:
        lacking.append("user_id or session_id")
    if lacking:
        raise ImportFileError(
            f"no column for {', '.join(lacking)} (columns: {', '.join(columns)}); "
            "map one with --map COLUMN=FIELD"
        )


# A row as read: (line number, {field: raw value}) or (line number, a reason it is unreadable).
RawRow = tuple[int, dict[str, Any] | None, str]


class _CsvRows:
    """Rows of a CSV file as {field: text}, with the file line each row starts on."""

    def __init__(self, handle: IO[str], mapping: Mapping[str, str]) -> None:
        self.reader = csv.reader(handle)
        header: list[str] = []
        try:
            while not header:
                header = next(self.reader)
        except StopIteration:
            raise ImportFileError("the file is empty (no header line)") from None
        except csv.Error as error:
            raise ImportFileError(f"the header line is not CSV: {error}") from None
        header = [column.strip() for column in header]
        if not all(_encodable(column) for column in header):
            raise ImportFileError("the header line is not UTF-8")
        self.columns = resolve_columns(header, mapping)
        _check_required(self.columns.values(), header)
        self.width = len(header)
        self.indexes = [(i, self.columns[c]) for i, c in enumerate(header) if c in self.columns]
        self.ignored = [column for column in header if column not in self.columns]

    def __iter__(self) -> Iterator[RawRow]:
        reader, width, indexes = self.reader, self.width, self.indexes
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield start, None, f"is not valid CSV: {error}"
                continue
            if not row:
                continue  # a blank line is not a row
            if len(row) != width:
                yield start, None, f"has {len(row)} fields; the header has {width}"
                continue
            yield start, {name: row[i] for i, name in indexes}, ""


class _JsonLinesRows:
    """Rows of a JSON Lines file as {field: value}; a nested "context" object is read as flat
    fields, as the live API's context is."""

    def __init__(self, handle: IO[str], mapping: Mapping[str, str]) -> None:
        self.handle = handle
        self.mapping = dict(mapping)
        self.explicit = set(mapping.values())
        self.fields: dict[str, str | None] = {"context": None}
        self.claimed_by: dict[str, str] = {}
        self.ignored: set[str] = set()

    def _field(self, key: str) -> str | None:
        """The field a key fills, decided once per key as for a CSV header."""
        if key not in self.fields:
            name = self.mapping.get(key)
            if name is None:
                name = _default_field(key)
                if name in self.explicit:
                    name = None
                elif name is not None:
                    other = self.claimed_by.setdefault(name, key)
                    if other != key:
                        raise ImportFileError(
                            f"keys {other} and {key} could both be {name!r}; "
                            f"choose one with --map {other}={name}"
                        )
            if name is None:
                self.ignored.add(key)
            self.fields[key] = name
        return self.fields[key]

    def __iter__(self) -> Iterator[RawRow]:
        for line_number, line in enumerate(self.handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as error:
                yield line_number, None, f"is not valid JSON: {error}"
                continue
            if not isinstance(item, dict):
                yield line_number, None, "is not a JSON object"
                continue
            values: dict[str, Any] = {}
            context = item.get("context")
            if context is not None and not isinstance(context, dict):
                yield line_number, None, "context: is not a JSON object"
                continue
            for source in (context or {}, item):
                for key, value in source.items():
                    name = self._field(key)
                    if name is not None:
                        values[name] = value
            yield line_number, values, ""


# --- Validation ------------------------------------------------------------------------------


class _Invalid(Exception):
    pass


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any, limit: int) -> str:
    """As DRF's CharField: strings and numbers, whitespace trimmed, no NUL, at most `limit`."""
    if type(value) is not str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid("Not a valid string.")
        value = str(value)
    text = value.strip()
    if len(text) > limit:
        raise _Invalid(f"Ensure this field has no more than {limit} characters.")
    if "\x00" in text:
        raise _Invalid("Null characters are not allowed.")
    if not _encodable(text):
        raise _Invalid("is not valid UTF-8.")
    return text


def _integer(value: Any, low: int | None, high: int | None) -> int:
    """As DRF's IntegerField: "3" and 3.0 are 3, 3.5 is not an integer."""
    if isinstance(value, bool):
        raise _Invalid("A valid integer is required.")
    try:
        number = int(TRAILING_ZERO_DECIMALS.sub("", str(value)))
    except ValueError:
        raise _Invalid("A valid integer is required.") from None
    if low is not None and number < low:
        raise _Invalid(f"Ensure this value is greater than or equal to {low}.")
    if high is not None and number > high:
        raise _Invalid(f"Ensure this value is less than or equal to {high}.")
    return number


def _price(value: Any) -> Decimal:
    """As the API's DecimalField(max_digits=10, decimal_places=2, min_value=0)."""
    if isinstance(value, bool):
        raise _Invalid("A valid number is required.")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise _Invalid("A valid number is required.") from None
    if not price.is_finite():
        raise _Invalid("A valid number is required.")
    _sign, digits, exponent = price.as_tuple()
    if exponent >= 0:
        total_digits, decimals = len(digits) + exponent, 0
    else:
        decimals = -exponent
        total_digits = max(len(digits), decimals)
    whole_digits = total_digits - decimals
    if total_digits > PRICE_MAX_DIGITS:
        raise _Invalid(f"Ensure that there are no more than {PRICE_MAX_DIGITS} digits in total.")
    if decimals > PRICE_DECIMAL_PLACES:
        raise _Invalid(f"Ensure that there are no more than {PRICE_DECIMAL_PLACES} decimal places.")
    if whole_digits > PRICE_MAX_DIGITS - PRICE_DECIMAL_PLACES:
        raise _Invalid(
            f"Ensure that there are no more than {PRICE_MAX_DIGITS - PRICE_DECIMAL_PLACES} "
            "digits before the decimal point."
        )
    if price < 0:
        raise _Invalid("Ensure this value is greater than or equal to 0.")
    return price.quantize(CENT)


def _timestamp(value: Any) -> datetime:
    """ISO 8601 (naive means UTC, as in the API) or epoch seconds; epoch values of 1e11 and
    more are milliseconds."""
    if isinstance(value, bool):
        raise _Invalid("Datetime has wrong format.")
    try:
        if isinstance(value, int | float) or EPOCH.match(str(value).strip()):
            seconds = float(value)
            if abs(seconds) >= EPOCH_MS_FROM:
                seconds /= 1000
            return datetime.fromtimestamp(seconds, tz=UTC)
        moment = datetime.fromisoformat(str(value).strip())
    except (ValueError, OverflowError, OSError):
        raise _Invalid(
            "Datetime has wrong format. Use ISO 8601 (e.g. 2025-01-31T14:05:00Z) or epoch seconds."
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _choice(value: Any) -> str:
    text = _text(value, 1000)
    if text not in EVENT_TYPES:
        raise _Invalid(f'"{text}" is not a valid choice.')
    return text


def _bounded_integer(low: int | None, high: int | None) -> Callable[[Any], int]:
    return lambda value: _integer(value, low, high)


def _bounded_text(limit: int) -> Callable[[Any], str]:
    return lambda value: _text(value, limit)


# The parser of each field's raw value: a clean value, or _Invalid with the reason.
PARSERS: dict[str, Callable[[Any], Any]] = {
    "type": _choice,
    "ts": _timestamp,
    "price": _price,
    **{name: _bounded_text(limit) for name, limit in TEXT_LIMITS.items()},
    **{name: _bounded_integer(*limits) for name, limits in INTEGER_LIMITS.items()},
}


def validate_row(values: Mapping[str, Any], *, latest: datetime) -> EventRecord:
    """One row as an EventRecord, or _Invalid with [(field, message)] in args[0].

    The live API's rules (EventInSerializer) without its maximum age; `ts` is required and may
    not be after `latest` (now plus EVENT_MAX_FUTURE_SKEW_S). A blank value is a missing one."""
    errors: list[tuple[str, str]] = []
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or value == "" or (isinstance(value, str) and value.isspace()):
            continue
        try:
            clean[name] = PARSERS[name](value)
        except _Invalid as error:
            errors.append((name, str(error)))
    if "ts" in clean and clean["ts"] > latest:
        errors.append(("ts", f"is more than {settings.EVENT_MAX_FUTURE_SKEW_S} s in the future"))
    failed = {name for name, _ in errors}
    for name in REQUIRED_FIELDS:
        if name not in clean and name not in failed:
            errors.append((name, "This field is required."))
    if errors:
        raise _Invalid(errors)
    get = clean.get
    event_type = clean["type"]
    if not get("user_id") and not get("session_id"):
        raise _Invalid([("", "needs a user_id or a session_id")])
    if event_type in PRODUCT_EVENT_TYPES and not get("product_id"):
        raise _Invalid([("", f"a {event_type} event needs a product_id")])
    if event_type == EventType.PURCHASE and get("price") is None:
        raise _Invalid([("", "a purchase event needs a price")])
    quantity = get("quantity")
    if quantity is None and event_type in QUANTITY_DEFAULT_TYPES:
        quantity = 1
    # As the API's to_record: country and device are in the context too.
    context = {name: clean[name] for name in CONTEXT_KEYS if name in clean}
    fields = {
        "event_type": event_type, "occurred_at": clean["ts"], "user_id": get("user_id", ""),
        "session_id": get("session_id", ""), "product_sku": get("product_id", ""),
        "quantity": quantity, "price": get("price"), "order_id": get("order_id", ""),
        "country": get("country", ""), "device": get("device", ""), "context": context,
    }  # fmt: skip
    event_id = get("event_id") or derived_event_id(**fields)
    return EventRecord(event_id=event_id, **fields)


def derived_event_id(
    *,
    event_type: str,
    occurred_at: datetime,
    user_id: str,
    session_id: str,
    product_sku: str,
    quantity: int | None,
    price: Decimal | None,
    order_id: str,
    country: str,
    device: str,
    context: Mapping[str, Any],
) -> str:
    """A stable id from an event's content after validation, so that the same event read from
    another export (other column order, "3.5" for "3.50", epoch for ISO time) gets the same id.
    Two rows alike in every field are one event."""
    parts = (
        event_type, user_id, session_id, product_sku,
        "" if quantity is None else str(quantity), "" if price is None else f"{price:.2f}",
        order_id, occurred_at.astimezone(UTC).isoformat(), country, device,
        json.dumps(context, sort_keys=True, default=str) if context else "",
    )  # fmt: skip
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
    return DERIVED_ID_PREFIX + digest


# --- Writing ---------------------------------------------------------------------------------


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


class _KnownProducts:
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


def _skip(rows: Iterator[RawRow], count: int) -> None:
    for _ in range(count):
        if next(rows, None) is None:
            return


def _checkpoint(sha: str, name: str, force: bool, result: ImportResult) -> ImportCheckpoint | None:
    """The file's checkpoint, reset by force; None when the file was imported completely."""
    checkpoint, _ = ImportCheckpoint.objects.get_or_create(
        kind=CHECKPOINT_KIND, file_sha256=sha, defaults={"file_name": name[:500]}
    )
    if checkpoint.completed_at and not force:
        result.already_complete = True
        result.total_rows = checkpoint.rows_done
        result.total_stored = checkpoint.stored
        result.total_skipped = checkpoint.skipped
        return None
    if force:
        checkpoint.rows_done = checkpoint.stored = checkpoint.skipped = 0
        checkpoint.completed_at = None
    checkpoint.file_name = name[:500]
    checkpoint.save()
    return checkpoint


def import_events(
    path: Path,
    *,
    file_format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    chunk_size: int = DEFAULT_CHUNK_ROWS,
    allow_unknown_products: bool = False,
    force: bool = False,
    on_start: Callable[[int | None, int], None] | None = None,
    on_chunk: Callable[[ChunkDone], None] | None = None,
) -> ImportResult:
    """Import an events file into the log; resumes an interrupted import of the same file (by
    content hash) and does nothing for one imported completely, unless forced.

    on_start(estimated rows or None, rows already done) is called once reading begins;
    on_chunk after each committed chunk. Raises ImportFileError when the file cannot be read.
    """
    began = time.perf_counter()
    mapping = dict(mapping or {})
    _check_mapping(mapping)
    if chunk_size < 1:
        raise ImportFileError("the chunk size must be at least 1")
    if not path.is_file():
        raise ImportFileError(f"no such file: {path}")
    if file_format is not None and file_format not in FORMATS:
        raise ImportFileError(f"unknown format {file_format!r}; use one of {', '.join(FORMATS)}")
    try:
        file_format = file_format or detect_format(path)
        sha, lines = fingerprint(path)
    except (OSError, EOFError, zlib.error) as error:
        raise ImportFileError(f"cannot read {path}: {error}") from error
    result = ImportResult(file_name=path.name, file_sha256=sha, file_format=file_format)
    estimate = lines if file_format == "jsonl" or lines is None else max(lines - 1, 0)
    try:
        with _open_text(path) as handle:
            # The header is checked before any checkpoint exists: a file that cannot be read
            # leaves nothing behind.
            source = (_CsvRows if file_format == "csv" else _JsonLinesRows)(handle, mapping)
            checkpoint = _checkpoint(sha, str(path), force, result)
            if checkpoint is None:
                result.seconds = time.perf_counter() - began
                return result
            result.resumed_from_row = checkpoint.rows_done
            rows = iter(source)
            _skip(rows, checkpoint.rows_done)
            if on_start:
                on_start(estimate, checkpoint.rows_done)
            run = uuid.uuid4().hex[:8]
            products = _KnownProducts()
            for number, chunk in enumerate(batched(rows, chunk_size), start=1):
                done = _import_chunk(
                    chunk, checkpoint, result, products,
                    batch_id=f"import:{sha[:12]}:{run}:{number}",
                    allow_unknown_products=allow_unknown_products,
                    number=number,
                )  # fmt: skip
                if on_chunk:
                    on_chunk(done)
    except (OSError, EOFError, zlib.error) as error:
        # A file that stops being readable part way: what is committed stays, a re-run resumes.
        raise ImportFileError(f"cannot read {path}: {error}") from error
    result.ignored_columns = sorted(source.ignored)
    checkpoint.completed_at = timezone.now()
    checkpoint.save(update_fields=["completed_at", "updated_at"])
    result.total_rows = checkpoint.rows_done
    result.total_stored = checkpoint.stored
    result.total_skipped = checkpoint.skipped
    result.seconds = time.perf_counter() - began
    return result


def _import_chunk(
    chunk: list[RawRow],
    checkpoint: ImportCheckpoint,
    result: ImportResult,
    products: _KnownProducts,
    *,
    batch_id: str,
    allow_unknown_products: bool,
    number: int,
) -> ChunkDone:
    """Validate one chunk and commit its events, links and checkpoint together."""
    latest = timezone.now() + timedelta(seconds=settings.EVENT_MAX_FUTURE_SKEW_S)
    rejects: list[tuple[int, str, list[tuple[str, str]]]] = []
    valid: list[tuple[int, EventRecord]] = []
    for line, values, problem in chunk:
        if values is None:
            rejects.append((line, "", [("", problem)]))
            continue
        try:
            valid.append((line, validate_row(values, latest=latest)))
        except _Invalid as error:
            rejects.append((line, str(values.get("event_id") or "").strip()[:64], error.args[0]))
    unknown = products.unknown_of({r.product_sku for _, r in valid if r.product_sku})
    if unknown and not allow_unknown_products:
        kept = []
        for line, record in valid:
            if record.product_sku in unknown:
                reason = f"unknown product {record.product_sku!r}"
                rejects.append((line, record.event_id, [("product_id", reason)]))
            else:
                kept.append((line, record))
        valid = kept
    elif unknown:
        result.unknown_products_kept += sum(r.product_sku in unknown for _, r in valid)
    for line, event_id, errors in sorted(rejects, key=lambda reject: reject[0]):
        result.reject(line, event_id, errors)
    # Of rows repeating an event_id the first wins, as in the log.
    unique: dict[str, EventRecord] = {}
    for _, record in valid:
        unique.setdefault(record.event_id, record)
    # Events of a shopper who was erased since they happened must not come back with an old
    # export (recs.erasure): they are left out and counted apart.
    records = without_erased_shoppers(list(unique.values()))
    if len(records) < len(unique):
        result.erased += len(unique) - len(records)
        kept = {record.event_id for record in records}
        valid = [(line, record) for line, record in valid if record.event_id in kept]
    with transaction.atomic():
        stored = insert_events(records, batch_id=batch_id)
        linked = link_sessions(records)
        checkpoint.rows_done += len(chunk)
        checkpoint.stored += stored
        checkpoint.skipped += len(chunk) - stored
        checkpoint.save(update_fields=["rows_done", "stored", "skipped", "updated_at"])
    duplicates = len(valid) - stored
    result.rows_read += len(chunk)
    result.stored += stored
    result.duplicates += duplicates
    result.sessions_linked += linked
    return ChunkDone(
        number=number, rows=len(chunk), stored=stored, duplicates=duplicates,
        rejected=len(rejects), rows_done=checkpoint.rows_done,
    )  # fmt: skip
