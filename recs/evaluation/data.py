"""Interactions and a catalog for evaluation: any events CSV, or the shipped UCI data set.

An events CSV needs the columns user_id, item_id, event_type and timestamp; order_id,
session_id, category, price, country and quantity are optional, and any other column is
ignored. Files ending in .gz are read compressed.

timestamp: epoch seconds (integer or decimal), or ISO 8601 with a time zone
("2024-05-01T10:00:00Z", "2024-05-01 10:00:00+02:00", "2024-05-01 10:00:00 UTC"). A time
without a zone is an error: guessing one would shift every event. Numbers of 1e11 and more
would be after the year 5000 as seconds, so they are read as epoch milliseconds (as some
public logs store them).

event_type: any string. Names public logs use for the project's kinds are mapped to them,
compared case-blind with "-" and " " read as "_":

    view, views, pageview, page_view, detail, product_view, productview  -> view
    click, clicks                                                        -> click
    cart, addtocart, add_to_cart, add-to-cart, add                       -> add_to_cart
    purchase, purchases, transaction, buy, order                         -> purchase
    remove_from_cart, remove-from-cart, removefromcart                   -> remove_from_cart

Other kinds (favourite, rating, ...) are kept as written; learners give kinds they have no
weight for 0 unless configured to.

session_id: when some events have one and others do not, the ones without get sessions by
inactivity gap (SESSION_GAP_S), so that a few gaps do not throw the real sessions away.

The catalog is `catalog_path` when given (item_id; optional title, category, price,
launched_at, description, brand), plus the items of the log it lacks. Otherwise it is the
distinct items of the log. An item's launched_at, when no catalog file gives it, is the time of
its first event, so that an evaluation can tell which items existed at a cut.

Files are read in chunks with pandas' C parser and every string column becomes integer codes
(no Python work per row), so 20M events load in about a minute. A bad value is reported with
its file line (the header is line 1).
"""

import csv
import gzip
import io
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from django.utils.text import slugify
from tqdm import tqdm

from recs.datasets.online_retail import DEFAULT_FILE, parse_online_retail
from recs.learners.base import CatalogItem, Interactions, sessions_by_gap

REQUIRED_COLUMNS = ("user_id", "item_id", "event_type", "timestamp")
OPTIONAL_COLUMNS = ("order_id", "session_id", "category", "price", "country", "quantity")
CATALOG_REQUIRED_COLUMNS = ("item_id",)
CATALOG_OPTIONAL_COLUMNS = ("title", "category", "price", "launched_at", "description", "brand")

EVENT_KIND_SYNONYMS = {
    **dict.fromkeys(
        ("view", "views", "pageview", "page_view", "detail", "product_view", "productview"),
        "view",
    ),
    **dict.fromkeys(("click", "clicks"), "click"),
    **dict.fromkeys(("cart", "addtocart", "add_to_cart", "add"), "add_to_cart"),
    **dict.fromkeys(("purchase", "purchases", "transaction", "buy", "order"), "purchase"),
    **dict.fromkeys(("remove_from_cart", "removefromcart"), "remove_from_cart"),
}

# Rows per chunk: big enough for the parser to be fast, small enough that one chunk's strings
# (the only per-row Python objects) stay a few hundred MB.
CHUNK_ROWS = 1 << 19
# Event codes are int8 in Interactions.
MAX_EVENT_KINDS = 127
# Epoch values this large are milliseconds: as seconds they would be after the year 5000.
EPOCH_MS_FROM = 1e11

_TIME_WITH_ZONE = re.compile(
    r"[Tt ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?|UTC|GMT)$"
)
_ZONE_NAME = re.compile(r"\s*(?:UTC|GMT)$")
_CATEGORY_SEPARATOR = re.compile(r"\s*[>/]\s*")


class _BadRecord(Exception):
    """A bad value in the `record`-th data row (0-based); turned into a message with the line."""

    def __init__(self, record: int, problem: str):
        super().__init__(problem)
        self.record, self.problem = record, problem


def event_kind(name: str) -> str:
    """The project's kind for an event_type as written in a log (see the module docstring)."""
    stripped = name.strip()
    key = stripped.lower().replace("-", "_").replace(" ", "_")
    return EVENT_KIND_SYNONYMS.get(key, stripped)


