"""Celery tasks of the candidate cache (queue `scoring`)."""

from celery import shared_task

from recs.candidates.catalog_changes import write_similar_for_products
from recs.candidates.refresh import refresh_lists_holding
from recs.candidates.rescore import rescore_user
from recs.candidates.store import writer_client
from recs.features.online import layout_is_current
from recs.models import Event, ModelVersion
from recs.serving.availability import sync_unavailable
from recs.training.pipeline import serving_learner

# Idempotent list writes: redelivered when a worker dies, retried while Redis is unreachable.
LIST_WRITE_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "autoretry_for": (ConnectionError, TimeoutError),
    "retry_backoff": 1,
    "max_retries": 5,
}


@shared_task(name="recs.scoring.refresh_lists", **LIST_WRITE_OPTIONS)
def refresh_lists_task(skus: list[str]) -> int:
    """Refill the lists that held products which just became unavailable (idempotent)."""
    return refresh_lists_holding(skus, serving_learner)


@shared_task(name="recs.scoring.similar_for_changed_products", **LIST_WRITE_OPTIONS)
def similar_for_changed_products_task(skus: list[str]) -> int:
    """Content-similar lists for products created or changed through the catalog (idempotent)."""
    return write_similar_for_products(skus, serving_learner)


@shared_task(name="recs.scoring.sync_availability", ignore_result=True, expires=60)
def sync_availability_task() -> int:
    """Periodic repair: rebuild the unavailable set from the catalog, and when Redis lost its
    data, queue the refill of the candidate lists and the rebuild of the feature store."""
    size = sync_unavailable()
    heal_lost_redis_data()
    return size


@shared_task(
    name="recs.scoring.rescore_user",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    expires=3600,
)
def rescore_user_task(user_id: str) -> bool:
    """Re-score one user's collaborative list after their events (debounced by the caller)."""
    return rescore_user(user_id, serving_learner)


HEAL_LOCK_S = 1800  # one refill / rebuild at a time; they take seconds to minutes


def heal_lost_redis_data() -> list[str]:
    """Queue what a Redis restart without persistence lost (not already queued); returns what."""
    from recs.tasks import precompute_candidates_task, rebuild_online_features_task
    from recs.training.pipeline import candidate_cache_is_filled

    queued = []
    client = writer_client()
    serving = ModelVersion.objects.filter(status=ModelVersion.Status.SERVING).exists()
    lost_lists = serving and not candidate_cache_is_filled()
    if lost_lists and client.set("heal:candidates", "1", nx=True, ex=HEAL_LOCK_S):
        precompute_candidates_task.delay()
        queued.append("candidates")
    lost_features = not layout_is_current() and Event.objects.exists()
    if lost_features and client.set("heal:features", "1", nx=True, ex=HEAL_LOCK_S):
        rebuild_online_features_task.delay()
        queued.append("features")
    return queued
