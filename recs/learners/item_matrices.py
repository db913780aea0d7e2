"""Sparse building blocks of the item-item learners, each O(non-zeros) in memory: distinct
(row, column) pairs of an event log, time-decayed event weights, top-k per row, cosine
neighbours, and scoring shoppers' item rows in blocks."""

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy import sparse

from recs.learners.base import (
    Interactions,
    ItemIndex,
    item_columns,
    keep_top_per_row,
    top_k,
)

DAY_S = 86400.0
# Multiply-adds per block of X^T X: bounds the peak memory of a co-occurrence block (its
# output has at most this many entries, plus one catalog-wide row for a single huge item).
BLOCK_WORK = 4_000_000
# Events per sort when aggregating (user, item) pairs: bounds the sort's temporaries.
CHUNK_EVENTS = 4_000_000
# Shoppers scored at once by recommend_many: a block's scores stay sparse or pruned.
USER_BLOCK = 512
# History items not in a shopper's training row weigh like a view, less the older they are.
HISTORY_DECAY = 0.9


@dataclass(frozen=True)
class Pairs:
    """Distinct (row, column) pairs of time-sorted events, sorted by (row, column)."""

    rows: np.ndarray  # int32
    cols: np.ndarray  # int32
    totals: np.ndarray  # float32: the summed event weights of the pair
    recency: np.ndarray  # int32: 0 for the row's most recently touched column, 1 next, ...

    def select(self, mask: np.ndarray) -> "Pairs":
        return Pairs(self.rows[mask], self.cols[mask], self.totals[mask], self.recency[mask])

    def matrix(self, shape: tuple[int, int], values: np.ndarray) -> sparse.csr_matrix:
        """Rows x columns with these values (aligned with the pairs), built without sorting."""
        indptr = np.zeros(shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.rows, minlength=shape[0]), out=indptr[1:])
        return sparse.csr_matrix(
            (np.asarray(values, dtype=np.float32), self.cols, indptr), shape=shape
        )


def distinct_pairs(
    rows: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray,
    n_cols: int,
    chunk_events: int = CHUNK_EVENTS,
) -> Pairs:
    """Sum the weights of repeated (row, column) events and rank each row's columns by how
    recently they were touched. Events must be in time order (as Interactions are).

    Works on ranges of rows holding about `chunk_events` events at a time, so the sort's
    temporaries stay bounded however many events there are."""
    if not len(rows):
        empty = np.zeros(0, dtype=np.int32)
        return Pairs(empty, empty, np.zeros(0, dtype=np.float32), empty)
    done = np.cumsum(np.bincount(rows))
    bounds = [0]
    while bounds[-1] < len(done):
        reached = done[bounds[-1] - 1] if bounds[-1] else 0
        end = int(np.searchsorted(done, reached + chunk_events, side="right"))
        bounds.append(min(max(end, bounds[-1] + 1), len(done)))
    if len(bounds) == 2:
        return _distinct_pairs(rows, cols, weights, n_cols)
    parts = []
    for low, high in pairwise(bounds):
        chosen = np.flatnonzero((rows >= low) & (rows < high))  # keeps time order
        parts.append(_distinct_pairs(rows[chosen], cols[chosen], weights[chosen], n_cols))
    return Pairs(
        *(np.concatenate([getattr(p, name) for p in parts]) for name in Pairs.__annotations__)
    )


def _distinct_pairs(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n_cols: int) -> Pairs:
    keys = np.asarray(rows, dtype=np.int64) * n_cols + np.asarray(cols, dtype=np.int64)
    order = np.argsort(keys, kind="stable")  # stable: a pair's events stay in time order
    keys = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    totals = np.add.reduceat(np.asarray(weights, dtype=np.float64)[order], starts)
    last_event = order[np.append(starts[1:], len(keys)) - 1]
    del order
    pair_rows, pair_cols = np.divmod(keys[starts], n_cols)
    del keys
    by_recency = np.lexsort((-last_event, pair_rows))
    row_start = np.searchsorted(pair_rows, pair_rows[by_recency])
    recency = np.empty(len(pair_rows), dtype=np.int32)
    recency[by_recency] = np.arange(len(pair_rows)) - row_start
    return Pairs(
        pair_rows.astype(np.int32), pair_cols.astype(np.int32), totals.astype(np.float32), recency
    )


