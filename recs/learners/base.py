"""The one interface every learner implements, and the data it learns from.

Interactions are columnar integer codes into small vocabularies (users, items, event kinds,
orders, sessions, countries), so that 20M events cost a few hundred MB and every learner can
build its sparse matrices with numpy alone, in memory proportional to the non-zeros.
"""

import inspect
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, ClassVar, Self

import numpy as np
from scipy import sparse

# A shopper's events further apart than this start a new session when the data has no session ids.
SESSION_GAP_S = 30 * 60


def encode(
    values: Sequence[Any] | np.ndarray, missing: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(codes int32, vocabulary): vocabulary[codes] == values; `missing` values get code -1."""
    array = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if not len(array):
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=object)
    vocabulary, codes = np.unique(array.astype(str), return_inverse=True)
    vocabulary = vocabulary.astype(object)
    codes = codes.astype(np.int32)
    if missing is not None:
        hit = np.flatnonzero(vocabulary == missing)
        if len(hit):
            gone = int(hit[0])
            codes = np.where(codes == gone, -1, np.where(codes > gone, codes - 1, codes))
            vocabulary = np.delete(vocabulary, gone)
    return codes.astype(np.int32), vocabulary


def sessions_by_gap(
    user_codes: np.ndarray, timestamps: np.ndarray, gap_s: float = SESSION_GAP_S
) -> np.ndarray:
    """Session codes for events sorted by time: a new session when the shopper was idle > gap."""
    n = len(user_codes)
    if not n:
        return np.zeros(0, dtype=np.int32)
    order = np.lexsort((timestamps, user_codes))
    users, times = user_codes[order], timestamps[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = (users[1:] != users[:-1]) | (times[1:] - times[:-1] > gap_s)
    codes = np.empty(n, dtype=np.int32)
    codes[order] = np.cumsum(starts) - 1
    return codes


@dataclass(frozen=True, eq=False)
class Interactions:
    """Events sorted by time, as integer codes into vocabularies.

    `users[user_codes[i]]` is the i-th event's shopper, and so on. Order, session and country
    codes are -1 where unknown. Every selection shares the vocabularies, so codes stay
    comparable between a split's parts."""

    user_codes: np.ndarray  # int32
    item_codes: np.ndarray  # int32
    event_codes: np.ndarray  # int8, into event_vocabulary
    timestamps: np.ndarray  # float64 epoch seconds, UTC, ascending
    quantities: np.ndarray  # int32
    order_codes: np.ndarray  # int32, -1 unknown
    session_codes: np.ndarray  # int32, never -1: derived by inactivity gap when not given
    country_codes: np.ndarray  # int32, -1 unknown
    users: np.ndarray  # object (str)
    items: np.ndarray  # object (str)
    event_vocabulary: np.ndarray  # object (str)
    countries: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    has_order_ids: bool = False
    has_session_ids: bool = False

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "user_codes", "item_codes", "event_codes", "timestamps", "quantities",
        "order_codes", "session_codes", "country_codes",
    )  # fmt: skip

    def __len__(self) -> int:
        return len(self.user_codes)

    # Readable columns, for small data and tests: vocabulary lookups.
    @property
    def user_ids(self) -> np.ndarray:
        return self.users[self.user_codes] if len(self) else np.zeros(0, dtype=object)

    @property
    def item_ids(self) -> np.ndarray:
        return self.items[self.item_codes] if len(self) else np.zeros(0, dtype=object)

    @property
    def event_types(self) -> np.ndarray:
        return self.event_vocabulary[self.event_codes] if len(self) else np.zeros(0, dtype=object)

    @property
    def country_ids(self) -> np.ndarray:
        """Each event's country, "" when unknown."""
        vocabulary = np.append(self.countries, "").astype(object)
        return vocabulary[self.country_codes] if len(self) else np.zeros(0, dtype=object)

    def weights(self, event_weights: Mapping[str, float]) -> np.ndarray:
        """Each event's weight by its kind; kinds without a weight get 0."""
        per_kind = np.array(
            [float(event_weights.get(kind, 0.0)) for kind in self.event_vocabulary] or [0.0]
        )
        return per_kind[self.event_codes] if len(self) else np.zeros(0)

    def event_code(self, kind: str) -> int:
        """The code of an event kind, -1 when the data has none of it."""
        hit = np.flatnonzero(self.event_vocabulary == kind)
        return int(hit[0]) if len(hit) else -1

    def kinds_present(self) -> dict[str, int]:
        counts = np.bincount(self.event_codes, minlength=len(self.event_vocabulary))
        return {
            str(kind): int(n) for kind, n in zip(self.event_vocabulary, counts, strict=True) if n
        }

    def select(self, mask: np.ndarray) -> "Interactions":
        """The events where mask is true (or at these positions); vocabularies are shared."""
        return self._replace(**{name: getattr(self, name)[mask] for name in self.COLUMNS})

    def before(self, cutoff: float) -> "Interactions":
        return self.select(slice(0, int(np.searchsorted(self.timestamps, cutoff, side="left"))))

    def since(self, cutoff: float) -> "Interactions":
        return self.select(slice(int(np.searchsorted(self.timestamps, cutoff, side="left")), None))

    def _replace(self, **changes: Any) -> "Interactions":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Interactions(**values)

    @cached_property
    def user_index(self) -> dict[str, int]:
        return {str(user): code for code, user in enumerate(self.users)}

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {str(item): code for code, item in enumerate(self.items)}

    @classmethod
    def from_codes(
        cls,
        *,
        user_codes: np.ndarray,
        item_codes: np.ndarray,
        event_codes: np.ndarray,
        timestamps: np.ndarray,
        users: np.ndarray,
        items: np.ndarray,
        event_vocabulary: np.ndarray,
        quantities: np.ndarray | None = None,
        order_codes: np.ndarray | None = None,
        session_codes: np.ndarray | None = None,
        country_codes: np.ndarray | None = None,
        countries: np.ndarray | None = None,
    ) -> "Interactions":
        """From code columns in any order: sorts by time (stable) and derives sessions by
        inactivity gap when no session codes are given."""
        n = len(user_codes)
        timestamps = np.asarray(timestamps, dtype=np.float64)
        columns = {
            "user_codes": np.asarray(user_codes, dtype=np.int32),
            "item_codes": np.asarray(item_codes, dtype=np.int32),
            "event_codes": np.asarray(event_codes, dtype=np.int8),
            "timestamps": timestamps,
            "quantities": np.ones(n, dtype=np.int32)
            if quantities is None
            else np.asarray(quantities, dtype=np.int32),
            "order_codes": np.full(n, -1, dtype=np.int32)
            if order_codes is None
            else np.asarray(order_codes, dtype=np.int32),
            "country_codes": np.full(n, -1, dtype=np.int32)
            if country_codes is None
            else np.asarray(country_codes, dtype=np.int32),
        }
        has_sessions = (
            session_codes is not None and bool(n) and bool((np.asarray(session_codes) >= 0).all())
        )
        if has_sessions:
            columns["session_codes"] = np.asarray(session_codes, dtype=np.int32)
        if n and np.any(timestamps[1:] < timestamps[:-1]):
            order = np.argsort(timestamps, kind="stable")
            columns = {name: array[order] for name, array in columns.items()}
        if not has_sessions:
            columns["session_codes"] = sessions_by_gap(columns["user_codes"], columns["timestamps"])
        return cls(
            **columns,
            users=np.asarray(users, dtype=object),
            items=np.asarray(items, dtype=object),
            event_vocabulary=np.asarray(event_vocabulary, dtype=object),
            countries=np.zeros(0, dtype=object)
            if countries is None
            else np.asarray(countries, dtype=object),
            has_order_ids=bool(n) and bool((columns["order_codes"] >= 0).any()),
            has_session_ids=has_sessions,
        )

    @classmethod
    def from_columns(cls, **columns: Sequence[Any]) -> "Interactions":
        """From readable columns (user_ids, item_ids, event_types, timestamps; optional
        quantities, order_ids, session_ids, countries), "" meaning unknown."""
        user_codes, users = encode(columns["user_ids"])
        item_codes, items = encode(columns["item_ids"])
        event_codes, event_vocabulary = encode(columns["event_types"])
        n = len(user_codes)
        order_codes = (
            encode(columns["order_ids"], missing="")[0] if "order_ids" in columns else None
        )
        country_codes, countries = (
            encode(columns["countries"], missing="") if "countries" in columns else (None, None)
        )
        session_codes = None
        if "session_ids" in columns:
            session_codes, _ = encode(columns["session_ids"], missing="")
            if n and (session_codes < 0).any():
                session_codes = None  # partly unknown: derive all of them the same way
        return cls.from_codes(
            user_codes=user_codes, item_codes=item_codes, event_codes=event_codes,
            timestamps=np.asarray(columns["timestamps"], dtype=np.float64),
            users=users, items=items, event_vocabulary=event_vocabulary,
            quantities=np.asarray(columns["quantities"]) if "quantities" in columns else None,
            order_codes=order_codes, session_codes=session_codes,
            country_codes=country_codes, countries=countries,
        )  # fmt: skip


