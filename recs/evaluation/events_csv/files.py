"""A CSV file read in chunks with pandas' C parser, and a bad value reported with its line.

Reading in chunks (no Python work per row) is what lets 20M events load in about a minute. A bad
value found in a chunk is raised as BadRecord with its data row; `reported` turns it into an
error naming the file line (the header is line 1), found by a second read only then.
"""

import csv
import gzip
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pandas as pd
from tqdm import tqdm

# Rows per chunk: big enough for the parser to be fast, small enough that one chunk's strings
# (the only per-row Python objects) stay a few hundred MB.
CHUNK_ROWS = 1 << 19


class BadRecord(Exception):
    """A bad value in the `record`-th data row (0-based); turned into a message with the line."""

    def __init__(self, record: int, problem: str):
        super().__init__(problem)
        self.record, self.problem = record, problem


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


def header(path: Path, required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, str]:
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


def chunks(
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


def line_of(path: Path, record: int) -> int:
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


def reported(path: Path, read: Callable[[], Any]) -> Any:
    """read(), with a BadRecord raised as a ValueError naming the file and its line."""
    try:
        return read()
    except BadRecord as bad:
        raise ValueError(f"{path}, line {line_of(path, bad.record)}: {bad.problem}") from None
