"""Experiment assignment seam of the render path: which variant (strategy) serves this request.

Until experiments exist, every request gets the placement's default strategy as the control.
"""

from dataclasses import dataclass

from merch.selectors import PlacementConfig
from recs.serving.types import RecommendationContext


@dataclass(frozen=True)
class Variant:
    name: str
    strategy: str  # a serving strategy (auto, personal, similar, ...) or a learner key
    is_control: bool = True
    experiment: str = ""


def assign_variant(context: RecommendationContext, placement: PlacementConfig) -> Variant:
    """The variant that serves this shopper on this placement."""
    return Variant(name="default", strategy=placement.default_strategy)
