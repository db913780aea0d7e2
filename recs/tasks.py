"""Celery tasks of the engine, collected here for autodiscovery; each body calls one service."""

from recs.candidates.tasks import (
    refresh_lists_task,
    rescore_user_task,
    rescore_users_task,
    sync_availability_task,
)
from recs.events.tasks import archive_expired_events_task, ingest_event_batch
from recs.experiments.tasks import (
    drain_served_log_task,
    rollup_experiments_task,
    score_shadows_task,
)
from recs.observability.heartbeat import record_heartbeat
from recs.training.tasks import (
    precompute_candidates_task,
    rebuild_online_features_task,
    train_models_task,
)

__all__ = [
    "archive_expired_events_task",
    "drain_served_log_task",
    "ingest_event_batch",
    "precompute_candidates_task",
    "rebuild_online_features_task",
    "record_heartbeat",
    "refresh_lists_task",
    "rescore_user_task",
    "rescore_users_task",
    "rollup_experiments_task",
    "score_shadows_task",
    "sync_availability_task",
    "train_models_task",
]
