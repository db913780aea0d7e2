"""Hybrid: the collaborative model's scores blended with what is trending now.

Gift shopping is seasonal: what a shopper will buy next is both "like what they bought" (EASE)
and "what everyone is buying this month" (trending). Blending the two, each scaled to its
shopper's best score, measured better than either alone (docs/QUALITY.md).
"""

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np

from recs.learners.base import CatalogItem, Interactions, Learner, top_k
from recs.learners.collaborative import EASELearner
from recs.learners.popularity import TrendingLearner


class HybridLearner(Learner):
    key = "hybrid"

    def __init__(self, event_weights: Mapping[str, float] | None = None, l2: float = 1000.0,
                 half_life_hours: float = 72.0, trending_weight: float = 0.4):  # fmt: skip
        self.collaborative = EASELearner(event_weights, l2=l2)
        self.trending = TrendingLearner(event_weights, half_life_hours=half_life_hours)
        self.trending_weight = trending_weight

    def params(self) -> dict[str, Any]:
        return {**self.collaborative.params(), "half_life_hours": self.trending.half_life_hours,
                "trending_weight": self.trending_weight}  # fmt: skip

    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        self.collaborative.fit(interactions, catalog)
        self.trending.fit(interactions, catalog)
        items = self.collaborative.index.items
        position = self.collaborative.index.item_position
        self.trend_scores = np.zeros(len(items))
        for sku, score in self.trending.global_list:
            if sku in position:
                self.trend_scores[position[sku]] = score
        if self.trend_scores.max() > 0:
            self.trend_scores /= self.trend_scores.max()
        return self

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        index = self.collaborative.index
        row = self.collaborative._row(user_id, history)
        if row.nnz == 0:
            return self.trending.recommend(user_id, history, k, exclude=exclude, context=context)
        scores = self.collaborative.score_rows(row)[0].astype(np.float64)
        best = scores.max()
        if best > 0:
            scores /= best
        scores = np.maximum(scores, 0) + self.trending_weight * self.trend_scores
        excluded = set(row.indices) | {
            index.item_position[s] for s in exclude if s in index.item_position
        }
        return top_k(scores, index.items, k, excluded)

    def recommend_many(self, user_ids, k, block=512):
        index = self.collaborative.index
        known = [u for u in user_ids if u in index.user_position]
        lists = {}
        for start in range(0, len(known), block):
            users = known[start : start + block]
            rows = self.collaborative.user_items[[index.user_position[u] for u in users]]
            scores = self.collaborative.score_rows(rows).astype(np.float64)
            best = scores.max(axis=1, keepdims=True)
            scores = np.where(best > 0, np.maximum(scores, 0) / np.where(best > 0, best, 1), 0)
            scores += self.trending_weight * self.trend_scores
            for offset, user in enumerate(users):
                seen = rows[offset].indices
                lists[user] = top_k(scores[offset], index.items, k, set(seen))
        return lists

    def similar_items(self, sku, k):
        return self.collaborative.similar_items(sku, k)