def category_path(category: str) -> str:
    """'Home > Kitchen' and 'Home/Kitchen' -> 'Home/Kitchen' (empty parts dropped)."""
    return "/".join(part for part in _CATEGORY_SEPARATOR.split(category.strip()) if part)


# --- reading ---------------------------------------------------------------------------------


@contextmanager
def _binary(path: Path) -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    """(what to parse, the raw file whose position tells the progress)."""
    with open(path, "rb") as raw:
        if path.suffix == ".gz":
            with gzip.open(raw) as unpacked:
                yield unpacked, raw
        else:
            yield raw, raw


def _not_csv(path: Path, error: Exception) -> ValueError:
    if isinstance(error, UnicodeDecodeError):
        return ValueError(
            f"{path} is not a CSV text file: byte {error.object[error.start]:#04x} at offset "
            f"{error.start} of a block is not UTF-8 text"
        )
    if isinstance(error, (gzip.BadGzipFile, EOFError, OSError)):
        return ValueError(f"{path} is not a readable gzip file: {error}")
    return ValueError(f"{path} is not a well-formed CSV file: {error}")


_READ_ERRORS = (UnicodeDecodeError, pd.errors.ParserError, gzip.BadGzipFile, EOFError)


def _header(path: Path, required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, str]:
    """{our column name: the file's column name} for the columns we read; checks required ones."""
    try:
        with _binary(path) as (handle, _):
            names = list(pd.read_csv(handle, nrows=0, engine="c", encoding="utf-8").columns)
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{path} is empty: expected a header line with {', '.join(required)}"
        ) from None
    except _READ_ERRORS as error:
        raise _not_csv(path, error) from None
    found: dict[str, str] = {}
    for name in names:
        canonical = str(name).strip().lower().lstrip("\ufeff")
        if canonical in required + optional and canonical not in found:
            found[canonical] = name
    missing = [c for c in required if c not in found]
    if missing:
        raise ValueError(
            f"{path} lacks the column(s) {', '.join(missing)}; needed: {', '.join(required)} "
            f"(optional: {', '.join(optional)}); its header has: "
            f"{', '.join(str(n) for n in names[:20])}{', ...' if len(names) > 20 else ''}"
        )
    return found


def _chunks(
    path: Path, columns: dict[str, str], strings: tuple[str, ...], progress: bool
) -> Iterator[tuple[int, pd.DataFrame, int]]:
    """(index of the chunk's first data row, the chunk with our column names, an estimate of
    the file's rows from the bytes read so far), read with the C parser. Only empty fields are
    missing values: "NA" or "None" may well be an id."""
    dtype = {columns[name]: "str" for name in strings if name in columns}
    rename = {file_name: name for name, file_name in columns.items()}
    size, first = os.path.getsize(path), 0
    try:
        with (
            _binary(path) as (handle, raw),
            tqdm(
                total=size, unit="B", unit_scale=True, desc=f"Reading {path.name}",
                disable=not progress or None,
            ) as bar,
            pd.read_csv(
                handle, usecols=list(columns.values()), dtype=dtype, engine="c",
                encoding="utf-8", keep_default_na=False, na_values=[""], chunksize=CHUNK_ROWS,
            ) as reader,
        ):  # fmt: skip
            for chunk in reader:
                rows, read = first + len(chunk), max(raw.tell(), 1)
                yield first, chunk.rename(columns=rename), int(rows * max(size / read, 1.0)) + 1
                first = rows
                bar.update(read - bar.n)
    except _READ_ERRORS as error:
        raise _not_csv(path, error) from None


@contextmanager
def _text(path: Path) -> Iterator[IO[str]]:
    with _binary(path) as (handle, _):
        yield io.TextIOWrapper(handle, encoding="utf-8", errors="replace", newline="")


def _line_of(path: Path, record: int) -> int:
    """The file line (header = 1) where data row `record` starts, skipping blank lines as the
    parser does. Only run for an error, so the happy path never pays for it."""
    with _text(path) as handle:
        reader = csv.reader(handle)
        next(reader, None)
        start, index = reader.line_num + 1, -1
        for row in reader:
            if len(row) > 1 or (row and row[0].strip()):
                index += 1
                if index == record:
                    return start
            start = reader.line_num + 1
    return start