def masked(array: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """array[mask], without a copy when the mask keeps everything."""
    return array if mask.all() else array[mask]


def compact_codes(codes: np.ndarray, vocabulary_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(dense row per code, the codes present): rows only for codes that occur, no sorting."""
    present = np.flatnonzero(np.bincount(codes, minlength=vocabulary_size))
    row_of = np.full(vocabulary_size, -1, dtype=np.int32)
    row_of[present] = np.arange(len(present))
    return row_of[codes], present


def weighted_events(
    interactions: Interactions,
    items: np.ndarray,
    event_weights: Mapping[str, float],
    half_life_days: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user codes, item columns int32, weights float32) of the events that have a positive
    weight and an item in `items`, in time order; 32-bit to halve the memory.

    With `half_life_days`, weights halve per half-life of age before the end of the data."""
    cols = item_columns(interactions, items).astype(np.int32)
    weights = interactions.weights(event_weights).astype(np.float32)
    if half_life_days and len(interactions):
        age_days = (interactions.timestamps[-1] - interactions.timestamps) / DAY_S
        weights *= np.exp2(-age_days / half_life_days).astype(np.float32)
        del age_days
    kept = (weights > 0) & (cols >= 0)
    if kept.all():
        return interactions.user_codes, cols, weights
    return interactions.user_codes[kept], cols[kept], weights[kept]


def filter_entries(
    matrix: sparse.csr_matrix,
    keep: np.ndarray,
    indices: np.ndarray | None = None,
    n_cols: int | None = None,
) -> sparse.csr_matrix:
    """The csr matrix with only the stored entries where `keep` (aligned with .data) is true,
    optionally moved to new column `indices` (aligned with .data) in `n_cols` columns."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    indptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=matrix.shape[0]), out=indptr[1:])
    indices = matrix.indices if indices is None else indices
    shape = (matrix.shape[0], matrix.shape[1] if n_cols is None else n_cols)
    return sparse.csr_matrix((matrix.data[keep], indices[keep], indptr), shape=shape)


def top_per_row(matrix: sparse.csr_matrix, keep: int) -> sparse.csr_matrix:
    """base.keep_top_per_row (ties to the lower column), several times faster: only rows
    longer than `keep` are ranked, by one integer sort on (row, value bits). Non-negative
    float values only (the bits of a non-negative float32 order like its value)."""
    matrix = sparse.csr_matrix(matrix, dtype=np.float32)
    matrix.eliminate_zeros()
    counts = np.diff(matrix.indptr)
    if counts.max(initial=0) <= keep:
        return matrix
    if matrix.data.min() < 0:
        return keep_top_per_row(matrix, keep)
    matrix.sort_indices()
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), counts)
    long = counts[rows] > keep
    ranked = np.flatnonzero(long)
    bits = matrix.data[ranked].view(np.uint32).astype(np.int64)
    ranked = ranked[np.argsort((rows[ranked] << 32) | (0xFFFFFFFF - bits), kind="stable")]
    del bits
    long_counts = counts[counts > keep]
    starts = np.cumsum(long_counts) - long_counts
    rank = np.arange(len(ranked)) - np.repeat(starts, long_counts)
    chosen = np.sort(np.concatenate([np.flatnonzero(~long), ranked[rank < keep]]))
    indptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.minimum(counts, keep), out=indptr[1:])
    return sparse.csr_matrix(
        (matrix.data[chosen], matrix.indices[chosen], indptr), shape=matrix.shape
    )


def cosine_neighbours(
    matrix: sparse.csr_matrix, neighbours: int, shrink: float = 0.0, block_work: int = BLOCK_WORK
) -> sparse.csr_matrix:
    """Items x items: each item's `neighbours` most similar items by the columns of `matrix`
    (rows x items), sim = co / (sqrt(n_i n_j) + shrink), n_i = column i's sum of squares.

    X^T X is computed for blocks of item rows whose multiply-adds stay under `block_work`,
    each block cut to its top neighbours at once: peak memory is one block, never the full
    co-occurrence matrix, and the time is the number of multiply-adds."""
    matrix = sparse.csr_matrix(matrix, dtype=np.float32)
    n_items = matrix.shape[1]
    columns = matrix.T.tocsr()  # items x rows
    norms = np.sqrt(np.asarray(columns.multiply(columns).sum(axis=1), dtype=np.float64).ravel())
    pattern = sparse.csr_matrix(
        (np.ones(columns.nnz, dtype=np.float32), columns.indices, columns.indptr),
        shape=columns.shape,
    )
    work = np.cumsum(pattern @ np.diff(matrix.indptr).astype(np.float32), dtype=np.float64)
    del pattern
    values, columns_kept, row_sizes = [], [], []
    start = 0
    while start < n_items:
        done = work[start - 1] if start else 0.0
        end = int(np.searchsorted(work, done + block_work, side="right"))
        end = min(max(end, start + 1), n_items)
        co = (columns[start:end] @ matrix).tocsr()
        rows = np.repeat(np.arange(start, end), np.diff(co.indptr))
        similarity = co.data / (norms[rows] * norms[co.indices] + shrink)
        similarity[co.indices == rows] = 0.0
        co.data = similarity.astype(np.float32)
        del rows, similarity
        block = top_per_row(co, neighbours)
        values.append(block.data)
        columns_kept.append(block.indices.astype(np.int32))
        row_sizes.append(np.diff(block.indptr))
        start = end
    del columns, work
    # Stacked one array at a time (not sparse.vstack): the blocks plus one output at the peak.
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    if row_sizes:
        np.cumsum(np.concatenate(row_sizes), out=indptr[1:])
    data = np.concatenate(values) if values else np.zeros(0, dtype=np.float32)
    values.clear()
    indices = np.concatenate(columns_kept) if columns_kept else np.zeros(0, dtype=np.int32)
    columns_kept.clear()
    return sparse.csr_matrix((data, indices, indptr), shape=(n_items, n_items))


def ranked_from_sparse(
    scores: sparse.csr_matrix, r: int, items: np.ndarray, k: int, excluded: np.ndarray
) -> list[tuple[str, float]]:
    """top_k over row r of sparse scores (sorted indices): the same list a dense row would give,
    in time proportional to the row's non-zeros."""
    start, end = scores.indptr[r], scores.indptr[r + 1]
    positions, values = scores.indices[start:end], scores.data[start:end]
    dropped = np.flatnonzero(np.isin(positions, excluded)) if len(excluded) else ()
    return top_k(values, items[positions], k, dropped)


def positions_of(index: ItemIndex, skus: Collection[str]) -> np.ndarray:
    position = index.item_position
    return np.asarray([position[s] for s in skus if s in position], dtype=np.int64)


def row_excluded(rows: sparse.csr_matrix) -> list[np.ndarray]:
    """Each row's item positions: what a shopper already has is not recommended again."""
    return [rows.indices[rows.indptr[r] : rows.indptr[r + 1]] for r in range(rows.shape[0])]


def neighbours_in_row(
    matrix: sparse.csr_matrix, index: ItemIndex, sku: str, k: int
) -> list[tuple[str, float]]:
    """An item's row of a sparse item-item matrix as its k best neighbours, itself left out."""
    position = index.item_position.get(sku)
    if position is None:
        return []
    row = matrix[position]
    row.sort_indices()
    return top_k(row.data, index.items[row.indices], k, np.flatnonzero(row.indices == position))


def known_user_blocks(
    user_ids: Sequence[str], index: ItemIndex, block: int = USER_BLOCK
) -> Iterator[tuple[list[str], list[int]]]:
    """(users, their row positions) of the known users, `block` at a time: the shared loop of
    every block-wise recommend_many (unknown users get no list)."""
    position = index.user_position
    known = [user for user in dict.fromkeys(user_ids) if user in position]
    for start in range(0, len(known), block):
        users = known[start : start + block]
        yield users, [position[user] for user in users]
