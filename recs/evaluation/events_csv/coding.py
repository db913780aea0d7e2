"""String columns read a chunk at a time into integer codes, in arrays grown in place."""

from collections.abc import Callable

import numpy as np
import pandas as pd


class Growing:
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


class CodeColumn:
    """A string column read in chunks, coded as it is read: each chunk is factorized, and its
    distinct values are looked up in the vocabulary so far (new ones appended). Only one copy of
    each distinct string is kept, however many chunks it appears in."""

    def __init__(self, dtype: type = np.int32) -> None:
        self.codes = Growing(dtype)
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


class IdColumn:
    """An id column whose values only need to be told apart (orders, sessions): each chunk's
    distinct values are kept as 64-bit hashes, not strings, so millions of distinct ids cost
    8 bytes each (a collision among 10M ids has a chance of about 3 in a million)."""

    def __init__(self) -> None:
        self.codes = Growing(np.int32)
        self.hashes = Growing(np.uint64)
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
