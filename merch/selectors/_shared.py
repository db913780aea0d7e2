"""Helpers that more than one of the merch.selectors modules needs; private to the package."""

from datetime import datetime


def epoch(moment: datetime | None) -> float | None:
    """Epoch seconds (None stays None): cached configs hold plain numbers, not datetimes."""
    return moment.timestamp() if moment is not None else None
