"""What a project's Celery setup needs from Aisle, in one line each: the queues, which task goes
to which (by the task name's prefix, so slow training never delays events) and the beat
schedule of its periodic work.

    CELERY_TASK_QUEUES = aisle.celery.task_queues()
    CELERY_TASK_ROUTES = aisle.celery.TASK_ROUTES  (or {**aisle.celery.TASK_ROUTES, ...})
    CELERY_BEAT_SCHEDULE = {**aisle.celery.beat_schedule(AISLE), ...the project's own entries}
    CELERY_DB_REUSE_MAX = aisle.celery.DB_REUSE_MAX

Workers consume the queues: `celery -A <project> worker -Q default,events,scoring,training`
(or one worker per queue, so slow training never delays events).
"""

from collections.abc import Mapping
from typing import Any

from celery.schedules import crontab
from kombu import Queue

from aisle.conf import DEFAULTS

QUEUES = ("default", "events", "scoring", "training")
# Every Aisle task is named recs.<kind>.<job>; anything not routed here runs on `default`.
TASK_ROUTES = {
    "recs.events.*": {"queue": "events"},
    "recs.scoring.*": {"queue": "scoring"},
    "recs.training.*": {"queue": "training"},
}

# Celery's Django fixup closes every database connection before and after each task unless
# CELERY_DB_REUSE_MAX is set, so each event batch opened a new PostgreSQL connection (a server
# process forked, its caches cold): about a third of a batch's time. With this set, Celery
# closes them only every DB_REUSE_MAX tasks, and recs closes them around each task the way
# Django does around a request (close_old_connections: CONN_MAX_AGE, CONN_HEALTH_CHECKS, a
# connection left broken by an error), so a database restart still heals at the next task.
DB_REUSE_MAX = 100_000


def task_queues() -> list[Queue]:
    return [Queue(name) for name in QUEUES]


def beat_schedule(block: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The periodic tasks, their intervals from the project's AISLE block (or the defaults).
    Takes the block itself because it is called while the settings module is being read."""
    conf = {**DEFAULTS, **(block or {})}
    schedule = {
        "train-models": {
            "task": "recs.training.train_models",
            "schedule": float(conf["TRAINING_INTERVAL_HOURS"]) * 3600,
            "options": {"queue": "training"},
        },
        "sync-availability": {
            "task": "recs.scoring.sync_availability",
            "schedule": float(conf["AVAILABILITY_SYNC_INTERVAL_S"]),
            "options": {"queue": "scoring", "expires": 60},
        },
        "drain-served-log": {
            "task": "recs.experiments.drain_served_log",
            "schedule": float(conf["SERVED_LOG_DRAIN_INTERVAL_S"]),
            "options": {"queue": "default", "expires": 30},
        },
        "rollup-experiments": {
            "task": "recs.experiments.rollup",
            "schedule": float(conf["EXPERIMENT_ROLLUP_INTERVAL_S"]),
            "options": {"queue": "scoring", "expires": 600},
        },
        "record-beat-heartbeat": {
            "task": "recs.health.record_heartbeat",
            "schedule": float(conf["HEARTBEAT_INTERVAL_S"]),
            "options": {"queue": "default", "expires": 60},
        },
    }
    if float(conf["EVENT_RETENTION_DAYS"]) > 0:
        # Daily at 03:30 in Celery's timezone (CELERY_TIMEZONE), a quiet hour for most shops; a
        # run missed by more than half a day waits for the next one. On `default`, not
        # `events`: a long first run must never hold a worker that applies events.
        schedule["archive-expired-events"] = {
            "task": "recs.retention.archive_expired_events",
            "schedule": crontab(hour=3, minute=30),
            "options": {"queue": "default", "expires": 12 * 3600},
        }
    return schedule
