"""Celery tasks of the candidate cache (queue `scoring`), and the functions that queue them."""

import logging
from collections.abc import Iterable, Sequence

from celery import shared_task

from aisle.conf import aisle_settings
from recs import redis_clients, redis_keys
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


RESCORE_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True,
                   "expires": 3600}  # fmt: skip
# Users per re-score task: one message per batch slice instead of one per user (publishing a
# message per user cost the event worker more than everything else it did).
RESCORE_USERS_PER_TASK = 100


@shared_task(name="recs.scoring.rescore_users", **RESCORE_OPTIONS)
def rescore_users_task(user_ids: list[str]) -> int:
    """Re-score these users' collaborative lists after their events (debounced by the caller);
    returns how many were re-scored."""
    return sum(rescore_user(user_id, serving_learner) for user_id in user_ids)


@shared_task(name="recs.scoring.rescore_user", **RESCORE_OPTIONS)
def rescore_user_task(user_id: str) -> bool:
    """One user's re-score, as queued by versions before rescore_users_task: kept so that
    messages already waiting at an upgrade still run."""
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


# SET NX EX of every key; returns the (1-based) positions of the keys that were absent.
_MARK_PENDING_SCRIPT = """
local fresh = {}
for n, key in ipairs(KEYS) do
  if redis.call('SET', key, '1', 'NX', 'EX', ARGV[1]) then fresh[#fresh + 1] = n end
end
return fresh
"""


def schedule_rescores(user_ids: Iterable[str]) -> int:
    """Queue a debounced re-score of each user not already waiting for one, RESCORE_USERS_PER_TASK
    users per task; returns how many users."""
    client = writer_client()
    users = sorted({user for user in user_ids if user})
    if not users:
        return 0
    # The marker outlives the countdown, so a lost task cannot block re-scores for long.
    ttl = max(int(aisle_settings.RESCORE_DEBOUNCE_S * 10), 10)
    keys = [redis_keys.rescore_pending(user) for user in users]
    if redis_clients.is_cluster(client):  # a script cannot touch keys of many slots
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, "1", nx=True, ex=ttl)
        fresh = [user for user, marked in zip(users, pipe.execute(), strict=True) if marked]
    else:
        mark = redis_clients.script(client, _MARK_PENDING_SCRIPT)
        fresh = [users[int(n) - 1] for n in mark(keys=keys, args=[ttl], client=client)]
    for start in range(0, len(fresh), RESCORE_USERS_PER_TASK):
        chunk = fresh[start : start + RESCORE_USERS_PER_TASK]
        rescore_users_task.apply_async(
            args=[chunk],
            countdown=aisle_settings.RESCORE_DEBOUNCE_S,
            argsrepr=f"[{len(chunk)} users]",  # Celery's repr of a long list costs more than the send
        )
    return len(fresh)


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
