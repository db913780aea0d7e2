"""Ranking metrics at K for one shopper, and catalog coverage."""

import math
from collections.abc import Collection, Iterable, Sequence


def recall_at(recommended: Sequence[str], relevant: Collection[str], k: int) -> float:
    return len(set(recommended[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def hit_rate_at(recommended: Sequence[str], relevant: Collection[str], k: int) -> float:
    return 1.0 if set(recommended[:k]) & set(relevant) else 0.0


def ndcg_at(recommended: Sequence[str], relevant: Collection[str], k: int) -> float:
    relevant = set(relevant)
    dcg = sum(
        1 / math.log2(rank + 2) for rank, sku in enumerate(recommended[:k]) if sku in relevant
    )
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def coverage(recommendation_lists: Iterable[Sequence[str]], catalog_size: int, k: int) -> float:
    """Share of the catalog that appears in anyone's top k."""
    shown = {sku for recommended in recommendation_lists for sku in recommended[:k]}
    return len(shown) / catalog_size if catalog_size else 0.0
