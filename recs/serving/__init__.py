"""The render path: `recommend(context) -> Recommendations`, shared by the API and the template tag."""

from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext, Recommendations, RecommendedItem

__all__ = ["RecommendationContext", "Recommendations", "RecommendedItem", "recommend"]
