"""Bounded batches of a long stream: SQL IN lists, Redis pipelines, committed import chunks."""

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of at most `size` items in order (itertools.batched, which Python 3.11 lacks);
    a generator or a file's rows are read one batch at a time."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
