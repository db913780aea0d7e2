"""Which model version serves each learner key and candidate-list role, and the loading of
serving artifacts in worker processes (once per process and artifact)."""

import joblib
from django.db import transaction
from django.utils import timezone

from recs.faults import scoring_delay
from recs.learners import LEARNERS, Learner
from recs.models import ModelVersion

# Which serving learner fills which candidate lists.
CANDIDATE_SOURCES = {
    "user": "hybrid",
    "similar_cf": "hybrid",
    "similar_content": "content",
    "bought_together": "bought_together",
    "popular": "popularity",
    "trending": "trending",
}


@transaction.atomic
def promote(version: ModelVersion) -> None:
    """Make this version the one that serves its key; the previous one retires."""
    ModelVersion.objects.filter(key=version.key, status=ModelVersion.Status.SERVING).exclude(
        pk=version.pk
    ).update(status=ModelVersion.Status.RETIRED)
    version.status = ModelVersion.Status.SERVING
    version.promoted_at = timezone.now()
    version.save(update_fields=["status", "promoted_at"])


def promote_if_better(version: ModelVersion) -> bool:
    serving = ModelVersion.objects.filter(
        key=version.key, status=ModelVersion.Status.SERVING
    ).first()
    if serving is None or version.primary_metric > serving.primary_metric:
        promote(version)
        return True
    return False


def load_serving(key: str) -> tuple[ModelVersion, Learner] | None:
    version = ModelVersion.objects.filter(key=key, status=ModelVersion.Status.SERVING).first()
    if version is None:
        return None
    return version, joblib.load(version.artifact_path)


_loaded: dict[str, Learner] = {}


def serving_learner(role: str) -> Learner | None:
    """The serving learner behind a candidate-list role ("user", "similar_cf", ...)."""
    return serving_learner_by_key(CANDIDATE_SOURCES[role])


def serving_learner_by_key(key: str) -> Learner | None:
    """A learner key's serving version, loaded once per worker process and artifact (a
    promotion changes the artifact, so the next call loads the new one). Every worker-side
    scoring call (re-score, sell-out refresh, shadow scoring) takes its model here."""
    scoring_delay()
    version = ModelVersion.objects.filter(key=key, status=ModelVersion.Status.SERVING).first()
    if version is None:
        return None
    if version.artifact_sha256 not in _loaded:
        if len(_loaded) >= len(LEARNERS) * 2:
            _loaded.clear()
        _loaded[version.artifact_sha256] = joblib.load(version.artifact_path)
    return _loaded[version.artifact_sha256]