# Shoppers by their events before a cut (the thresholds of the serving tier router): the tiers
# metrics are reported by and the hybrid's blend weights are chosen by.
TIERS = (("0", 0, 0), ("1-9", 1, 9), ("10+", 10, None))


def tier_of(interaction_count: int) -> str:
    return next(
        name
        for name, low, high in TIERS
        if interaction_count >= low and (high is None or interaction_count <= high)
    )


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
    """Dense integer positions for the SKUs and users of a learner's matrices."""

    items: np.ndarray
    users: np.ndarray

    @cached_property
    def item_position(self) -> dict[str, int]:
        return {str(sku): i for i, sku in enumerate(self.items)}

    @cached_property
    def user_position(self) -> dict[str, int]:
        return {str(user): u for u, user in enumerate(self.users)}


def learner_items(interactions: Interactions, catalog: Sequence[CatalogItem]) -> np.ndarray:
    """The SKUs a learner knows: the catalog it was given and every item it saw, sorted."""
    seen = interactions.items[np.unique(interactions.item_codes)] if len(interactions) else []
    return np.asarray(sorted({item.sku for item in catalog} | {str(s) for s in seen}), dtype=object)


def item_columns(interactions: Interactions, items: Sequence[str]) -> np.ndarray:
    """Each event's column in `items` (-1 for items outside it), vectorised over the events."""
    position = {str(sku): i for i, sku in enumerate(items)}
    remap = np.fromiter(
        (position.get(str(sku), -1) for sku in interactions.items),
        dtype=np.int64, count=len(interactions.items),
    )  # fmt: skip
    return remap[interactions.item_codes] if len(interactions) else np.zeros(0, dtype=np.int64)