def _reported(path: Path, read: Callable[[], Any]) -> Any:
    try:
        return read()
    except _BadRecord as bad:
        raise ValueError(f"{path}, line {_line_of(path, bad.record)}: {bad.problem}") from None


# --- values ----------------------------------------------------------------------------------


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _epoch_seconds(values: pd.Series, first: int, column: str, *, required: bool) -> np.ndarray:
    """float64 epoch seconds of a chunk's column; NaN where empty (an error when required)."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        seconds = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        seconds = None if _starts_with_a_number(values) else _uniformly_zoned_seconds(values)
        if seconds is None:  # numbers, or times that need a closer look: value by value
            numbers = pd.to_numeric(values, errors="coerce")
            seconds = numbers.to_numpy(np.float64, na_value=np.nan, copy=True)
            dated = np.flatnonzero(np.isnan(seconds) & values.notna().to_numpy())
            if len(dated):
                seconds[dated] = _iso_seconds(values.iloc[dated], first + dated, column)
    if np.isinf(seconds).any():
        position = _first_bad(np.isinf(seconds))
        raise _BadRecord(
            first + position,
            f"{column} {_shown(values.iloc[position])} is neither epoch seconds nor ISO 8601 "
            "with a time zone",
        )
    seconds = np.where(np.abs(seconds) >= EPOCH_MS_FROM, seconds / 1000.0, seconds)
    if required and np.isnan(seconds).any():
        raise _BadRecord(first + _first_bad(np.isnan(seconds)), f"{column} is empty")
    return seconds


def _starts_with_a_number(values: pd.Series) -> bool:
    first = values.first_valid_index()
    try:
        return first is not None and bool(float(values[first]) == float(values[first]))
    except ValueError:
        return False


def _seconds_since_epoch(times: pd.Series) -> np.ndarray:
    """float64 epoch seconds of tz-aware times, NaN for NaT."""
    return (times - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(np.float64)


def _uniformly_zoned_seconds(values: pd.Series) -> np.ndarray | None:
    """The fast path for a chunk of ISO 8601 times that all carry the same zone (the usual
    case, e.g. all "Z", or all " UTC" as in some public logs): parsed in C. None when anything
    else is in the chunk (numbers, times without a zone, several offsets, typos)."""
    for time_format in ("ISO8601", "%Y-%m-%d %H:%M:%S %Z"):
        try:
            parsed = pd.to_datetime(values, format=time_format, errors="coerce")
        except (ValueError, TypeError):  # offsets or zones mixed
            return None
        if (
            isinstance(parsed.dtype, pd.DatetimeTZDtype)
            and not (parsed.isna().to_numpy() & values.notna().to_numpy()).any()
        ):
            return _seconds_since_epoch(parsed)
    return None


def _iso_seconds(values: pd.Series, records: np.ndarray, column: str) -> np.ndarray:
    """Epoch seconds of ISO 8601 strings that carry a time zone, checked value by value (about
    2 µs each); anything else is an error naming the first bad value's record."""
    zoned = values.str.contains(_TIME_WITH_ZONE, regex=True).to_numpy(dtype=bool)
    parsed = pd.to_datetime(
        values.str.replace(_ZONE_NAME, "+00:00", regex=True).where(zoned),
        format="ISO8601", utc=True, errors="coerce",
    )  # fmt: skip
    bad = parsed.isna().to_numpy()
    if bad.any():
        position = _first_bad(bad)
        value = values.iloc[position]
        naive = not zoned[position] and pd.notna(
            pd.to_datetime(pd.Series([value]), format="ISO8601", errors="coerce")[0]
        )
        problem = (
            f"{column} {value!r} has no time zone: add one (e.g. Z or +00:00) or use epoch seconds"
            if naive
            else f"{column} {value!r} is neither epoch seconds nor ISO 8601 with a time zone"
        )
        raise _BadRecord(int(records[position]), problem)
    return _seconds_since_epoch(parsed)


def _shown(value: Any) -> str:
    """A value as the file most likely wrote it, quoted: 1.5 -> '1.5', not np.float64(1.5)."""
    return repr(str(value.item() if isinstance(value, np.generic) else value))


