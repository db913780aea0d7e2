"""Content-based: products as sparse vectors of their words, category, brand and price band."""

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from recs.learners.base import CatalogItem, Interactions, Learner, top_k

PRICE_BANDS = 5
MAX_FEATURES = 100_000
# Only this many of a shopper's latest items shape the profile: with the default decay older
# ones weigh under 1e-3 anyway, and it bounds the cost of one call.
HISTORY_LIMIT = 50


def _text(item: CatalogItem) -> str:
    attributes = " ".join(
        " ".join(map(str, v)) if isinstance(v, list) else str(v) for v in item.attributes.values()
    )
    return f"{item.title} {item.description} {attributes}"


def _unit_rows(matrix: sparse.spmatrix) -> sparse.csr_matrix:
    """Rows scaled to unit length (empty rows stay empty); any shape, including 0 x 0."""
    matrix = sparse.csr_matrix(matrix, dtype=np.float32)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sparse.csr_matrix(sparse.diags_array(scale.astype(np.float32)) @ matrix)


def _tag_matrix(
    catalog: Sequence[CatalogItem],
    codes: dict[str, int] | None = None,
    edges: np.ndarray | None = None,
) -> tuple[sparse.csr_matrix, dict[str, int], np.ndarray]:
    """Items x tags (category prefixes, brand, price band), each row l2-normalised; with the
    tag columns and price-band edges used.

    Items without a price (0) get no price band: one shared "unknown" band would make every
    such item alike. Given the `codes` and `edges` of a fit, new items are placed in its
    columns and bands, and tags the fit never saw are left out."""
    prices = np.asarray([item.price for item in catalog], dtype=np.float64)
    priced = prices > 0
    if edges is None:
        edges = (
            np.quantile(prices[priced], np.linspace(0, 1, PRICE_BANDS + 1)[1:-1])
            if priced.any()
            else np.zeros(0)
        )
    bands = np.searchsorted(edges, prices)
    grow = codes is None
    codes = {} if codes is None else codes
    rows: list[int] = []
    cols: list[int] = []
    for row, item in enumerate(catalog):
        tags = []
        path = item.category_path
        while path:
            tags.append("cat=" + path)
            path = path.rpartition("/")[0]
        if item.brand:
            tags.append("brand=" + item.brand.lower())
        if priced[row]:
            tags.append(f"price={bands[row]}")
        for tag in tags:
            column = codes.setdefault(tag, len(codes)) if grow else codes.get(tag)
            if column is not None:
                rows.append(row)
                cols.append(column)
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(catalog), len(codes))
    )
    return _unit_rows(matrix), codes, edges


# Catalogs up to this size search every product for neighbours; larger ones search the category.
FULL_SEARCH_ITEMS = 50_000
# How many scores one block of similar_items_for_new holds densely (about 16 MB of float64).
FOLD_IN_BLOCK_CELLS = 2_000_000


