"""Matrix factorisation: implicit's alternating least squares over event-weighted confidences.

Hu, Koren & Volinsky's implicit-feedback ALS: every (shopper, item) pair the shopper touched gets
confidence 1 + alpha * log1p(weighted count), the rest confidence 1 at preference 0. Memory is
the sparse matrix plus (users + items) x factors float32.
"""

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Self

import numpy as np
from scipy import sparse

from recs.learners.base import CatalogItem, Interactions, Learner
from recs.learners.item_matrices import compact_codes
from recs.learners.popularity import DEFAULT_EVENT_WEIGHTS

# Scores computed at once by recommend_many: block rows x items float32 stays near 200 MB.
SCORE_BUDGET = 50_000_000


def _lookup(sorted_ids: np.ndarray, order: np.ndarray, wanted: Sequence[str]) -> np.ndarray:
    """Positions (through `order`) of the wanted ids in the sorted ids; -1 where absent."""
    wanted_array = np.asarray([str(w) for w in wanted], dtype=object)
    if not len(sorted_ids) or not len(wanted_array):
        return np.full(len(wanted_array), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(sorted_ids, wanted_array), len(sorted_ids) - 1)
    return np.where(sorted_ids[at] == wanted_array, order[at], -1)


class ALSLearner(Learner):
    """Latent factors for shoppers and items; unknown shoppers are folded in from their history."""

    key = "als"
    stochastic = True
    search_space = {
        "alpha": [1.0, 5.0, 10.0, 20.0, 40.0],
        "factors": [32, 64, 128],
        "regularization": [0.01, 0.05, 0.1, 0.5],
    }

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        seed: int = 42,
        event_weights: Mapping[str, float] | None = None,
        num_threads: int = 0,
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.event_weights = dict(event_weights or DEFAULT_EVENT_WEIGHTS)
        self.num_threads = num_threads
        self.model = None
        self.fitted_factors = 0

    def params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "seed": self.seed,
            "event_weights": self.event_weights,
            "fitted_factors": self.fitted_factors,
        }

    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        """Items are those with events: an item nobody touched has no factors to learn."""
        from implicit.cpu.als import AlternatingLeastSquares

        weights = interactions.weights(self.event_weights).astype(np.float32)
        keep = np.flatnonzero(weights > 0)
        user_codes, item_codes = interactions.user_codes[keep], interactions.item_codes[keep]
        rows, users = compact_codes(user_codes, len(interactions.users))
        cols, items = compact_codes(item_codes, len(interactions.items))
        del user_codes, item_codes
        self.user_ids = interactions.users[users]
        self.item_ids = interactions.items[items]
        # Sorted copies for vectorised id -> row lookups (no million-entry dicts).
        self._user_order = np.argsort(self.user_ids.astype(str), kind="stable")
        self._sorted_users = self.user_ids[self._user_order]
        self._item_order = np.argsort(self.item_ids.astype(str), kind="stable")
        self._sorted_items = self.item_ids[self._item_order]
        matrix = sparse.csr_matrix(
            (weights[keep], (rows, cols)), shape=(len(users), len(items)), dtype=np.float32
        )
        del weights, keep, rows, cols
        matrix.sum_duplicates()
        matrix.data = 1.0 + np.float32(self.alpha) * np.log1p(matrix.data)
        self.user_items = matrix
        self.model = None
        # More factors than items (or shoppers) only fits noise: cap them.
        self.fitted_factors = max(1, min(self.factors, len(items) - 1, len(users) - 1))
        if not matrix.nnz:
            return self
        self.model = AlternatingLeastSquares(
            factors=self.fitted_factors,
            regularization=self.regularization,
            alpha=1.0,  # the confidence above already carries alpha
            iterations=self.iterations,
            dtype=np.float32,
            num_threads=self.num_threads,
            random_state=self.seed,
        )
        self.model.fit(self.user_items, show_progress=False)
        return self

    def _item_positions(self, skus: Collection[str]) -> np.ndarray:
        positions = _lookup(self._sorted_items, self._item_order, list(skus))
        return np.unique(positions[positions >= 0]).astype(np.int32)

    def _ranked(self, ids: np.ndarray, scores: np.ndarray) -> list[tuple[str, float]]:
        keep = np.isfinite(scores) & (scores > 0)
        return [
            (str(sku), float(score))
            for sku, score in zip(self.item_ids[ids[keep]], scores[keep], strict=True)
        ]

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        if self.model is None or k <= 0:
            return []
        n = min(k, len(self.item_ids))
        row = _lookup(self._sorted_users, self._user_order, [user_id])[0] if user_id else -1
        filtered = self._item_positions({*exclude, *history})
        seen = _lookup(self._sorted_items, self._item_order, list(history))
        seen = seen[seen >= 0]
        if row >= 0:
            known = self.user_items[row]
            if not len(np.setdiff1d(seen, known.indices)):
                ids, scores = self.model.recommend(
                    int(row), known, N=n, filter_items=filtered if len(filtered) else None
                )
                return self._ranked(ids, scores)
        elif not len(seen):
            return []
        # Fold the shopper in (an unknown one, or a known one who touched new items since the
        # fit): solve their factors against the fixed item factors.
        columns, counts = np.unique(seen, return_counts=True)
        confidence = (1.0 + self.alpha * np.log1p(counts)).astype(np.float32)
        history_row = sparse.csr_matrix(
            (confidence, (np.zeros(len(columns), dtype=np.int32), columns)),
            shape=(1, len(self.item_ids)),
        )
        if row >= 0:
            history_row = history_row.maximum(self.user_items[row])
            columns = history_row.indices
        others = np.setdiff1d(filtered, columns).astype(np.int32)
        ids, scores = self.model.recommend(
            0, history_row, N=n, recalculate_user=True,
            filter_items=others if len(others) else None,
        )  # fmt: skip
        return self._ranked(ids, scores)

    def recommend_many(self, user_ids, k, block: int | None = None):
        user_ids = list(user_ids)
        lists: dict[str, list[tuple[str, float]]] = {str(u): [] for u in user_ids}
        if self.model is None or k <= 0:
            return lists
        rows = _lookup(self._sorted_users, self._user_order, user_ids)
        known = np.flatnonzero(rows >= 0)
        n = min(k, len(self.item_ids))
        block = block or max(1, SCORE_BUDGET // len(self.item_ids))
        for start in range(0, len(known), block):
            chosen = known[start : start + block]
            ids, scores = self.model.recommend(rows[chosen], self.user_items[rows[chosen]], N=n)
            for position, item_row, score_row in zip(chosen, ids, scores, strict=True):
                lists[str(user_ids[position])] = self._ranked(item_row, score_row)
        return lists

    def similar_items(self, sku, k):
        if self.model is None or k <= 0:
            return []
        position = _lookup(self._sorted_items, self._item_order, [sku])[0]
        if position < 0:
            return []
        n = min(k + 1, len(self.item_ids))
        ids, scores = self.model.similar_items(int(position), N=n)
        mine = ids != position
        return self._ranked(ids[mine][:k], scores[mine][:k])
