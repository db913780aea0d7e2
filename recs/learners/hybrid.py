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
from recs.learners.base import CatalogItem, Interactions, Learner, construct, tier_of
from recs.learners.blending import WeightSearch, scaled, weighted_sum
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
DEFAULT_WEIGHTS = {"sequence": 1.0, "item_knn": 0.5, "ease": 0.5, "als": 0.5, "trending": 0.25}


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
        return construct(
            COMPONENTS[key], self.component_params.get(key, {}),
            event_weights=self.event_weights, seed=self.seed,
        )  # fmt: skip

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
        return {
            key: scaled(
                learner.recommend(
                    user_id, history, self.candidates, exclude=exclude, context=context
                )
            )
            for key, learner in self.components.items()
        }

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        weights = self.weights_for(tier_of(self.interaction_count(user_id, history)))
        excluded = {*exclude, *history, *self.seen_items(user_id)}
        proposals = (
            (weights[key], scaled(learner.recommend(
                user_id, history, self.candidates, exclude=excluded, context=context)))
            for key, learner in self.components.items()
            if key in weights
        )  # fmt: skip
        return weighted_sum(proposals, k, excluded)

    def recommend_many(self, user_ids, k, block: int = 2000):
        """Known users' lists (precomputation): each component scores a block of users at once
        (their own block paths), then each user's candidates are blended as in recommend()."""
        lists: dict[str, list[tuple[str, float]]] = {}
        user_ids = list(user_ids)
        for start in range(0, len(user_ids), block):
            users = user_ids[start : start + block]
            tiers = {u: tier_of(self.interaction_count(u, [])) for u in users}
            used = {key for u in users for key in self.weights_for(tiers[u])}
            proposals = {
                key: self.components[key].recommend_many(users, self.candidates)
                for key in sorted(used)
            }
            for user in users:
                seen = self.seen_items(user)
                lists[user] = weighted_sum(
                    (
                        (weight, scaled((s, v) for s, v in proposals[key].get(user, [])
                                        if s not in seen))
                        for key, weight in self.weights_for(tiers[user]).items()
                    ),
                    k,
                )  # fmt: skip
        return lists

    def similar_items(self, sku, k):
        """Neighbours from the item-to-item components, each scaled to its best and summed."""
        return weighted_sum(
            (
                (1.0, scaled(learner.similar_items(sku, self.candidates)))
                for key in ("sequence", "item_knn")
                if (learner := self.components.get(key))
            ),
            k,
        )

    def tune_blend(self, scorer: Any) -> dict[str, Any]:
        """Pick each tier's weights on the scorer's shoppers (the validation split): every
        combination of weight steps per component, scored at once (recs.learners.blending)."""
        search = WeightSearch(sorted(self.components))
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
            tier = tier_of(self.interaction_count(shopper.user_id, shopper.history))
            search.add(tier, per_component, skus, shopper.relevant)
        for tier in search.totals:
            self.tier_weights[tier] = search.best(tier, DEFAULT_WEIGHTS)
        return {"tier_weights": self.tier_weights}
