"""Collaborative filtering on implicit feedback: item-item neighbours, EASE and bought-together.

Each scores a shopper as (their weighted item row) x (an item-item matrix); they differ in how
that matrix is learnt. Every fit is vectorised and costs memory in proportion to the non-zeros:
co-occurrence is computed over blocks of item rows sized by their work, heavy users and huge
baskets are capped, and EASE inverts the Gram matrix of the most popular items only. Which one
serves is decided by measurement (docs/QUALITY.md).
"""

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Self

import numpy as np
from scipy import linalg, sparse

from recs.learners.base import (
    CatalogItem,
    Interactions,
    ItemIndex,
    Learner,
    item_columns,
    keep_top_per_row,
    learner_items,
    top_k,
)
from recs.learners.popularity import DEFAULT_EVENT_WEIGHTS

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


def _masked(array: np.ndarray, mask: np.ndarray) -> np.ndarray:
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


class ItemItemLearner(Learner):
    """Shared by the item-item learners: a shopper's weighted item row times an item-item matrix.

    `user_items` (users x items) holds log-damped, event-weighted sums (optionally time-decayed
    toward the end of the training data, `half_life_days`), so repeats count with diminishing
    returns and a purchase outweighs a view."""

    def __init__(
        self, event_weights: Mapping[str, float] | None = None, half_life_days: float | None = None
    ):
        self.event_weights = dict(event_weights or DEFAULT_EVENT_WEIGHTS)
        self.half_life_days = half_life_days

    def params(self) -> dict[str, Any]:
        return {"event_weights": self.event_weights, "half_life_days": self.half_life_days}

    def _item_matrix(self, user_items: sparse.csr_matrix, recency: np.ndarray) -> Any:
        """The item-item matrix; `recency` ranks each stored entry within its user's row."""
        raise NotImplementedError

    def score_rows(self, rows: sparse.csr_matrix) -> np.ndarray:
        """Dense scores over the whole item index for these user rows (rows x items)."""
        raise NotImplementedError

    def _rank(
        self, rows: sparse.csr_matrix, k: int, excluded: list[np.ndarray]
    ) -> list[list[tuple[str, float]]]:
        """The k best items for each row, its excluded positions left out."""
        raise NotImplementedError

    def _neighbours_of(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """(item positions ascending, scores) of one item's row of the item-item matrix."""
        raise NotImplementedError

    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        items = learner_items(interactions, catalog)
        users, cols, weights = weighted_events(
            interactions, items, self.event_weights, self.half_life_days
        )
        rows, present = compact_codes(users, len(interactions.users))
        del users
        pairs = distinct_pairs(rows, cols, weights, len(items))
        del rows, cols, weights
        self.index = ItemIndex(items=items, users=interactions.users[present])
        self.user_items = pairs.matrix((len(present), len(items)), np.log1p(pairs.totals))
        recency = pairs.recency
        del pairs  # the pair columns are in user_items now
        self.similarity = self._item_matrix(self.user_items, recency)
        return self

    def _row(self, user_id: str | None, history: Sequence[str]) -> sparse.csr_matrix:
        """The shopper's weighted item row: their training row if known, plus history items
        not in it (weighted like a view, less for older ones)."""
        n_items = len(self.index.items)
        position = self.index.user_position.get(user_id) if user_id is not None else None
        row = (
            self.user_items[position]
            if position is not None
            else sparse.csr_matrix((1, n_items), dtype=np.float32)
        )
        known = set(row.indices.tolist())
        extra: dict[int, float] = {}
        view = np.log1p(self.event_weights.get("view", 1.0) or 1.0)
        for age, sku in enumerate(reversed(history)):
            item = self.index.item_position.get(sku)
            if item is not None and item not in known and item not in extra:
                extra[item] = view * HISTORY_DECAY**age
        if extra:
            added = sparse.csr_matrix(
                (list(extra.values()), ([0] * len(extra), list(extra))),
                shape=(1, n_items), dtype=np.float32,
            )  # fmt: skip
            row = (row + added).tocsr()
        return row

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        row = self._row(user_id, history)
        if row.nnz == 0:
            return []
        excluded = np.union1d(row.indices, positions_of(self.index, exclude))
        return self._rank(row, k, [excluded])[0]

    def recommend_many(
        self, user_ids: Sequence[str], k: int, block: int = USER_BLOCK
    ) -> dict[str, list[tuple[str, float]]]:
        """Known users scored `block` at a time; unknown ones get an empty list."""
        lists: dict[str, list[tuple[str, float]]] = {user: [] for user in user_ids}
        for users, positions in known_user_blocks(user_ids, self.index, block):
            rows = self.user_items[positions]
            lists.update(zip(users, self._rank(rows, k, row_excluded(rows)), strict=True))
        return lists

    def similar_items(self, sku, k):
        position = self.index.item_position.get(sku)
        if position is None:
            return []
        positions, scores = self._neighbours_of(position)
        dropped = np.flatnonzero(positions == position)
        return top_k(scores, self.index.items[positions], k, dropped)


class ItemKNNLearner(ItemItemLearner):
    """Item-item cosine with shrinkage over all event kinds, each item keeping its `neighbours`
    best. Only each shopper's `max_user_items` most recent distinct items enter the
    co-occurrence counts: a heavy user's n items would otherwise cost n^2 pairs."""

    key = "item_knn"
    search_space = {
        "neighbours": [50, 100, 200],
        "shrink": [0.0, 10.0, 50.0],
        "half_life_days": [None, 30.0, 90.0],
    }

    def __init__(
        self,
        event_weights: Mapping[str, float] | None = None,
        neighbours: int = 100,
        shrink: float = 10.0,
        half_life_days: float | None = None,
        max_user_items: int = 100,
    ):
        super().__init__(event_weights, half_life_days)
        self.neighbours = neighbours
        self.shrink = shrink
        self.max_user_items = max_user_items

    def params(self) -> dict[str, Any]:
        return {
            **super().params(), "neighbours": self.neighbours, "shrink": self.shrink,
            "max_user_items": self.max_user_items,
        }  # fmt: skip

    def _item_matrix(self, user_items, recency):
        recent = filter_entries(user_items, recency < self.max_user_items)
        return cosine_neighbours(recent, self.neighbours, self.shrink)

    def score_rows(self, rows: sparse.csr_matrix) -> np.ndarray:
        """Dense scores over the whole item index (rows x items float32): keep blocks small."""
        return (sparse.csr_matrix(rows, dtype=np.float32) @ self.similarity).toarray()

    def _rank(self, rows, k, excluded):
        scores = (sparse.csr_matrix(rows, dtype=np.float32) @ self.similarity).tocsr()
        scores.sort_indices()
        return [
            ranked_from_sparse(scores, r, self.index.items, k, excluded[r])
            for r in range(rows.shape[0])
        ]

    def _neighbours_of(self, position):
        row = self.similarity[position]
        row.sort_indices()
        return row.indices, row.data


class EASELearner(ItemItemLearner):
    """EASE (Steck 2019): a closed-form item-item linear model with a zero diagonal, learnt on
    the `max_items` most popular items only (by distinct shoppers); other items get no score.

    Memory is bounded by max_items^2, never items^2: the Gram matrix is inverted in place in
    float64 (200 MB at 5,000 items) and stored as float32 (100 MB). `similarity` is that pruned
    max_items x max_items matrix; `pruned` holds its items' positions in the full index, and
    `pruned_position` each full-index item's row in it (-1 outside)."""

    key = "ease"
    search_space = {"l2": [100.0, 500.0, 2000.0], "max_items": [2000, 5000]}

    def __init__(
        self,
        event_weights: Mapping[str, float] | None = None,
        l2: float = 500.0,
        max_items: int = 5000,
        half_life_days: float | None = None,
    ):
        super().__init__(event_weights, half_life_days)
        self.l2 = l2
        self.max_items = max_items

    def params(self) -> dict[str, Any]:
        return {**super().params(), "l2": self.l2, "max_items": self.max_items}

    def _item_matrix(self, user_items, recency):
        n_items = user_items.shape[1]
        shoppers = np.bincount(user_items.indices, minlength=n_items)
        ranked = np.argsort(-shoppers, kind="stable")[: self.max_items]
        self.pruned = np.sort(ranked[shoppers[ranked] > 0])
        self.pruned_position = np.full(n_items, -1, dtype=np.int64)
        self.pruned_position[self.pruned] = np.arange(len(self.pruned))
        if not len(self.pruned):
            return np.zeros((0, 0), dtype=np.float32)
        gram = self._gram(self._pruned_rows(user_items))
        gram[np.diag_indices_from(gram)] += self.l2
        precision = _inverse_in_place(gram)
        precision /= -np.diag(precision).copy()
        precision[np.diag_indices_from(precision)] = 0.0
        # float32 in C order: scipy would copy a Fortran-ordered matrix on every product.
        return np.ascontiguousarray(precision, dtype=np.float32)

    @staticmethod
    def _gram(rows: sparse.csr_matrix, block: int = 512) -> np.ndarray:
        """Dense X^T X of the pruned items, filled a block of item rows at a time."""
        columns = rows.T.tocsr()
        gram = np.zeros((rows.shape[1], rows.shape[1]), dtype=np.float64)
        for start in range(0, rows.shape[1], block):
            gram[start : start + block] = (columns[start : start + block] @ rows).toarray()
        return gram

    def _pruned_rows(self, rows: sparse.csr_matrix) -> sparse.csr_matrix:
        """The rows restricted to the pruned items, in their pruned positions."""
        rows = sparse.csr_matrix(rows, dtype=np.float32)
        columns = self.pruned_position[rows.indices]
        return filter_entries(rows, columns >= 0, columns, len(self.pruned))

    def score_rows(self, rows: sparse.csr_matrix) -> np.ndarray:
        """Dense scores over the whole item index (rows x items float32), zero outside the
        pruned items: keep blocks small on large catalogs."""
        scores = np.zeros((rows.shape[0], len(self.index.items)), dtype=np.float32)
        scores[:, self.pruned] = self._pruned_rows(rows) @ self.similarity
        return scores

    def _rank(self, rows, k, excluded):
        scores = self._pruned_rows(rows) @ self.similarity
        items = self.index.items[self.pruned]
        ranked = []
        for r, positions in enumerate(excluded):
            local = self.pruned_position[positions]
            ranked.append(top_k(scores[r], items, k, local[local >= 0]))
        return ranked

    def _neighbours_of(self, position):
        local = self.pruned_position[position]
        if local < 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return self.pruned, self.similarity[local]


def _inverse_in_place(matrix: np.ndarray, block: int = 1024) -> np.ndarray:
    """The inverse of a symmetric positive definite float64 matrix, computed in its own
    memory (Cholesky factor, then its inverse): no second n x n array."""
    factor, info = linalg.lapack.dpotrf(matrix.T, lower=False, overwrite_a=True, clean=False)
    if info:
        raise np.linalg.LinAlgError(f"Gram matrix not positive definite (dpotrf info {info})")
    inverse, info = linalg.lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info:
        raise np.linalg.LinAlgError(f"Gram matrix singular (dpotri info {info})")
    # dpotri fills the upper triangle: mirror it into the lower one, a block at a time.
    n = len(inverse)
    for start in range(0, n, block):
        end = min(start + block, n)
        inverse[start:end, :start] = inverse[:start, start:end].T
        corner = inverse[start:end, start:end]
        corner[np.tril_indices(end - start, -1)] = corner.T[np.tril_indices(end - start, -1)]
    return inverse


class BoughtTogetherLearner(Learner):
    """Frequently bought together: items sharing a basket, cosine-normalised.

    A basket is an order when the data has order ids on its purchases; otherwise the
    add-to-cart and purchase events of one session; and when there are none of those (or they
    never pair up), a session of any events, so the model is never empty on usable data.
    Baskets keep at most `max_basket_items` distinct items (their latest), so the
    co-occurrence work stays proportional to the events. A known shopper with no history given
    is scored from their latest `history_size` basket items."""

    key = "bought_together"
    search_space = {"neighbours": [20, 50, 100], "shrink": [0.0, 5.0]}

    def __init__(
        self,
        neighbours: int = 50,
        shrink: float = 0.0,
        max_basket_items: int = 100,
        history_size: int = 10,
    ):
        self.neighbours = neighbours
        self.shrink = shrink
        self.max_basket_items = max_basket_items
        self.history_size = history_size

    def params(self) -> dict[str, Any]:
        return {
            "neighbours": self.neighbours, "shrink": self.shrink,
            "max_basket_items": self.max_basket_items, "history_size": self.history_size,
        }  # fmt: skip

    @staticmethod
    def basket_sources(interactions: Interactions) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """(name, event mask, basket code per masked event), best evidence first."""
        purchase = interactions.event_code("purchase")
        if interactions.has_order_ids and purchase >= 0:
            mask = (interactions.event_codes == purchase) & (interactions.order_codes >= 0)
            if mask.any():
                yield "orders", mask, interactions.order_codes[mask]
        kinds = [c for c in (interactions.event_code("add_to_cart"), purchase) if c >= 0]
        if kinds:
            mask = np.isin(interactions.event_codes, kinds)
            if mask.any():
                yield "cart_sessions", mask, interactions.session_codes[mask]
        mask = np.ones(len(interactions), dtype=bool)
        yield "sessions", mask, interactions.session_codes

    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        items = learner_items(interactions, catalog)
        n_items = len(items)
        cols = item_columns(interactions, items).astype(np.int32)
        self.together = sparse.csr_matrix((n_items, n_items), dtype=np.float32)
        for source, mask, basket_codes in self.basket_sources(interactions):
            baskets, _ = compact_codes(basket_codes, int(basket_codes.max(initial=-1)) + 1)
            ones = np.ones(len(baskets), dtype=np.float32)
            pairs = distinct_pairs(baskets, _masked(cols, mask), ones, n_items)
            del ones
            pairs = pairs.select(pairs.recency < self.max_basket_items)
            shape = (int(baskets.max(initial=-1)) + 1, n_items)
            matrix = pairs.matrix(shape, np.ones(len(pairs.rows), dtype=np.float32))
            del baskets, pairs
            self.together = cosine_neighbours(matrix, self.neighbours, self.shrink)
            self.basket_source = source
            if self.together.nnz:
                break
        rows, present = compact_codes(
            _masked(interactions.user_codes, mask), len(interactions.users)
        )
        ones = np.ones(len(rows), dtype=np.float32)
        pairs = distinct_pairs(rows, _masked(cols, mask), ones, n_items)
        pairs = pairs.select(pairs.recency < self.history_size)
        self.index = ItemIndex(items=items, users=interactions.users[present])
        # Latest basket items per shopper; the value is 1 + age (1 = the latest).
        self.user_history = pairs.matrix((len(present), n_items), pairs.recency + 1)
        return self

    def _scores(self, rows: sparse.csr_matrix) -> sparse.csr_matrix:
        scores = (sparse.csr_matrix(rows, dtype=np.float32) @ self.together).tocsr()
        scores.sort_indices()
        return scores

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        positions = positions_of(self.index, history)
        if not len(positions) and user_id in self.index.user_position:
            positions = self.user_history[self.index.user_position[user_id]].indices
        if not len(positions):
            return []
        row = sparse.csr_matrix(
            (np.ones(len(positions)), (np.zeros(len(positions), dtype=np.int64), positions)),
            shape=(1, len(self.index.items)),
        )  # a history item counts once
        row.data[:] = 1.0
        excluded = np.union1d(positions, positions_of(self.index, exclude))
        return ranked_from_sparse(self._scores(row), 0, self.index.items, k, excluded)

    def recommend_many(
        self, user_ids: Sequence[str], k: int, block: int = USER_BLOCK
    ) -> dict[str, list[tuple[str, float]]]:
        lists: dict[str, list[tuple[str, float]]] = {user: [] for user in user_ids}
        for users, positions in known_user_blocks(user_ids, self.index, block):
            rows = self.user_history[positions]
            rows.data[:] = 1.0
            scores, excluded = self._scores(rows), row_excluded(rows)
            for r, user in enumerate(users):
                lists[user] = ranked_from_sparse(scores, r, self.index.items, k, excluded[r])
        return lists

    def similar_items(self, sku, k):
        return neighbours_in_row(self.together, self.index, sku, k)