def _numbers(values: pd.Series, first: int, column: str, *, whole: bool = False) -> np.ndarray:
    """float64 of a chunk's column, NaN where empty; text or (when whole) fractions are errors."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.zeros(len(numbers), dtype=bool)
    else:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        bad = np.isnan(numbers) & values.notna().to_numpy()
    if whole:
        bad |= ~np.isnan(numbers) & (numbers != np.round(numbers))
    if bad.any():
        position = _first_bad(bad)
        kind = "a whole number" if whole else "a number"
        raise _BadRecord(
            first + position, f"{column} {_shown(values.iloc[position])} is not {kind}"
        )
    return numbers


class _Growing:
    """An array filled a chunk at a time, in one allocation sized by the expected total and
    grown when that was short. A list of chunk-sized arrays would be freed into the heap after
    concatenation, and the allocator keeps such memory: 20M rows would cost a GiB more."""

    def __init__(self, dtype: type) -> None:
        self.array = np.empty(0, dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray, expected: int) -> None:
        end = self.size + len(values)
        if end > len(self.array):
            grown = np.empty(max(end, expected, len(self.array) * 5 // 4), self.array.dtype)
            grown[: self.size] = self.array[: self.size]
            self.array = grown
        self.array[self.size : end] = values
        self.size = end

    def result(self) -> np.ndarray:
        """The filled part: a view, or a copy when much of the space went unused."""
        array, self.array = self.array, np.empty(0, dtype=self.array.dtype)
        filled = array[: self.size]
        return filled.copy() if self.size < len(array) * 0.9 else filled


class _CodeColumn:
    """A string column read in chunks, coded as it is read: each chunk is factorized, and its
    distinct values are looked up in the vocabulary so far (new ones appended). Only one copy of
    each distinct string is kept, however many chunks it appears in."""

    def __init__(self, dtype: type = np.int32) -> None:
        self.codes = _Growing(dtype)
        self.vocabulary = pd.Index([], dtype=object)

    def add(self, values: pd.Series, expected: int) -> np.ndarray:
        """The chunk's codes, -1 for empty values."""
        local, distinct = pd.factorize(values)
        distinct = np.asarray(distinct, dtype=object)
        known = self.vocabulary.get_indexer(distinct)
        new = known < 0
        if new.any():
            known[new] = len(self.vocabulary) + np.arange(int(new.sum()))
            self.vocabulary = self.vocabulary.append(pd.Index(distinct[new], dtype=object))
        codes = np.append(known, -1).astype(np.int32)[local]
        self.codes.extend(codes, expected)
        return codes

    def finish(
        self, *, sort: bool, rename: Callable[[str], str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(codes, vocabulary), -1 for empty values. `rename` maps each distinct value (so that
        synonyms share a code); `sort` orders the vocabulary."""
        codes = self.codes.result()
        vocabulary = self.vocabulary.to_numpy(dtype=object)
        self.vocabulary = pd.Index([], dtype=object)
        if rename is not None:
            vocabulary = np.array([rename(str(v)) for v in vocabulary], dtype=object)
        if rename is not None or sort:
            merged, vocabulary = pd.factorize(vocabulary, sort=sort)
            codes = np.append(merged, -1).astype(codes.dtype)[codes]
        return codes, np.asarray(vocabulary, dtype=object)


class _IdColumn:
    """An id column whose values only need to be told apart (orders, sessions): each chunk's
    distinct values are kept as 64-bit hashes, not strings, so millions of distinct ids cost
    8 bytes each (a collision among 10M ids has a chance of about 3 in a million)."""

    def __init__(self) -> None:
        self.codes = _Growing(np.int32)
        self.hashes = _Growing(np.uint64)
        self.chunks: list[tuple[int, int]] = []  # (rows, distinct values) of each chunk

    def add(self, values: pd.Series, expected: int) -> np.ndarray:
        local, distinct = pd.factorize(values)
        local = local.astype(np.int32)
        self.codes.extend(local, expected)
        self.hashes.extend(pd.util.hash_array(np.asarray(distinct, dtype=object)), 0)
        self.chunks.append((len(local), len(distinct)))
        return local

    def finish(self) -> tuple[np.ndarray, int]:
        """(int32 codes in order of first appearance, -1 for empty values; how many ids)."""
        merged, distinct = pd.factorize(self.hashes.result())
        codes = self.codes.result()
        row = start = 0
        for rows, count in self.chunks:
            remap = np.append(merged[start : start + count], -1).astype(np.int32)
            codes[row : row + rows] = remap[codes[row : row + rows]]
            row, start = row + rows, start + count
        return codes, len(distinct)


# --- events ----------------------------------------------------------------------------------


@dataclass
class _EventColumns:
    """What the events file holds, in file order: the Interactions columns and, for a catalog
    built from the log, each event's category code and price."""

    user_codes: np.ndarray
    item_codes: np.ndarray
    event_codes: np.ndarray
    timestamps: np.ndarray
    users: np.ndarray
    items: np.ndarray
    event_vocabulary: np.ndarray
    quantities: np.ndarray | None = None
    order_codes: np.ndarray | None = None
    session_codes: np.ndarray | None = None
    country_codes: np.ndarray | None = None
    countries: np.ndarray | None = None
    category_codes: np.ndarray | None = None
    categories: np.ndarray | None = None
    prices: np.ndarray | None = None

    def sort_by_time(self) -> None:
        """Stable sort of every per-event column by time, one column at a time (so memory
        grows by one column, not by all of them)."""
        times = self.timestamps
        if not len(times) or not np.any(times[1:] < times[:-1]):
            return
        order = np.argsort(times, kind="stable")
        for name in (
            "user_codes", "item_codes", "event_codes", "timestamps", "quantities", "order_codes",
            "session_codes", "country_codes", "category_codes", "prices",
        ):  # fmt: skip
            column = getattr(self, name)
            if column is not None:
                setattr(self, name, column[order])

    def interactions(self) -> Interactions:
        return Interactions.from_codes(
            user_codes=self.user_codes, item_codes=self.item_codes, event_codes=self.event_codes,
            timestamps=self.timestamps, users=self.users, items=self.items,
            event_vocabulary=self.event_vocabulary, quantities=self.quantities,
            order_codes=self.order_codes, session_codes=self.session_codes,
            country_codes=self.country_codes, countries=self.countries,
        )  # fmt: skip


_EVENT_STRINGS = (
    "user_id", "item_id", "event_type", "order_id", "session_id", "category", "country",
)  # fmt: skip


def _read_events(path: Path, progress: bool) -> _EventColumns:
    columns = _header(path, REQUIRED_COLUMNS, OPTIONAL_COLUMNS)
    coders: dict[str, _CodeColumn | _IdColumn] = {
        name: _IdColumn() if name in ("order_id", "session_id") else _CodeColumn()
        for name in _EVENT_STRINGS
        if name in columns
    }
    coders["event_type"] = _CodeColumn(np.int8)
    times, prices, quantities = _Growing(np.float64), _Growing(np.float64), _Growing(np.int32)
    rows = 0
    for first, chunk, expected in _chunks(path, columns, _EVENT_STRINGS, progress):
        for name, coder in coders.items():
            codes = coder.add(chunk[name], expected)
            if name in ("user_id", "item_id", "event_type") and (codes < 0).any():
                raise _BadRecord(first + _first_bad(codes < 0), f"{name} is empty")
            if name == "event_type" and len(coder.vocabulary) > MAX_EVENT_KINDS:
                raise ValueError(
                    f"{path} has over {MAX_EVENT_KINDS} different event types; no more are "
                    f"supported (the first ones: {', '.join(map(str, coder.vocabulary[:10]))})"
                )
        seconds = _epoch_seconds(chunk["timestamp"], first, "timestamp", required=True)
        times.extend(seconds, expected)
        if "price" in columns:
            prices.extend(_numbers(chunk["price"], first, "price"), expected)
        if "quantity" in columns:
            quantity = _numbers(chunk["quantity"], first, "quantity", whole=True)
            quantities.extend(np.nan_to_num(quantity, nan=1.0).astype(np.int32), expected)
        rows += len(chunk)
    if not rows:
        raise ValueError(f"{path} has a header but no events")
    user_codes, users = coders.pop("user_id").finish(sort=True)
    item_codes, items = coders.pop("item_id").finish(sort=True)
    event_codes, kinds = coders.pop("event_type").finish(sort=True, rename=event_kind)
    events = _EventColumns(
        user_codes=user_codes, item_codes=item_codes, event_codes=event_codes,
        timestamps=times.result(), users=users, items=items, event_vocabulary=kinds,
    )  # fmt: skip
    if "quantity" in columns:
        events.quantities = quantities.result()
    if "price" in columns:
        events.prices = prices.result()
    if "order_id" in coders:
        events.order_codes, _ = coders.pop("order_id").finish()
    if "country" in coders:
        events.country_codes, events.countries = coders.pop("country").finish(sort=True)
    if "category" in coders:
        events.category_codes, events.categories = coders.pop("category").finish(
            sort=True, rename=category_path
        )
        blank = np.flatnonzero(events.categories == "")
        if len(blank):
            events.category_codes[events.category_codes == blank[0]] = -1
    if "session_id" in coders:
        sessions, known_sessions = coders.pop("session_id").finish()
        unknown = sessions < 0
        if unknown.any():
            gap = sessions_by_gap(events.user_codes[unknown], events.timestamps[unknown])
            sessions[unknown] = gap + known_sessions
        events.session_codes = sessions
    events.sort_by_time()
    return events


# --- catalog ---------------------------------------------------------------------------------

_CATALOG_STRINGS = ("item_id", "title", "category", "description", "brand")


def _read_catalog(path: Path, progress: bool) -> pd.DataFrame:
    """The catalog file's rows: item_id, title, category, description, brand ("" when absent),
    price and launched_at (NaN when absent)."""
    columns = _header(path, CATALOG_REQUIRED_COLUMNS, CATALOG_OPTIONAL_COLUMNS)
    parts = []
    for first, chunk, _ in _chunks(path, columns, _CATALOG_STRINGS, progress):
        empty = chunk["item_id"].isna().to_numpy()
        if empty.any():
            raise _BadRecord(first + _first_bad(empty), "item_id is empty")
        part = pd.DataFrame({"item_id": chunk["item_id"].to_numpy(dtype=object)})
        for name in ("title", "category", "description", "brand"):
            part[name] = chunk[name].fillna("").to_numpy(dtype=object) if name in chunk else ""
        part["price"] = _numbers(chunk["price"], first, "price") if "price" in chunk else np.nan
        part["launched_at"] = (
            _epoch_seconds(chunk["launched_at"], first, "launched_at", required=False)
            if "launched_at" in chunk
            else np.nan
        )
        parts.append(part)
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if not len(rows):
        raise ValueError(f"{path} has a header but no items")
    repeated = rows["item_id"].duplicated().to_numpy()
    if repeated.any():
        second = _first_bad(repeated)
        item = rows["item_id"].iloc[second]
        raise _BadRecord(
            second, f"item_id {item!r} is listed twice (first on line "
            f"{_line_of(path, int(np.flatnonzero(rows['item_id'].to_numpy() == item)[0]))})"
        )  # fmt: skip
    return rows


def _item_facts(events: _EventColumns) -> pd.DataFrame:
    """Per item code (the index): first event time, last non-empty category path and price."""
    item_codes = pd.Series(events.item_codes)
    facts = pd.DataFrame(
        {"first_seen": pd.Series(events.timestamps).groupby(item_codes, sort=True).min()}
    )
    if events.category_codes is not None:
        known = events.category_codes >= 0
        last = pd.Series(events.category_codes[known]).groupby(events.item_codes[known]).last()
        facts["category"] = pd.Series(events.categories[last.to_numpy()], index=last.index)
    if events.prices is not None:
        known = ~np.isnan(events.prices)
        facts["price"] = pd.Series(events.prices[known]).groupby(events.item_codes[known]).last()
    facts["category"] = facts["category"].fillna("") if "category" in facts else ""
    facts["price"] = facts["price"].fillna(0.0) if "price" in facts else 0.0
    return facts


def _catalog(events: _EventColumns, rows: pd.DataFrame | None) -> list[CatalogItem]:
    facts = _item_facts(events)
    skus = events.items[facts.index.to_numpy()]
    from_log = [
        CatalogItem(sku=sku, title=sku, category_path=category, price=float(price),
                    launched_at=float(first_seen))
        for sku, category, price, first_seen in zip(
            skus, facts["category"].tolist(), facts["price"].tolist(),
            facts["first_seen"].tolist(), strict=True,
        )
    ]  # fmt: skip
    if rows is None:
        return from_log
    # Catalog rows first, in file order; then the items only the log has.
    position = pd.Index(skus).get_indexer(rows["item_id"].to_numpy())
    first_seen = facts["first_seen"].to_numpy()
    launched = rows["launched_at"].to_numpy(dtype=np.float64)
    launched = np.where(
        np.isnan(launched), np.where(position >= 0, first_seen[position], 0.0), launched
    )
    category_codes, categories = pd.factorize(rows["category"].to_numpy(dtype=object))
    paths = np.array([category_path(str(c)) for c in categories] + [""], dtype=object)
    listed = [
        CatalogItem(sku=sku, title=title or sku, description=description,
                    category_path=category, brand=brand,
                    price=0.0 if np.isnan(price) else float(price), launched_at=float(launch))
        for sku, title, description, category, brand, price, launch in zip(
            rows["item_id"].tolist(), rows["title"].tolist(), rows["description"].tolist(),
            paths[category_codes].tolist(), rows["brand"].tolist(), rows["price"].tolist(),
            launched.tolist(), strict=True,
        )
    ]  # fmt: skip
    in_file = np.zeros(len(skus), dtype=bool)
    in_file[position[position >= 0]] = True
    return listed + [item for item, listed_too in zip(from_log, in_file, strict=True)
                     if not listed_too]  # fmt: skip


def load_interactions_csv(
    path: Path | str, *, catalog_path: Path | str | None = None, progress: bool = True
) -> tuple[Interactions, list[CatalogItem]]:
    """The events of a CSV file (see the module docstring) and their catalog.

    Raises ValueError naming the file, the line and the problem when a file cannot be used."""
    path = Path(path)
    events = _reported(path, lambda: _read_events(path, progress))
    rows = None
    if catalog_path is not None:
        catalog_path = Path(catalog_path)
        rows = _reported(catalog_path, lambda: _read_catalog(catalog_path, progress))
    catalog = _catalog(events, rows)
    return events.interactions(), catalog


# --- the shipped data set --------------------------------------------------------------------


def column_codes(
    values: Sequence[str] | pd.Series, *, sort: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(int32 codes, vocabulary) of a column, vectorised; "" and None (unknown) get -1."""
    series = pd.Series(values, dtype=object)
    codes, vocabulary = pd.factorize(series.mask(series == ""), sort=sort)
    return codes.astype(np.int32), np.asarray(vocabulary, dtype=object)


def load_online_retail(
    path: Path = DEFAULT_FILE, *, limit: int | None = None
) -> tuple[Interactions, list[CatalogItem]]:
    """The shipped UCI data set (its first `limit` rows when given): its purchases and the
    catalog derived from it."""
    parsed = parse_online_retail(path, limit=limit)
    events = parsed.events
    user_codes, users = column_codes([e.user_id for e in events])
    item_codes, items = column_codes([e.product_sku for e in events])
    event_codes, event_vocabulary = column_codes([e.event_type for e in events])
    order_codes, _ = column_codes([e.order_id for e in events])
    country_codes, countries = column_codes([e.country for e in events])
    interactions = Interactions.from_codes(
        user_codes=user_codes, item_codes=item_codes,
        event_codes=event_codes, event_vocabulary=event_vocabulary,
        timestamps=np.fromiter((e.occurred_at.timestamp() for e in events), np.float64,
                               count=len(events)),
        quantities=np.fromiter((e.quantity or 1 for e in events), np.int32, count=len(events)),
        users=users, items=items, order_codes=order_codes,
        country_codes=country_codes, countries=countries,
    )  # fmt: skip
    catalog = [
        CatalogItem(
            sku=p.sku,
            title=p.title,
            description=p.description,
            category_path="/".join(slugify(part) for part in p.category_path),
            brand=p.brand,
            price=float(p.price),
            attributes=p.attributes or {},
            launched_at=p.launched_at.timestamp() if p.launched_at else 0.0,
        )
        for p in parsed.products
    ]
    return interactions, catalog
