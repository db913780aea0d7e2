"""Liveness of the background machinery, as recorded in Redis by beat-scheduled tasks."""

import time

from celery import shared_task
from django.core.cache import cache

HEARTBEAT_KEY = "health:worker-heartbeat"


@shared_task(name="recs.health.record_heartbeat", ignore_result=True)
def record_heartbeat() -> None:
    """Beat schedules this; a fresh value proves that beat, the broker and a worker all run."""
    cache.set(HEARTBEAT_KEY, time.time(), timeout=None)


def seconds_since_heartbeat() -> float | None:
    """How long ago a worker last ran the heartbeat task, or None if it never did."""
    last = cache.get(HEARTBEAT_KEY)
    return None if last is None else max(time.time() - float(last), 0.0)
