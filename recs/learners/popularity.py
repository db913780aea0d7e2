"""Popularity: global, per segment (country, hour band) and per category.

`popularity` and `trending` rank by event-weighted counts (trending with a time decay measured
from the end of the training data); `demographic` picks the list of the visitor's segment.
Every list is summed with numpy over integer codes, so fitting costs O(events + items).
"""

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Self

import numpy as np
from scipy import sparse

from recs.learners.base import CatalogItem, Interactions, Learner

DEFAULT_EVENT_WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0}
HOUR_BANDS = ((0, 6, "night"), (6, 12, "morning"), (12, 18, "afternoon"), (18, 24, "evening"))
LIST_SIZE = 500
MIN_SEGMENT_ITEMS = 20

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S
# Trending's default half-life: this share of the training span, kept within sensible bounds
# (a 30-day click log gets 36 h, a 20-year ratings log 60 days).
DEFAULT_HALF_LIFE_FRACTION = 0.05
HALF_LIFE_BOUNDS_H = (6.0, 60 * 24.0)
# Shortest half-life a fraction may derive: below it the decay only measures clock noise.
MIN_HALF_LIFE_H = 1.0
EVENT_CHUNK = 1 << 21

# The band index of each UTC hour of the day.
_BAND_OF_HOUR = np.array(
    [next(b for b, (start, end, _) in enumerate(HOUR_BANDS) if start <= h < end) for h in range(24)]
)


def hour_band(hour: int) -> str:
    return HOUR_BANDS[int(_BAND_OF_HOUR[hour])][2]


def _span_s(interactions: Interactions) -> float:
    if not len(interactions):
        return 0.0
    return float(interactions.timestamps[-1] - interactions.timestamps[0])


def _ranked_rows(
    matrix: sparse.csr_matrix, items: np.ndarray, size: int
) -> list[list[tuple[str, float]]]:
    """Each row's `size` best (sku, score) with a positive score, ties by item code.

    A loop over rows (segments), each a partial sort of its non-zeros: O(non-zeros) in all."""
    matrix = matrix.tocsr()
    matrix.sum_duplicates()
    if size <= 0:
        return [[] for _ in range(matrix.shape[0])]
    lists = []
    for row in range(matrix.shape[0]):
        span = slice(matrix.indptr[row], matrix.indptr[row + 1])
        scores, codes = matrix.data[span], matrix.indices[span]
        positive = np.flatnonzero(scores > 0)
        if len(positive) > size:
            positive = positive[np.argpartition(-scores[positive], size - 1)[:size]]
            # Keep every tie of the cut-off score, so that ties are broken by code below.
            cut = scores[positive].min()
            positive = np.flatnonzero(scores >= cut)
        chosen = positive[np.lexsort((codes[positive], -scores[positive]))][:size]
        lists.append(list(zip(items[codes[chosen]], scores[chosen].tolist(), strict=True)))
    return lists


def _category_prefixes(
    interactions: Interactions, catalog: Sequence[CatalogItem]
) -> tuple[sparse.csr_matrix, list[str]]:
    """(prefixes x items indicator, prefix names): "home/candles" also counts for "home".

    One dict lookup per catalog item and per item code; prefixes are built per distinct path."""
    path_of = {item.sku: item.category_path for item in catalog if item.category_path}
    paths = sorted(set(path_of.values()))
    path_code = {path: p for p, path in enumerate(paths)}
    item_path = np.fromiter(
        (path_code.get(path_of.get(str(sku), ""), -1) for sku in interactions.items),
        dtype=np.int64, count=len(interactions.items),
    )  # fmt: skip
    prefixes: dict[str, int] = {}
    pairs = []  # (path code, prefix code)
    for p, path in enumerate(paths):
        while path:
            pairs.append((p, prefixes.setdefault(path, len(prefixes))))
            path = path.rpartition("/")[0]
    pair_array = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    path_prefix = sparse.csr_matrix(
        (np.ones(len(pair_array)), (pair_array[:, 0], pair_array[:, 1])),
        shape=(len(paths), len(prefixes)),
    )
    known = np.flatnonzero(item_path >= 0)
    item_of_path = sparse.csr_matrix(
        (np.ones(len(known)), (item_path[known], known)), shape=(len(paths), len(item_path))
    )
    return (path_prefix.T @ item_of_path).tocsr(), list(prefixes)