def top_k(
    scores: np.ndarray, items: np.ndarray, k: int, exclude_positions: Collection[int] = ()
) -> list[tuple[str, float]]:
    """The k best (item, score) pairs with a positive score, excluded positions left out."""
    scores = scores.astype(np.float64, copy=True)
    if len(exclude_positions):
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


def keep_top_per_row(matrix: sparse.csr_matrix, keep: int) -> sparse.csr_matrix:
    """Zero all but the `keep` largest entries of each row (vectorised; ties by column)."""
    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    counts = np.diff(matrix.indptr)
    if not len(counts) or counts.max(initial=0) <= keep:
        return matrix
    row = np.repeat(np.arange(matrix.shape[0]), counts)
    order = np.lexsort((matrix.indices, -matrix.data, row))
    rank = np.arange(len(order)) - np.repeat(matrix.indptr[:-1], counts)
    chosen = order[rank < keep]
    return sparse.csr_matrix(
        (matrix.data[chosen], (row[chosen], matrix.indices[chosen])), shape=matrix.shape
    )


class Learner(ABC):
    """Fits on interactions and a catalog; produces candidates for a shopper or an item."""

    key: ClassVar[str]
    # Hyper-parameters tuned on the validation split: name -> values to try. The evaluation
    # samples the same number of configurations from every learner's space.
    search_space: ClassVar[Mapping[str, Sequence[Any]]] = {}
    # True when fits differ by random seed: then __init__ takes `seed` and results are
    # reported as mean and spread over several seeds.
    stochastic: ClassVar[bool] = False

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

    def similar_items_many(self, skus: Sequence[str], k: int) -> dict[str, list[tuple[str, float]]]:
        """Neighbours of many products (precomputation); learners may do this in blocks."""
        return {sku: self.similar_items(sku, k) for sku in skus}

    def recommend_many(self, user_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, float]]]:
        """Lists for many known users (precomputation); learners may do this in matrix blocks."""
        return {user_id: self.recommend(user_id, [], k) for user_id in user_ids}

    def params(self) -> dict[str, Any]:
        return {}


def construct(
    cls: type[Learner],
    params: Mapping[str, Any],
    *,
    event_weights: Mapping[str, float] | None = None,
    seed: int = 0,
) -> Learner:
    """A learner of `cls` with these parameters, the shop's event weights where it takes them
    and a seed where it is stochastic (given parameters win over both)."""
    kwargs = dict(params)
    if event_weights and "event_weights" in inspect.signature(cls).parameters:
        kwargs.setdefault("event_weights", dict(event_weights))
    if cls.stochastic:
        kwargs.setdefault("seed", seed)
    return cls(**kwargs)
