"""Celery tasks of the candidate cache (queue `scoring`)."""

from celery import shared_task

from recs.candidates.refresh import refresh_lists_holding
from recs.candidates.rescore import rescore_user
from recs.serving.availability import sync_unavailable
from recs.training.pipeline import serving_learner


@shared_task(
    name="recs.scoring.refresh_lists",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=1,
    max_retries=5,
)
def refresh_lists_task(skus: list[str]) -> int:
    """Refill the lists that held products which just became unavailable (idempotent)."""
    return refresh_lists_holding(skus, serving_learner)


@shared_task(name="recs.scoring.sync_availability", ignore_result=True, expires=60)
def sync_availability_task() -> int:
    """Rebuild the unavailable set from the catalog (periodic repair, e.g. after Redis lost it)."""
    return sync_unavailable()


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
