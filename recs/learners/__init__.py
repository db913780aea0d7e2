"""The learners, each registered by the key that experiments and ModelVersions refer to."""

from recs.learners.als import ALSLearner
from recs.learners.base import CatalogItem, Interactions, Learner
from recs.learners.collaborative import BoughtTogetherLearner, EASELearner, ItemKNNLearner
from recs.learners.content import ContentLearner
from recs.learners.hybrid import HybridLearner
from recs.learners.popularity import DemographicLearner, PopularityLearner, TrendingLearner
from recs.learners.sequence import SequenceLearner

LEARNERS: dict[str, type[Learner]] = {
    cls.key: cls
    for cls in (
        PopularityLearner,
        TrendingLearner,
        DemographicLearner,
        ContentLearner,
        SequenceLearner,
        ItemKNNLearner,
        EASELearner,
        BoughtTogetherLearner,
        ALSLearner,
        HybridLearner,
    )
}


def get_learner(key: str) -> type[Learner]:
    try:
        return LEARNERS[key]
    except KeyError:
        raise KeyError(f"Unknown learner {key!r}; known: {', '.join(sorted(LEARNERS))}") from None


__all__ = ["LEARNERS", "CatalogItem", "Interactions", "Learner", "get_learner"]
