"""Database connections of Celery tasks, kept and closed the way Django handles a request's.

With CELERY_DB_REUSE_MAX set (aisle/celery.py) Celery no longer closes connections around each
task; this closes those past CONN_MAX_AGE, failing CONN_HEALTH_CHECKS or left unusable by an
error, before and after every task, as Django does at a request's start and end.
"""

from typing import Any

from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections


def close_old_connections_around_task(sender: Any = None, **kwargs: Any) -> None:
    """Eager tasks (tests, CELERY_TASK_ALWAYS_EAGER) run inside the caller's transaction,
    which a close would end: they are left alone, as Celery leaves them."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    close_old_connections()


def connect_task_connection_handling() -> None:
    for signal in (task_prerun, task_postrun):
        signal.connect(
            close_old_connections_around_task,
            weak=False,
            dispatch_uid=f"recs.task_connections.{signal.name}",
        )
