"""Collaborative filtering on implicit feedback: item-item neighbours, EASE and bought-together.

Each scores a shopper as (their weighted item row) x (an item-item matrix); they differ in how
that matrix is learnt. Every fit is vectorised and costs memory in proportion to the non-zeros:
co-occurrence is computed over blocks of item rows sized by their work, heavy users and huge
baskets are capped, and EASE inverts the Gram matrix of the most popular items only. Which one
serves is decided by measurement (docs/QUALITY.md).
"""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Self

import numpy as np
from scipy import linalg, sparse

from recs.learners.base import (
    CatalogItem,
    Interactions,
    ItemIndex,
    Learner,
    item_columns,
    learner_items,
    top_k,
)
from recs.learners.item_matrices import (
    HISTORY_DECAY,
    USER_BLOCK,
    compact_codes,
    cosine_neighbours,
    distinct_pairs,
    filter_entries,
    known_user_blocks,
    masked,
    neighbours_in_row,
    positions_of,
    ranked_from_sparse,
    row_excluded,
    weighted_events,
)
from recs.learners.popularity import DEFAULT_EVENT_WEIGHTS


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
            pairs = distinct_pairs(baskets, masked(cols, mask), ones, n_items)
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
            masked(interactions.user_codes, mask), len(interactions.users)
        )
        ones = np.ones(len(rows), dtype=np.float32)
        pairs = distinct_pairs(rows, masked(cols, mask), ones, n_items)
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
