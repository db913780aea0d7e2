"""Reference baseline: implicit's ALS, the library a shop would otherwise pick (dev/bench only)."""

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from recs.learners.base import CatalogItem, Interactions, Learner, user_item_matrix
from recs.learners.popularity import DEFAULT_EVENT_WEIGHTS


class ImplicitALSBaseline(Learner):
    key = "implicit_als"

    def __init__(self, factors: int = 64, regularization: float = 0.05, iterations: int = 15,
                 alpha: float = 10.0, seed: int = 42):  # fmt: skip
        self.factors, self.regularization = factors, regularization
        self.iterations, self.alpha, self.seed = iterations, alpha, seed

    def params(self) -> dict[str, Any]:
        return {"factors": self.factors, "regularization": self.regularization,
                "iterations": self.iterations, "alpha": self.alpha}  # fmt: skip

    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        try:
            from implicit.cpu.als import AlternatingLeastSquares
        except ImportError as error:
            raise RuntimeError(
                "The implicit ALS baseline needs `pip install implicit` (requirements-dev.txt)."
            ) from error
        items = sorted({item.sku for item in catalog} | set(interactions.item_ids))
        matrix, self.index = user_item_matrix(
            interactions, items, interactions.weights(DEFAULT_EVENT_WEIGHTS)
        )
        matrix.data = 1 + self.alpha * np.log1p(matrix.data)
        self.user_items = matrix.tocsr()
        self.model = AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization,
            iterations=self.iterations, random_state=self.seed,
        )  # fmt: skip
        self.model.fit(self.user_items, show_progress=False)
        return self

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        position = self.index.user_position.get(user_id) if user_id else None
        if position is None:
            return []
        ids, scores = self.model.recommend(
            position, self.user_items[position], N=k, filter_already_liked_items=True
        )
        excluded = set(exclude)
        return [(str(self.index.items[i]), float(s)) for i, s in zip(ids, scores, strict=True)
                if self.index.items[i] not in excluded]  # fmt: skip
