"""Celery tasks of the engine; each body is one call into a service."""

from recs.health import record_heartbeat

__all__ = ["record_heartbeat"]
