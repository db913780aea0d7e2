"""Celery tasks of the event stream (queue `events`), and the enqueueing of accepted events."""

import time
import uuid
from collections.abc import Sequence

from celery import shared_task
from django.db import OperationalError as DatabaseError
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ClusterError as RedisClusterError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from recs.events.records import EventRecord
from recs.events.retention import archive_expired_events
from recs.events.services import apply_event_batch


@shared_task(
    name="recs.events.ingest_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    # Transient: a database or broker hiccup, Redis unreachable, a cluster failing over.
    autoretry_for=(
        DatabaseError,
        BrokerError,
        RedisConnectionError,
        RedisTimeoutError,
        RedisClusterError,
    ),
    retry_backoff=1,
    retry_backoff_max=60,
    max_retries=10,
    ignore_result=True,
)
def ingest_event_batch(
    batch_id: str, messages: list[dict], enqueued_at: float | None = None
) -> int:
    """Persist and apply one batch of accepted events; idempotent, so redelivery is harmless."""
    records = [EventRecord.from_message(m) for m in messages]
    return apply_event_batch(batch_id, records, enqueued_at=enqueued_at)


class QueueUnavailable(Exception):
    """The broker did not take the batch; nothing was accepted."""


def enqueue_events(records: Sequence[EventRecord]) -> str:
    """Put accepted events on the durable `events` queue as one batch; returns the batch id."""
    batch_id = uuid.uuid4().hex
    try:
        ingest_event_batch.apply_async(
            args=[batch_id, [record.to_message() for record in records], time.time()],
            queue="events",
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.05, "interval_step": 0.1},
        )
    except BrokerError as error:
        raise QueueUnavailable(str(error)) from error
    return batch_id


@shared_task(name="recs.retention.archive_expired_events", ignore_result=True)
def archive_expired_events_task() -> int:
    """Beat runs this daily (EVENT_RETENTION_DAYS > 0) to keep the event log bounded; a run that
    stopped, or overlaps another, is safe to repeat. Returns the rows deleted."""
    return archive_expired_events().deleted
