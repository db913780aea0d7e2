"""Blending ranked lists and choosing their weights on validation shoppers.

Shared by the hybrid (its components' candidates, per tier of shopper) and by the render path's
blend table (its sources, tuned in recs.evaluation.served): a blend is linear in its weights,
so each shopper's candidates are scored for every combination of a few weight steps at once,
as one matrix product, and the best combination per tier is kept.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import product

import numpy as np

WEIGHT_STEPS = (0.0, 0.25, 0.5, 1.0)


def scaled(ranked: Iterable[tuple[str, float]]) -> dict[str, float]:
    """A ranked list's scores divided by its best one; empty when nothing scored above zero."""
    ranked = list(ranked)
    best = max((score for _, score in ranked), default=0.0)
    return {sku: score / best for sku, score in ranked} if best > 0 else {}


def weighted_sum(
    proposals: Iterable[tuple[float, Mapping[str, float]]], k: int, excluded: Collection[str] = ()
) -> list[tuple[str, float]]:
    """The k best products of the weighted sum of scaled lists, ties by SKU."""
    scores: dict[str, float] = {}
    for weight, scores_of in proposals:
        for sku, score in scores_of.items():
            if sku not in excluded:
                scores[sku] = scores.get(sku, 0.0) + weight * score
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]


class WeightSearch:
    """Recall of every weight combination, summed per tier over the shoppers added."""

    def __init__(self, sources: Sequence[str], depth: int = 20, steps=WEIGHT_STEPS):
        self.sources = tuple(sources)
        grid = np.array(list(product(steps, repeat=len(self.sources)))).T
        self.grid = grid[:, grid.sum(axis=0) > 0]  # (sources, combinations)
        self.depth = depth
        self.totals: dict[str, np.ndarray] = {}

    def add(
        self,
        tier: str,
        contributions: Mapping[str, Mapping[str, float]],
        candidates: Sequence[str],
        relevant: Collection[str],
    ) -> None:
        """One shopper: each candidate's score per source; adds the Recall@depth every
        combination would have had to the tier's total."""
        total = self.totals.setdefault(tier, np.zeros(self.grid.shape[1]))
        if not candidates or not relevant:
            return
        matrix = np.array(
            [[contributions.get(s, {}).get(sku, 0.0) for s in self.sources] for sku in candidates]
        )
        scores = matrix @ self.grid  # (candidates, combinations)
        depth = min(self.depth, len(candidates))
        top = np.argpartition(-scores, depth - 1, axis=0)[:depth]
        hit = np.array([sku in relevant for sku in candidates])
        shown = np.take_along_axis(scores, top, axis=0) > 0
        total += (hit[top] & shown).sum(axis=0) / len(relevant)

    def best(self, tier: str, default: Mapping[str, float]) -> dict[str, float]:
        """The tier's best weights; the default stays unless something is strictly better."""
        total = self.totals[tier]
        default_column = np.array([default.get(s, 0.0) for s in self.sources])
        matches = np.flatnonzero((self.grid == default_column[:, None]).all(axis=0))
        column = int(np.argmax(total))
        if len(matches) and total[column] <= total[matches[0]] + 1e-12:
            return {s: float(default.get(s, 0.0)) for s in self.sources}
        return {s: float(w) for s, w in zip(self.sources, self.grid[:, column], strict=True)}
