"""Celery tasks of the engine, collected here for autodiscovery; each body calls one service."""

from recs.events.tasks import ingest_event_batch
from recs.health import record_heartbeat

__all__ = ["ingest_event_batch", "record_heartbeat"]
