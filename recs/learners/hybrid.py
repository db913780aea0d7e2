"""Hybrid: several learners' candidates blended with weights tuned per tier of shopper.

No single model wins everywhere: what a shopper looks at next follows their last items
(sequence), their whole history (item neighbours, EASE on the most popular items, ALS factors)
and what everyone buys now (trending). Each component proposes its top candidates; scores are scaled to the shopper's
best per component and summed with the weights of the shopper's tier (by how many events they
have), which the evaluation picks on the validation split (`tune_blend`), never on the test.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from scipy import sparse

from recs.learners.als import ALSLearner
from recs.learners.base import CatalogItem, Interactions, Learner
from recs.learners.collaborative import EASELearner, ItemKNNLearner
from recs.learners.popularity import TrendingLearner
from recs.learners.sequence import SequenceLearner

COMPONENTS: dict[str, type[Learner]] = {
    "sequence": SequenceLearner,
    "item_knn": ItemKNNLearner,
    "ease": EASELearner,
    "als": ALSLearner,
    "trending": TrendingLearner,
}
# Tiers by training events (the serving tier router's thresholds): 0, 1-9, 10+.
TIER_EDGES = ((10, "10+"), (1, "1-9"), (0, "0"))
DEFAULT_WEIGHTS = {"sequence": 1.0, "item_knn": 0.5, "ease": 0.5, "als": 0.5, "trending": 0.25}
# Per-component weights tried by `tune_blend`.
WEIGHT_STEPS = (0.0, 0.25, 0.5, 1.0)


def tier_for(interaction_count: int) -> str:
    return next(name for edge, name in TIER_EDGES if interaction_count >= edge)


class HybridLearner(Learner):
    key = "hybrid"
    stochastic = True  # ALS is a component

    def __init__(
        self,
        event_weights: Mapping[str, float] | None = None,
        component_params: Mapping[str, Mapping[str, Any]] | None = None,
        tier_weights: Mapping[str, Mapping[str, float]] | None = None,
        candidates: int = 100,
        seed: int = 0,
    ):
        self.event_weights = dict(event_weights) if event_weights else None
        self.component_params = {k: dict(v) for k, v in (component_params or {}).items()}
        self.tier_weights = {t: dict(w) for t, w in (tier_weights or {}).items()}
        self.candidates = candidates
        self.seed = seed
        self.components: dict[str, Learner] = {}
        self.failed_components: dict[str, str] = {}

    def params(self) -> dict[str, Any]:
        return {
            "component_params": self.component_params,
            "tier_weights": self.tier_weights,
            "candidates": self.candidates,
            "components": sorted(self.components),
            "failed_components": self.failed_components,
        }

    def _build(self, key: str) -> Learner:
        cls = COMPONENTS[key]
        kwargs = dict(self.component_params.get(key, {}))
        if self.event_weights and "event_weights" in cls.__init__.__code__.co_varnames:
            kwargs.setdefault("event_weights", self.event_weights)
        if cls.stochastic:
            kwargs["seed"] = self.seed
        return cls(**kwargs)

    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        """Fit every component; one that fails is left out (and named in params())."""
        fitted = {}
        for key in COMPONENTS:
            try:
                fitted[key] = self._build(key).fit(interactions, catalog)
            except (Exception, MemoryError) as error:
                self.failed_components[key] = f"{type(error).__name__}: {error}"[:200]
        return self.use_fitted(fitted, interactions)

    def use_fitted(self, components: Mapping[str, Learner], interactions: Interactions) -> Self:
        """Adopt components already fitted on these interactions (no second fit)."""
        self.components = {k: v for k, v in components.items() if k in COMPONENTS}
        if not self.components:
            raise RuntimeError(f"no component could be fitted: {self.failed_components}")
        present, counts = np.unique(interactions.user_codes, return_counts=True)
        users = interactions.users[present].astype(str)
        order = np.argsort(users)
        self._users, self._counts = users[order], counts[order]
        # What each known shopper already had (users in the order above x item codes), so
        # that no component's proposal of an old item reaches their list.
        row_of = np.full(len(interactions.users), -1, dtype=np.int64)
        row_of[present[order]] = np.arange(len(present))
        seen = sparse.csr_matrix(
            (np.ones(len(interactions), dtype=np.int8),
             (row_of[interactions.user_codes], interactions.item_codes)),
            shape=(len(present), len(interactions.items)),
        )  # fmt: skip
        self._seen_indptr, self._seen_items = seen.indptr, seen.indices
        self._item_vocabulary = interactions.items
        return self

    def _row(self, user_id: str | None) -> int | None:
        if user_id is None or not len(self._users):
            return None
        at = int(np.searchsorted(self._users, user_id))
        return at if at < len(self._users) and self._users[at] == user_id else None

    def interaction_count(self, user_id: str | None, history: Sequence[str]) -> int:
        row = self._row(user_id)
        return int(self._counts[row]) if row is not None else len(history)

    def seen_items(self, user_id: str | None) -> set[str]:
        row = self._row(user_id)
        if row is None:
            return set()
        codes = self._seen_items[self._seen_indptr[row] : self._seen_indptr[row + 1]]
        return {str(sku) for sku in self._item_vocabulary[codes]}

    def weights_for(self, tier: str) -> dict[str, float]:
        weights = self.tier_weights.get(tier) or DEFAULT_WEIGHTS
        return {k: w for k, w in weights.items() if k in self.components and w > 0}

    def _candidates(self, user_id, history, exclude, context) -> dict[str, dict[str, float]]:
        """Each component's top candidates, scores scaled so the shopper's best is 1."""
        out = {}
        for key, learner in self.components.items():
            ranked = learner.recommend(
                user_id, history, self.candidates, exclude=exclude, context=context
            )
            best = max((score for _, score in ranked), default=0.0)
            out[key] = {sku: score / best for sku, score in ranked} if best > 0 else {}
        return out

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        tier = tier_for(self.interaction_count(user_id, history))
        weights = self.weights_for(tier)
        excluded = {*exclude, *history, *self.seen_items(user_id)}
        scores: dict[str, float] = {}
        for key, learner in self.components.items():
            weight = weights.get(key, 0.0)
            if not weight:
                continue
            ranked = learner.recommend(
                user_id, history, self.candidates, exclude=excluded, context=context
            )
            best = max((score for _, score in ranked), default=0.0)
            if best <= 0:
                continue
            for sku, score in ranked:
                scores[sku] = scores.get(sku, 0.0) + weight * score / best
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return [(sku, score) for sku, score in ranked if sku not in excluded][:k]

    def recommend_many(self, user_ids, k, block: int = 2000):
        """Known users' lists (precomputation): each component scores a block of users at once
        (their own block paths), then each user's candidates are blended as in recommend()."""
        lists: dict[str, list[tuple[str, float]]] = {}
        user_ids = list(user_ids)
        for start in range(0, len(user_ids), block):
            users = user_ids[start : start + block]
            tiers = {u: tier_for(self.interaction_count(u, [])) for u in users}
            used = {key for u in users for key in self.weights_for(tiers[u])}
            proposals = {
                key: self.components[key].recommend_many(users, self.candidates)
                for key in sorted(used)
            }
            for user in users:
                weights = self.weights_for(tiers[user])
                seen = self.seen_items(user)
                scores: dict[str, float] = {}
                for key, weight in weights.items():
                    ranked = [(s, v) for s, v in proposals[key].get(user, []) if s not in seen]
                    best = max((v for _, v in ranked), default=0.0)
                    for sku, value in ranked if best > 0 else []:
                        scores[sku] = scores.get(sku, 0.0) + weight * value / best
                ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
                lists[user] = ranked[:k]
        return lists

    def similar_items(self, sku, k):
        """Neighbours from the item-to-item components, each scaled to its best and summed."""
        scores: dict[str, float] = {}
        for key in ("sequence", "item_knn"):
            learner = self.components.get(key)
            ranked = learner.similar_items(sku, self.candidates) if learner else []
            best = max((score for _, score in ranked), default=0.0)
            for other, score in ranked if best > 0 else []:
                scores[other] = scores.get(other, 0.0) + score / best
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return ranked[:k]

    def tune_blend(self, scorer: Any) -> dict[str, Any]:
        """Pick each tier's weights on the scorer's shoppers (the validation split): every
        combination of WEIGHT_STEPS per component, scored at once as a matrix product."""
        keys = sorted(self.components)
        grid = np.array(np.meshgrid(*[WEIGHT_STEPS] * len(keys))).reshape(len(keys), -1)
        grid = grid[:, grid.sum(axis=0) > 0]  # (components, configurations)
        totals: dict[str, np.ndarray] = {}
        for shopper in scorer.shoppers:
            excluded = {*shopper.history, *self.seen_items(shopper.user_id)}
            per_component = self._candidates(
                shopper.user_id, shopper.history, excluded, shopper.context
            )
            skus = [
                s
                for s in dict.fromkeys(s for c in per_component.values() for s in c)
                if s in scorer.allowed and s not in excluded
            ]
            tier = tier_for(self.interaction_count(shopper.user_id, shopper.history))
            totals.setdefault(tier, np.zeros(grid.shape[1]))
            if not skus or not shopper.relevant:
                continue
            matrix = np.array([[per_component[k].get(s, 0.0) for k in keys] for s in skus])
            scores = matrix @ grid  # (candidates, configurations)
            depth = min(20, len(skus))
            top = np.argpartition(-scores, depth - 1, axis=0)[:depth]
            hit = np.array([s in shopper.relevant for s in skus])
            top_scores = np.take_along_axis(scores, top, axis=0)
            totals[tier] += (hit[top] & (top_scores > 0)).sum(axis=0) / len(shopper.relevant)
        default = np.array([DEFAULT_WEIGHTS.get(k, 0.0) for k in keys])
        default_column = int(np.flatnonzero((grid == default[:, None]).all(axis=0))[0])
        for tier, total in totals.items():
            # The default stays unless validation shows something strictly better.
            column = int(np.argmax(total))
            if total[column] <= total[default_column] + 1e-12:
                column = default_column
            self.tier_weights[tier] = {
                k: float(w) for k, w in zip(keys, grid[:, column], strict=True)
            }
        return {"tier_weights": self.tier_weights}
