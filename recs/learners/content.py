"""Content-based: products as sparse vectors of their words, category, brand and price band."""

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from recs.learners.base import CatalogItem, Interactions, Learner, top_k

PRICE_BANDS = 5


def _text(item: CatalogItem) -> str:
    attributes = " ".join(
        " ".join(map(str, v)) if isinstance(v, list) else str(v) for v in item.attributes.values()
    )
    return f"{item.title} {item.description} {attributes}"


def _tags(item: CatalogItem, price_edges: np.ndarray) -> list[str]:
    tags = []
    parts = item.category_path.split("/") if item.category_path else []
    for depth in range(1, len(parts) + 1):
        tags.append("cat=" + "/".join(parts[:depth]))
    if item.brand:
        tags.append(f"brand={item.brand.lower()}")
    tags.append(f"price={int(np.searchsorted(price_edges, item.price))}")
    return tags


class ContentLearner(Learner):
    """Similar products by text (TF-IDF), category, brand and price band; cold items included."""

    key = "content"

    def __init__(self, tag_weight: float = 0.5, recency_decay: float = 0.85):
        self.tag_weight = tag_weight
        self.recency_decay = recency_decay

    def params(self) -> dict[str, Any]:
        return {"tag_weight": self.tag_weight, "recency_decay": self.recency_decay}

    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        self.items = np.asarray([item.sku for item in catalog], dtype=object)
        self.position = {sku: i for i, sku in enumerate(self.items)}
        prices = np.asarray([item.price for item in catalog], dtype=float)
        price_edges = (
            np.quantile(prices, np.linspace(0, 1, PRICE_BANDS + 1)[1:-1])
            if len(prices)
            else np.array([])
        )
        try:
            text = TfidfVectorizer(
                sublinear_tf=True, stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b"
            ).fit_transform([_text(item) for item in catalog])
        except ValueError:  # no words at all (e.g. a CSV whose titles are ids): tags only
            text = sparse.csr_matrix((len(catalog), 0))
        tags = TfidfVectorizer(analyzer=lambda tags: tags, use_idf=False, norm="l2").fit_transform(
            [_tags(item, price_edges) for item in catalog]
        )
        self.vectors = normalize(sparse.hstack([text, tags * self.tag_weight]).tocsr())
        return self

    def _scores_for(self, positions: list[int], weights: np.ndarray) -> np.ndarray:
        profile = self.vectors[positions].T @ weights
        return np.asarray(self.vectors @ profile).ravel()

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        positions = [self.position[sku] for sku in history if sku in self.position]
        if not positions:
            return []
        weights = self.recency_decay ** np.arange(len(positions))[::-1]
        excluded = {self.position[s] for s in {*exclude, *history} if s in self.position}
        return top_k(self._scores_for(positions, weights), self.items, k, excluded)

    def similar_items(self, sku, k):
        position = self.position.get(sku)
        if position is None:
            return []
        scores = np.asarray((self.vectors @ self.vectors[position].T).todense()).ravel()
        return top_k(scores, self.items, k, {position})
