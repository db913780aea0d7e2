"""Celery tasks of the candidate cache (queue `scoring`), and the functions that queue them."""

import logging
from collections.abc import Iterable, Sequence

from celery import shared_task

from aisle.conf import aisle_settings
from recs import redis_keys
from recs.candidates.availability import sync_unavailable
from recs.candidates.catalog_changes import write_similar_for_products
from recs.candidates.refresh import refresh_lists_holding
from recs.candidates.rescore import rescore_user
from recs.candidates.store import writer_client
from recs.features.online import layout_is_current
from recs.models import Event, ModelVersion
from recs.training.precompute import candidate_cache_is_filled
from recs.training.registry import serving_learner
from recs.training.tasks import precompute_candidates_task, rebuild_online_features_task

logger = logging.getLogger(__name__)

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
    queued = []
    client = writer_client()
    serving = ModelVersion.objects.filter(status=ModelVersion.Status.SERVING).exists()
    lost_lists = serving and not candidate_cache_is_filled()
    if lost_lists and client.set(redis_keys.heal_lock("candidates"), "1", nx=True, ex=HEAL_LOCK_S):
        precompute_candidates_task.delay()
        queued.append("candidates")
    lost_features = not layout_is_current() and Event.objects.exists()
    if lost_features and client.set(redis_keys.heal_lock("features"), "1", nx=True, ex=HEAL_LOCK_S):
        rebuild_online_features_task.delay()
        queued.append("features")
    return queued


def schedule_rescores(user_ids: Iterable[str]) -> int:
    """Queue one debounced re-score per user not already waiting for one; returns how many."""
    client = writer_client()
    users = sorted({user for user in user_ids if user})
    if not users:
        return 0
    pipe = client.pipeline(transaction=False)
    for user in users:
        # The marker outlives the countdown, so a lost task cannot block re-scores for long.
        ttl = max(int(aisle_settings.RESCORE_DEBOUNCE_S * 10), 10)
        pipe.set(redis_keys.rescore_pending(user), "1", nx=True, ex=ttl)
    scheduled = 0
    for user, fresh in zip(users, pipe.execute(), strict=True):
        if fresh:
            rescore_user_task.apply_async(args=[user], countdown=aisle_settings.RESCORE_DEBOUNCE_S)
            scheduled += 1
    return scheduled


def queue_list_refresh(skus: Sequence[str]) -> None:
    """Queue the refill of the lists that held these products (they became unavailable, or are
    back); a broker outage is logged: the periodic sync and the next training repair it."""
    try:
        refresh_lists_task.delay(sorted(skus))
    except Exception:
        logger.exception("Could not queue the refresh of lists after a stock change")


def queue_similar_for_products(skus: Sequence[str]) -> None:
    """Queue the content-similar lists of created or changed products; with the broker down
    they come with the next training."""
    try:
        similar_for_changed_products_task.delay(sorted(skus))
    except Exception:
        logger.exception("Could not queue the similar-items lists of %d products", len(skus))
