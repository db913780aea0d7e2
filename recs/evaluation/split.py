"""Temporal split: train on everything before a cut-off, test on what came after."""

from recs.learners.base import Interactions

DAY_S = 86400


def temporal_split(
    interactions: Interactions, holdout_days: float
) -> tuple[Interactions, Interactions, float]:
    """(train, test, cutoff): test is the last `holdout_days` of the data; nothing crosses over."""
    if not len(interactions):
        raise ValueError("No interactions to split.")
    cutoff = float(interactions.timestamps.max()) - holdout_days * DAY_S
    before = interactions.timestamps < cutoff
    return interactions.select(before), interactions.select(~before), cutoff
