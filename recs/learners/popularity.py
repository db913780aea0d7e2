"""Popularity: global, per segment (country, device, referrer, hour band) and per category.

`popularity` and `trending` rank by event-weighted counts (trending with a time decay measured
from the end of the training data); `demographic` picks the list of the visitor's segment.
"""

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Self

import numpy as np

from recs.learners.base import CatalogItem, Interactions, Learner

DEFAULT_EVENT_WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0}
HOUR_BANDS = ((0, 6, "night"), (6, 12, "morning"), (12, 18, "afternoon"), (18, 24, "evening"))
LIST_SIZE = 500
MIN_SEGMENT_ITEMS = 20


def hour_band(hour: int) -> str:
    return next(name for start, end, name in HOUR_BANDS if start <= hour < end)


def _ranked(scores: dict[str, float], size: int) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:size]


class PopularityLearner(Learner):
    """Most popular items overall, and per segment and category."""

    key = "popularity"
    # Context keys in the order a visitor's segment is tried; the first with enough items wins.
    segment_order: tuple[str, ...] = ()

    def __init__(
        self,
        event_weights: Mapping[str, float] | None = None,
        half_life_hours: float | None = None,
        list_size: int = LIST_SIZE,
    ):
        self.event_weights = dict(event_weights or DEFAULT_EVENT_WEIGHTS)
        self.half_life_hours = half_life_hours
        self.list_size = list_size
        self.global_list: list[tuple[str, float]] = []
        self.segment_lists: dict[str, list[tuple[str, float]]] = {}

    def params(self) -> dict[str, Any]:
        return {"event_weights": self.event_weights, "half_life_hours": self.half_life_hours}

    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        weights = interactions.weights(self.event_weights)
        if self.half_life_hours and len(interactions):
            age_h = (interactions.timestamps.max() - interactions.timestamps) / 3600
            weights = weights * np.power(2.0, -age_h / self.half_life_hours)
        categories = {item.sku: item.category_path for item in catalog}
        totals: dict[str, float] = defaultdict(float)
        segments: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        hours = [datetime.fromtimestamp(t, tz=UTC).hour for t in interactions.timestamps]
        for item, weight, country, hour in zip(
            interactions.item_ids, weights, interactions.countries, hours, strict=True
        ):
            totals[item] += weight
            if country:
                segments[f"country:{country}"][item] += weight
            segments[f"hour:{hour_band(hour)}"][item] += weight
            category = categories.get(item, "")
            while category:
                segments[f"category:{category}"][item] += weight
                category = category.rpartition("/")[0]
        self.global_list = _ranked(totals, self.list_size)
        self.segment_lists = {
            name: _ranked(scores, self.list_size) for name, scores in segments.items()
        }
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
    """Popularity with exponential time decay: what is selling now rises fast."""

    key = "trending"

    def __init__(
        self, event_weights=None, half_life_hours: float = 72.0, list_size: int = LIST_SIZE
    ):
        super().__init__(event_weights, half_life_hours, list_size)


class DemographicLearner(PopularityLearner):
    """For anonymous visitors: popular in their segment (country, device, referrer, time of day)."""

    key = "demographic"
    segment_order = ("country", "device", "referrer", "hour")
