"""History files as raw rows: the formats (CSV, JSON Lines, optionally .gz), and which column
(or JSON key) is which field, by name, by alias or by the command's --map."""

import csv
import gzip
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from recs.events.importing.rows import FIELDS, REQUIRED_FIELDS, encodable

FORMATS = ("csv", "jsonl")
# Column names understood without --map: the event log's own names and those of the events
# CSV that `generate_events` writes and `evaluate` reads (recs/evaluation/events_csv/events.py).
FIELD_ALIASES = {
    "event_type": "type", "occurred_at": "ts", "timestamp": "ts", "product_sku": "product_id",
    "sku": "product_id", "item_id": "product_id",
}  # fmt: skip


class ImportFileError(Exception):
    """The file cannot be imported at all (missing, unreadable, no usable header, bad mapping)."""


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
    with open_text(path) as handle:
        head = handle.read(4096).lstrip()
    if head.startswith("["):
        raise ImportFileError("the file is one JSON array; write one object per line (JSON Lines)")
    return "jsonl" if head.startswith("{") else "csv"


def open_text(path: Path) -> IO[str]:
    """The file as text, unpacked when .gz, without a byte order mark."""
    # Undecodable bytes are kept as surrogates and rejected per row (see rows.py), so that one bad
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


def check_mapping(mapping: Mapping[str, str]) -> None:
    """--map names known fields, each at most once; raises ImportFileError otherwise."""
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
        if not all(encodable(column) for column in header):
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


def rows_of(
    handle: IO[str], file_format: str, mapping: Mapping[str, str]
) -> _CsvRows | _JsonLinesRows:
    """The file's rows by field; a CSV header is read and checked here (ImportFileError)."""
    return (_CsvRows if file_format == "csv" else _JsonLinesRows)(handle, mapping)
