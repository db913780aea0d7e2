"""Collaborative filtering on implicit feedback: item-item neighbours and EASE.

Both score a shopper as (their weighted item row) x (an item-item matrix); they differ in how
that matrix is learnt. Which one serves is decided by measurement (docs/QUALITY.md).
"""

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from scipy import sparse
from sklearn.preprocessing import normalize

from recs.learners.base import CatalogItem, Interactions, Learner, top_k, user_item_matrix
from recs.learners.popularity import DEFAULT_EVENT_WEIGHTS


class ItemItemLearner(Learner):
    """Shared by the item-item learners: a user row times an item-item matrix."""

    def __init__(self, event_weights: Mapping[str, float] | None = None):
        self.event_weights = dict(event_weights or DEFAULT_EVENT_WEIGHTS)

    def _item_matrix(self, user_items: sparse.csr_matrix) -> Any:
        raise NotImplementedError

    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        items = sorted({item.sku for item in catalog} | set(interactions.item_ids))
        matrix, self.index = user_item_matrix(
            interactions, items, interactions.weights(self.event_weights)
        )
        # Repeated interactions count with diminishing returns.
        matrix.data = np.log1p(matrix.data)
        self.user_items = matrix
        self.similarity = self._item_matrix(matrix)
        return self

    def _row(self, user_id: str | None, history: Sequence[str]) -> sparse.csr_matrix:
        """The shopper's weighted item row: their training row if known, plus history items
        not in it (weighted like a view, more for recent ones)."""
        n_items = len(self.index.items)
        position = self.index.user_position.get(user_id) if user_id is not None else None
        row = self.user_items[position] if position is not None else sparse.csr_matrix((1, n_items))
        known = set(row.indices)
        extra: dict[int, float] = {}
        for recency, sku in enumerate(reversed(history)):
            item = self.index.item_position.get(sku)
            if item is not None and item not in known and item not in extra:
                extra[item] = np.log1p(DEFAULT_EVENT_WEIGHTS["view"]) * 0.9**recency
        if extra:
            cols = list(extra)
            row = row + sparse.csr_matrix(
                (list(extra.values()), ([0] * len(cols), cols)), shape=(1, n_items)
            )
        return row

    def score_rows(self, rows: sparse.csr_matrix) -> np.ndarray:
        # Same dtype on both sides, or scipy copies the whole dense item matrix on every call.
        scores = rows.astype(self.similarity.dtype) @ self.similarity
        return scores.toarray() if sparse.issparse(scores) else np.asarray(scores)

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        row = self._row(user_id, history)
        if row.nnz == 0:
            return []
        excluded = set(row.indices) | {
            self.index.item_position[s] for s in exclude if s in self.index.item_position
        }
        return top_k(self.score_rows(row)[0], self.index.items, k, excluded)

    def similar_items(self, sku, k):
        position = self.index.item_position.get(sku)
        if position is None:
            return []
        column = self.similarity[position]
        scores = column.toarray().ravel() if sparse.issparse(column) else np.asarray(column).ravel()
        return top_k(scores, self.index.items, k, {position})


class ItemKNNLearner(ItemItemLearner):
    """Cosine similarity between item columns, keeping each item's `neighbours` best."""

    key = "item_knn"

    def __init__(self, event_weights=None, neighbours: int = 100):
        super().__init__(event_weights)
        self.neighbours = neighbours

    def params(self) -> dict[str, Any]:
        return {"event_weights": self.event_weights, "neighbours": self.neighbours}

    def _item_matrix(self, user_items):
        columns = normalize(user_items.T.tocsr())
        similarity = (columns @ columns.T).tocsr()
        similarity.setdiag(0)
        similarity.eliminate_zeros()
        return _keep_top_per_row(similarity, self.neighbours)


class EASELearner(ItemItemLearner):
    """EASE (Steck 2019): a closed-form item-item linear model with a zero diagonal."""

    key = "ease"

    def __init__(self, event_weights=None, l2: float = 1000.0):
        super().__init__(event_weights)
        self.l2 = l2

    def params(self) -> dict[str, Any]:
        return {"event_weights": self.event_weights, "l2": self.l2}

    def _item_matrix(self, user_items):
        gram = (user_items.T @ user_items).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))
        weights[np.diag_indices_from(weights)] = 0.0
        return weights.astype(np.float32)


class BoughtTogetherLearner(Learner):
    """Frequently bought together: items in the same order, normalised like cosine."""

    key = "bought_together"

    def __init__(self, neighbours: int = 50):
        self.neighbours = neighbours

    def params(self) -> dict[str, Any]:
        return {"neighbours": self.neighbours}

    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        items = sorted({item.sku for item in catalog} | set(interactions.item_ids))
        self.items = np.asarray(items, dtype=object)
        self.position = {sku: i for i, sku in enumerate(items)}
        mask = (interactions.order_ids != "") & (interactions.event_types == "purchase")
        orders = interactions.order_ids[mask]
        order_position = {order: o for o, order in enumerate(np.unique(orders))}
        rows = [order_position[o] for o in orders]
        cols = [self.position[i] for i in interactions.item_ids[mask]]
        baskets = sparse.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(order_position), len(items))
        )
        baskets.data[:] = 1.0  # an item counts once per order
        together = (baskets.T @ baskets).tocsr().astype(np.float64)
        counts = np.asarray(together.diagonal()).ravel()
        together.setdiag(0)
        together.eliminate_zeros()
        norm = np.sqrt(np.maximum(counts, 1))
        together = sparse.diags(1 / norm) @ together @ sparse.diags(1 / norm)
        self.together = _keep_top_per_row(together.tocsr(), self.neighbours)
        return self

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        positions = [self.position[s] for s in history if s in self.position]
        if not positions:
            return []
        scores = np.asarray(self.together[positions].sum(axis=0)).ravel()
        excluded = set(positions) | {self.position[s] for s in exclude if s in self.position}
        return top_k(scores, self.items, k, excluded)

    def similar_items(self, sku, k):
        position = self.position.get(sku)
        if position is None:
            return []
        return top_k(self.together[position].toarray().ravel(), self.items, k, {position})


def _keep_top_per_row(matrix: sparse.csr_matrix, keep: int) -> sparse.csr_matrix:
    """Zero all but the `keep` largest entries of each row."""
    matrix = matrix.tocsr()
    rows, cols, values = [], [], []
    for r in range(matrix.shape[0]):
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        if end == start:
            continue
        data, indices = matrix.data[start:end], matrix.indices[start:end]
        if len(data) > keep:
            best = np.argpartition(-data, keep - 1)[:keep]
            data, indices = data[best], indices[best]
        rows.extend([r] * len(data))
        cols.extend(indices)
        values.extend(data)
    return sparse.csr_matrix((values, (rows, cols)), shape=matrix.shape)
