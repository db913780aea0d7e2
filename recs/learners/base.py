"""The one interface every learner implements, and the data it learns from."""

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class Interactions:
    """Columnar interactions sorted by time; numpy arrays of equal length."""

    user_ids: np.ndarray  # str
    item_ids: np.ndarray  # str
    event_types: np.ndarray  # str
    timestamps: np.ndarray  # float64 epoch seconds, UTC
    quantities: np.ndarray  # int
    order_ids: np.ndarray  # str, "" when unknown
    countries: np.ndarray  # str, "" when unknown

    def __len__(self) -> int:
        return len(self.user_ids)

    def weights(self, event_weights: Mapping[str, float]) -> np.ndarray:
        lookup = np.vectorize(lambda t: event_weights.get(t, 0.0), otypes=[float])
        return lookup(self.event_types) if len(self) else np.zeros(0)

    def select(self, mask: np.ndarray) -> "Interactions":
        return Interactions(
            **{name: getattr(self, name)[mask] for name in self.__dataclass_fields__}
        )

    @classmethod
    def from_columns(cls, **columns: Sequence[Any]) -> "Interactions":
        arrays = {
            "user_ids": np.asarray(columns["user_ids"], dtype=object),
            "item_ids": np.asarray(columns["item_ids"], dtype=object),
            "event_types": np.asarray(columns["event_types"], dtype=object),
            "timestamps": np.asarray(columns["timestamps"], dtype=np.float64),
        }
        n = len(arrays["user_ids"])
        arrays["quantities"] = np.asarray(columns.get("quantities", np.ones(n)), dtype=np.int64)
        arrays["order_ids"] = np.asarray(columns.get("order_ids", [""] * n), dtype=object)
        arrays["countries"] = np.asarray(columns.get("countries", [""] * n), dtype=object)
        order = np.argsort(arrays["timestamps"], kind="stable")
        return cls(**{name: array[order] for name, array in arrays.items()})


@dataclass(frozen=True)
class CatalogItem:
    sku: str
    title: str
    description: str = ""
    category_path: str = ""
    brand: str = ""
    price: float = 0.0
    attributes: Mapping[str, Any] = field(default_factory=dict)
    launched_at: float = 0.0


@dataclass
class ItemIndex:
    """Dense integer ids for SKUs and users, shared by the matrix learners."""

    items: np.ndarray
    users: np.ndarray

    def __post_init__(self) -> None:
        self.item_position = {sku: i for i, sku in enumerate(self.items)}
        self.user_position = {user: u for u, user in enumerate(self.users)}


def user_item_matrix(
    interactions: Interactions, items: Sequence[str], weights: np.ndarray
) -> tuple[sparse.csr_matrix, ItemIndex]:
    """Users x items, summing event weights; items outside `items` are ignored."""
    users = np.unique(interactions.user_ids[interactions.user_ids != ""])
    index = ItemIndex(items=np.asarray(items, dtype=object), users=users)
    rows, cols, values = [], [], []
    for user, item, weight in zip(
        interactions.user_ids, interactions.item_ids, weights, strict=True
    ):
        col = index.item_position.get(item)
        if col is None or not user or weight <= 0:
            continue
        rows.append(index.user_position[user])
        cols.append(col)
        values.append(weight)
    matrix = sparse.csr_matrix(
        (values, (rows, cols)), shape=(len(users), len(items)), dtype=np.float64
    )
    matrix.sum_duplicates()
    return matrix, index


def top_k(
    scores: np.ndarray, items: np.ndarray, k: int, exclude_positions: Collection[int] = ()
) -> list[tuple[str, float]]:
    """The k best (item, score) pairs with a positive score, excluded positions left out."""
    scores = scores.astype(np.float64, copy=True)
    if exclude_positions:
        scores[list(exclude_positions)] = -np.inf
    k = min(k, len(scores))
    if k <= 0:
        return []
    # Ties at the cut are broken by catalog position, so that a deeper list (larger k) always
    # starts with the shorter one: refreshes can extend a cached list without reordering it.
    threshold = scores[np.argpartition(-scores, k - 1)[k - 1]]
    candidates = np.flatnonzero(scores >= threshold)
    ranked = candidates[np.lexsort((candidates, -scores[candidates]))][:k]
    return [
        (str(items[i]), float(scores[i]))
        for i in ranked
        if scores[i] > 0 and np.isfinite(scores[i])
    ]


class Learner(ABC):
    """Fits on interactions and a catalog; produces candidates for a shopper or an item."""

    key: ClassVar[str]

    @abstractmethod
    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        """Learn from interactions (sorted by time) and the catalog."""

    @abstractmethod
    def recommend(
        self,
        user_id: str | None,
        history: Sequence[str],
        k: int,
        *,
        exclude: Collection[str] = (),
        context: Mapping[str, str] | None = None,
    ) -> list[tuple[str, float]]:
        """The k best items for a shopper whose items so far are `history` (most recent last)."""

    def similar_items(self, sku: str, k: int) -> list[tuple[str, float]]:
        """Items like this one; [] when the learner has no notion of it."""
        return []

    def recommend_many(self, user_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, float]]]:
        """Lists for many known users (precomputation); learners may do this in matrix blocks."""
        return {user_id: self.recommend(user_id, [], k) for user_id in user_ids}

    def params(self) -> dict[str, Any]:
        return {}