class PopularityLearner(Learner):
    """Most popular items overall, and per segment and category.

    `recent_fraction` keeps only the last share of the training span (1.0 = all of it): on
    seasonal data the recent past predicts the next weeks better than all-time counts, which
    the validation split decides."""

    key = "popularity"
    search_space = {"recent_fraction": [1.0, 0.5, 0.1]}
    # Context keys in the order a visitor's segment is tried; the first with enough items wins.
    segment_order: tuple[str, ...] = ()

    def __init__(
        self,
        event_weights: Mapping[str, float] | None = None,
        half_life_hours: float | None = None,
        list_size: int = LIST_SIZE,
        recent_fraction: float = 1.0,
    ):
        self.event_weights = dict(event_weights or DEFAULT_EVENT_WEIGHTS)
        self.half_life_hours = half_life_hours
        self.list_size = list_size
        self.recent_fraction = recent_fraction
        self.fitted_half_life_hours: float | None = None
        self.global_list: list[tuple[str, float]] = []
        self.segment_lists: dict[str, list[tuple[str, float]]] = {}

    def params(self) -> dict[str, Any]:
        return {
            "event_weights": self.event_weights,
            "half_life_hours": self.half_life_hours,
            "recent_fraction": self.recent_fraction,
            "fitted_half_life_hours": self.fitted_half_life_hours,
        }

    def _half_life_h(self, span_s: float) -> float | None:
        """The decay's half-life for data spanning span_s seconds; None = no decay."""
        return self.half_life_hours

    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        data = interactions
        if self.recent_fraction < 1.0 and len(data):
            end = data.timestamps[-1]
            data = data.since(end - self.recent_fraction * _span_s(data))
        self.fitted_half_life_hours = self._half_life_h(_span_s(data)) if len(data) else None
        items, n_items = interactions.items, len(interactions.items)
        n_countries = len(interactions.countries)
        per_kind = np.array(
            [float(self.event_weights.get(kind, 0.0)) for kind in data.event_vocabulary] or [0.0]
        )
        totals = np.zeros(n_items)
        by_band = np.zeros(len(HOUR_BANDS) * n_items)
        by_country = sparse.csr_matrix((n_countries, n_items))
        # In chunks, so that the per-event temporaries stay small whatever the number of events.
        for start in range(0, len(data), EVENT_CHUNK):
            part = slice(start, start + EVENT_CHUNK)
            codes, times = data.item_codes[part].astype(np.int64), data.timestamps[part]
            weights = per_kind[data.event_codes[part]]
            if self.fitted_half_life_hours:
                age_h = (data.timestamps[-1] - times) / HOUR_S
                weights = weights * np.exp2(-age_h / self.fitted_half_life_hours)
            totals += np.bincount(codes, weights=weights, minlength=n_items)
            hour = ((times % DAY_S) // HOUR_S).astype(np.int64)
            by_band += np.bincount(
                _BAND_OF_HOUR[hour] * n_items + codes, weights=weights, minlength=len(by_band)
            )
            countries = data.country_codes[part]
            known = countries >= 0
            if known.any():
                by_country += sparse.csr_matrix(
                    (weights[known], (countries[known], codes[known])),
                    shape=(n_countries, n_items),
                )
        self.global_list = _ranked_rows(sparse.csr_matrix(totals), items, self.list_size)[0]
        in_prefix, prefixes = _category_prefixes(interactions, catalog)
        segments = sparse.vstack(
            [
                by_country,
                sparse.csr_matrix(by_band.reshape(len(HOUR_BANDS), n_items)),
                in_prefix.multiply(totals[np.newaxis, :]),
            ],
            format="csr",
        )
        names = [
            *(f"country:{country}" for country in interactions.countries),
            *(f"hour:{name}" for _, _, name in HOUR_BANDS),
            *(f"category:{prefix}" for prefix in prefixes),
        ]
        ranked = _ranked_rows(segments, items, self.list_size)
        self.segment_lists = {name: lst for name, lst in zip(names, ranked, strict=True) if lst}
        return self

    def segment_names(self) -> list[str]:
        return sorted(self.segment_lists)

    def popular(
        self, segment: str | None, k: int, exclude: Collection[str] = ()
    ) -> list[tuple[str, float]]:
        """A segment's list ("country:Germany", "category:home"), backfilled from the global one."""
        ranked = self.segment_lists.get(segment, []) if segment else []
        chosen: list[tuple[str, float]] = []
        seen = set(exclude)
        for sku, score in [*ranked, *self.global_list]:
            if sku not in seen:
                chosen.append((sku, score))
                seen.add(sku)
                if len(chosen) >= k:
                    break
        return chosen

    def _segment_for(self, context: Mapping[str, str] | None) -> str | None:
        context = context or {}
        for name in self.segment_order:
            value = context.get(name)
            if name == "hour" and value is not None:
                value = hour_band(int(value))
            segment = f"{name}:{value}" if value else None
            if segment and len(self.segment_lists.get(segment, [])) >= MIN_SEGMENT_ITEMS:
                return segment
        return None

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        return self.popular(self._segment_for(context), k, exclude={*exclude, *history})


class TrendingLearner(PopularityLearner):
    """Popularity with exponential time decay: what is selling now rises fast.

    The half-life is `half_life_hours` when given; otherwise `half_life_fraction` of the
    training span (at least MIN_HALF_LIFE_H); with neither, DEFAULT_HALF_LIFE_FRACTION of the
    span clamped to HALF_LIFE_BOUNDS_H. A fixed half-life would suit either a 30-day click log or
    a 20-year ratings log, never both."""

    key = "trending"
    search_space = {"half_life_fraction": [0.01, 0.03, 0.1, 0.3]}

    def __init__(
        self,
        event_weights: Mapping[str, float] | None = None,
        half_life_hours: float | None = None,
        list_size: int = LIST_SIZE,
        half_life_fraction: float | None = None,
    ):
        super().__init__(event_weights, half_life_hours, list_size)
        self.half_life_fraction = half_life_fraction

    def params(self) -> dict[str, Any]:
        return {**super().params(), "half_life_fraction": self.half_life_fraction}

    def _half_life_h(self, span_s: float) -> float | None:
        if self.half_life_hours:
            return float(self.half_life_hours)
        span_h = span_s / HOUR_S
        if self.half_life_fraction:
            return max(self.half_life_fraction * span_h, MIN_HALF_LIFE_H)
        low, high = HALF_LIFE_BOUNDS_H
        return float(np.clip(DEFAULT_HALF_LIFE_FRACTION * span_h, low, high))


class DemographicLearner(PopularityLearner):
    """For anonymous visitors: popular in their segment (country, device, referrer, time of day)."""

    key = "demographic"
    segment_order = ("country", "device", "referrer", "hour")
