"""Temporal splits: validation cut from the training period, the test period scored once.

Nothing crosses a cut: a model tuned on the validation split never sees the test period, and
the catalog a model may recommend at a cut is what had launched before it.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recs.learners.base import CatalogItem, Interactions

DAY_S = 86400
# Without an explicit holdout the test period is this share of the log's time span.
DEFAULT_HOLDOUT_FRACTION = 0.1


def temporal_split(
    interactions: Interactions, holdout_days: float
) -> tuple[Interactions, Interactions, float]:
    """(train, test, cutoff): test is the last `holdout_days` of the data; nothing crosses over."""
    if not len(interactions):
        raise ValueError("No interactions to split.")
    cutoff = float(interactions.timestamps.max()) - holdout_days * DAY_S
    return interactions.before(cutoff), interactions.since(cutoff), cutoff


def holdout_days_for(
    interactions: Interactions, fraction: float = DEFAULT_HOLDOUT_FRACTION
) -> float:
    """A holdout derived from the data: `fraction` of its time span (at least one hour)."""
    if not len(interactions):
        raise ValueError("No interactions to split.")
    span_days = (interactions.timestamps[-1] - interactions.timestamps[0]) / DAY_S
    return max(span_days * fraction, 1 / 24)


def catalog_at(
    catalog: Sequence[CatalogItem], cutoff: float, train: Interactions
) -> list[CatalogItem]:
    """What a model trained at `cutoff` may recommend: products launched before it, touched or
    not; a product without a launch date counts only when the training period saw it."""
    seen = {str(s) for s in train.items[np.unique(train.item_codes)]} if len(train) else set()
    return [
        item
        for item in catalog
        if (item.launched_at and item.launched_at < cutoff)
        or (not item.launched_at and item.sku in seen)
    ]


@dataclass(frozen=True)
class Split:
    """Fit on `train` with `catalog` (what existed at `cutoff`), score on `test`."""

    train: Interactions
    test: Interactions
    cutoff: float
    catalog: list[CatalogItem]


@dataclass(frozen=True)
class Protocol:
    """The validation split lies wholly inside the test split's training period."""

    validation: Split
    test: Split
    holdout_days: float


def protocol_splits(
    interactions: Interactions, catalog: Sequence[CatalogItem], holdout_days: float | None = None
) -> Protocol:
    """Test = the last `holdout_days`; validation = the same length just before it, cut from
    the training period only. Both need events on each side of their cut."""
    holdout_days = holdout_days_for(interactions) if holdout_days is None else holdout_days
    train, test, test_cut = temporal_split(interactions, holdout_days)
    if not len(train) or not len(test):
        raise ValueError(
            f"A holdout of {holdout_days:g} days leaves no training or no test events; the log "
            f"spans {(interactions.timestamps[-1] - interactions.timestamps[0]) / DAY_S:.1f} days."
        )
    validation_cut = test_cut - holdout_days * DAY_S
    inner, validation = train.before(validation_cut), train.since(validation_cut)
    if not len(inner) or not len(validation):
        raise ValueError(
            f"A holdout of {holdout_days:g} days leaves no events before the validation cut; "
            "use a shorter --holdout-days."
        )
    return Protocol(
        validation=Split(
            inner, validation, validation_cut, catalog_at(catalog, validation_cut, inner)
        ),
        test=Split(train, test, test_cut, catalog_at(catalog, test_cut, train)),
        holdout_days=holdout_days,
    )
