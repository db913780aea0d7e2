"""The worker heartbeat: the beat-scheduled task that records it and the reads that age it."""

# One fresh timestamp proves that beat, the broker and a worker all run. The value lives in the
# engine's Redis, so every web process reads the same one whatever the project's cache is.

import logging
import time
from dataclasses import dataclass

from celery import shared_task
from django.conf import settings

from recs import redis_clients, redis_keys

logger = logging.getLogger(__name__)

HEARTBEAT_STALE_INTERVALS = 3  # missed beats before the heartbeat counts as stale
BEAT_ENTRY = "record-beat-heartbeat"  # its CELERY_BEAT_SCHEDULE entry


# The task name predates this module; running deployments and the beat schedule use it.
@shared_task(name="recs.health.record_heartbeat", ignore_result=True)
def record_heartbeat() -> None:
    """Beat schedules this; a fresh value proves that beat, the broker and a worker all run."""
    redis_clients.worker_client().set(redis_keys.WORKER_HEARTBEAT, repr(time.time()))


def seconds_since_heartbeat() -> float | None:
    """How long ago a worker last ran the heartbeat task, or None if it never did."""
    last = redis_clients.worker_client().get(redis_keys.WORKER_HEARTBEAT)
    return None if last is None else max(time.time() - float(last), 0.0)


@dataclass(frozen=True)
class Heartbeat:
    status: str  # ok | stale | never | unavailable
    age_s: float | None
    interval_s: float


def heartbeat_status() -> Heartbeat:
    """The heartbeat's age judged against the beat interval: ok, stale, never or unavailable."""
    schedule = settings.CELERY_BEAT_SCHEDULE.get(BEAT_ENTRY, {})
    interval_s = float(schedule.get("schedule", 30.0))
    try:
        age_s = seconds_since_heartbeat()
    except redis_clients.CONNECTION_ERRORS:
        logger.warning("Heartbeat unreadable", exc_info=True)
        return Heartbeat("unavailable", None, interval_s)
    if age_s is None:
        return Heartbeat("never", None, interval_s)
    return Heartbeat(
        "ok" if age_s <= HEARTBEAT_STALE_INTERVALS * interval_s else "stale", age_s, interval_s
    )