class ContentLearner(Learner):
    """Similar products by text (TF-IDF), category, brand and price band; cold items included.

    Only the catalog given to fit is ever recommended (the evaluation passes the catalog as it
    was at its cut). Each call costs one sparse matrix-vector product, O(non-zeros)."""

    key = "content"
    search_space = {"tag_weight": [0.25, 0.5, 1.0], "recency_decay": [0.5, 0.85, 1.0]}

    def __init__(
        self,
        tag_weight: float = 0.5,
        recency_decay: float = 0.85,
        max_features: int = MAX_FEATURES,
    ):
        self.tag_weight = tag_weight
        self.recency_decay = recency_decay
        self.max_features = max_features

    def params(self) -> dict[str, Any]:
        return {
            "tag_weight": self.tag_weight,
            "recency_decay": self.recency_decay,
            "max_features": self.max_features,
        }

    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        unique = {}
        for item in catalog:
            unique.setdefault(item.sku, item)
        catalog = [unique[sku] for sku in sorted(unique)]
        # Sorted, so that a SKU's row is found by binary search: no million-entry dict to keep.
        self.items = np.asarray([item.sku for item in catalog], dtype=object)
        # The fitted vocabulary, tag columns and price bands are kept, so that products added
        # after the fit can be placed in the same space (similar_items_for_new).
        vectorizer = TfidfVectorizer(
            sublinear_tf=True,
            stop_words="english",
            token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b",
            max_features=self.max_features,
            dtype=np.float32,
        )
        try:
            text = vectorizer.fit_transform([_text(item) for item in catalog])
            self.vectorizer: TfidfVectorizer | None = vectorizer
        except ValueError:  # no words at all (e.g. a CSV whose titles are ids): tags only
            text = sparse.csr_matrix((len(catalog), 0), dtype=np.float32)
            self.vectorizer = None
        # Each product's most specific category: neighbours of a large catalog are searched
        # within it (similar_items_many).
        self.categories = np.asarray([item.category_path for item in catalog], dtype=object)
        tags, self.tag_codes, self.price_edges = _tag_matrix(catalog)
        self.vectors = self._combine(text, tags)
        return self

    def _combine(self, text: sparse.spmatrix, tags: sparse.spmatrix) -> sparse.csr_matrix:
        tags = tags * np.float32(self.tag_weight)
        return _unit_rows(sparse.hstack([text, tags], format="csr", dtype=np.float32))

    @property
    def can_fold_in(self) -> bool:
        """False for a model pickled before similar_items_for_new existed: retrain it."""
        return hasattr(self, "tag_codes") and hasattr(self, "vectors")

    def _vectorize(self, items: Sequence[CatalogItem]) -> sparse.csr_matrix:
        """New items in the fitted feature space: words, tags and price bands the fit never
        saw are left out (until the next training)."""
        if self.vectorizer is None:
            text = sparse.csr_matrix((len(items), 0), dtype=np.float32)
        else:
            text = self.vectorizer.transform([_text(item) for item in items])
        tags, _, _ = _tag_matrix(items, self.tag_codes, self.price_edges)
        return self._combine(text, tags)

    def similar_items_for_new(
        self, items: Sequence[CatalogItem], k: int
    ) -> dict[str, list[tuple[str, float]]]:
        """Neighbours of products created or changed since the fit, without refitting.

        Each product is vectorised with the fitted vocabulary, tag columns and price bands and
        scored against the fitted catalog and the other given products: sparse products of
        (given x features) by (features x catalog), a bounded block of rows at a time, never
        catalog x catalog. A fitted product among `items` is scored with its new vector; its
        stale row is left out. Beyond FULL_SEARCH_ITEMS the fitted candidates are those of the
        same category (all of them when the fit had none), as in similar_items_many."""
        if not self.can_fold_in:
            raise NotImplementedError("This content model predates fold-in; retrain it.")
        unique = {item.sku: item for item in items}
        items = list(unique.values())
        lists: dict[str, list[tuple[str, float]]] = {item.sku: [] for item in items}
        if not items or k <= 0:
            return lists
        new_vectors = self._vectorize(items)
        new_names = np.asarray([item.sku for item in items], dtype=object)
        names = np.concatenate([self.items, new_names])
        stale = self._positions(unique)
        large = len(self.items) > FULL_SEARCH_ITEMS
        fitted_t = self.vectors.T.tocsc()
        new_t = new_vectors.T.tocsc()
        # Rows per block so that a block's dense scores stay around FOLD_IN_BLOCK_CELLS.
        block = max(1, min(256, FOLD_IN_BLOCK_CELLS // max(len(names), 1)))
        for start in range(0, len(items), block):
            rows = new_vectors[start : start + block]
            scores = sparse.hstack([rows @ fitted_t, rows @ new_t], format="csr").toarray()
            for offset, item in enumerate(items[start : start + block]):
                row = scores[offset]
                excluded = [*stale, len(self.items) + start + offset]
                if large:
                    outside = self.categories != item.category_path
                    if not outside.all():
                        row[: len(self.items)][outside] = -np.inf
                lists[item.sku] = top_k(row, names, k, excluded)
        return lists

    def _position(self, sku: str) -> int | None:
        at = int(np.searchsorted(self.items, sku))
        return at if at < len(self.items) and self.items[at] == sku else None

    def _positions(self, skus) -> list[int]:
        return [p for sku in skus if (p := self._position(str(sku))) is not None]

    def _scores(self, positions: list[int], weights: np.ndarray) -> np.ndarray:
        """Cosine of every item to the weighted sum of these items: one pass over the matrix."""
        profile = np.asarray(weights, dtype=np.float32) @ self.vectors[positions]
        return self.vectors @ np.asarray(profile).ravel()

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        if not len(self.items):
            return []
        seen = self._positions(history)
        positions = seen[-HISTORY_LIMIT:]
        if not positions:
            return []
        weights = self.recency_decay ** np.arange(len(positions))[::-1]
        excluded = set(seen) | set(self._positions(exclude))
        return top_k(self._scores(positions, weights), self.items, k, excluded)

    def similar_items(self, sku, k):
        position = self._position(str(sku)) if len(self.items) else None
        if position is None:
            return []
        return top_k(self._scores([position], np.ones(1)), self.items, k, {position})

    def similar_items_many(self, skus, k, block: int = 256):
        """Neighbours of many products at once (precomputation), a block of rows per sparse
        product. Up to FULL_SEARCH_ITEMS products every product is a candidate, as in
        similar_items; beyond that the candidates are the products of the same category, which
        keeps a million-product catalog to minutes instead of hours."""
        positions = {str(sku): p for sku in skus if (p := self._position(str(sku))) is not None}
        lists: dict[str, list[tuple[str, float]]] = {str(sku): [] for sku in skus}
        if not positions:
            return lists
        if len(self.items) <= FULL_SEARCH_ITEMS:
            groups = [(np.fromiter(positions.values(), dtype=np.int64), None)]
        else:
            wanted = np.fromiter(positions.values(), dtype=np.int64)
            by_category: dict[str, list[int]] = {}
            for position in wanted:
                by_category.setdefault(self.categories[position], []).append(int(position))
            groups = [
                (np.asarray(members, dtype=np.int64), np.flatnonzero(self.categories == category))
                for category, members in by_category.items()
            ]
        for wanted, candidates in groups:
            pool = self.vectors if candidates is None else self.vectors[candidates]
            names = self.items if candidates is None else self.items[candidates]
            for start in range(0, len(wanted), block):
                rows = wanted[start : start + block]
                scores = (self.vectors[rows] @ pool.T).toarray()
                for offset, position in enumerate(rows):
                    own = (
                        [position] if candidates is None
                        else np.flatnonzero(candidates == position)
                    )  # fmt: skip
                    lists[str(self.items[position])] = top_k(scores[offset], names, k, own)
        return lists
