"""A chunk's column as float64 numbers or epoch seconds, vectorised; a bad value is a BadRecord.

Times are epoch seconds (integer or decimal) or ISO 8601 with a time zone; a time without a
zone is an error, as guessing one would shift every event. Numbers of 1e11 and more would be
after the year 5000 as seconds, so they are read as epoch milliseconds.
"""

import re
from typing import Any

import numpy as np
import pandas as pd

from recs.evaluation.events_csv.files import BadRecord

# Epoch values this large are milliseconds: as seconds they would be after the year 5000.
EPOCH_MS_FROM = 1e11

_TIME_WITH_ZONE = re.compile(
    r"[Tt ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?|UTC|GMT)$"
)
_ZONE_NAME = re.compile(r"\s*(?:UTC|GMT)$")


def first_bad(mask: np.ndarray) -> int:
    """The position of the first True: the row an error names."""
    return int(np.flatnonzero(mask)[0])


def epoch_seconds(values: pd.Series, first: int, column: str, *, required: bool) -> np.ndarray:
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
        position = first_bad(np.isinf(seconds))
        raise BadRecord(
            first + position,
            f"{column} {_shown(values.iloc[position])} is neither epoch seconds nor ISO 8601 "
            "with a time zone",
        )
    seconds = np.where(np.abs(seconds) >= EPOCH_MS_FROM, seconds / 1000.0, seconds)
    if required and np.isnan(seconds).any():
        raise BadRecord(first + first_bad(np.isnan(seconds)), f"{column} is empty")
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
        position = first_bad(bad)
        value = values.iloc[position]
        naive = not zoned[position] and pd.notna(
            pd.to_datetime(pd.Series([value]), format="ISO8601", errors="coerce")[0]
        )
        problem = (
            f"{column} {value!r} has no time zone: add one (e.g. Z or +00:00) or use epoch seconds"
            if naive
            else f"{column} {value!r} is neither epoch seconds nor ISO 8601 with a time zone"
        )
        raise BadRecord(int(records[position]), problem)
    return _seconds_since_epoch(parsed)


def _shown(value: Any) -> str:
    """A value as the file most likely wrote it, quoted: 1.5 -> '1.5', not np.float64(1.5)."""
    return repr(str(value.item() if isinstance(value, np.generic) else value))


def as_numbers(values: pd.Series, first: int, column: str, *, whole: bool = False) -> np.ndarray:
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
        position = first_bad(bad)
        kind = "a whole number" if whole else "a number"
        raise BadRecord(first + position, f"{column} {_shown(values.iloc[position])} is not {kind}")
    return numbers
