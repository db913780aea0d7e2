"""Celery task of the training queue."""

from celery import shared_task

from recs.training.pipeline import NoTrainingData, train_models
from recs.training.precompute import precompute_candidates, precompute_experiment_lists


# Acknowledged early on purpose: a training run lost with its worker is simply run again by beat,
# and a late ack would redeliver a long run to a second worker while the first still trains.
@shared_task(name="recs.training.train_models", acks_late=False, ignore_result=True)
def train_models_task() -> str:
    try:
        run = train_models()
    except NoTrainingData as error:
        return str(error)
    return f"run {run.run_id}: {len(run.versions)} versions, promoted {run.promoted}"


@shared_task(
    name="recs.training.precompute_candidates",
    acks_late=False,
    ignore_result=True,
)
def precompute_candidates_task() -> int:
    """Rewrite the candidate lists from the serving versions (after a promotion)."""
    return precompute_candidates()


@shared_task(
    name="recs.training.precompute_experiment_lists",
    acks_late=False,
    ignore_result=True,
)
def precompute_experiment_lists_task() -> int:
    """Per-user lists of the models that running experiments serve (after an experiment starts)."""
    return precompute_experiment_lists()


@shared_task(
    name="recs.training.rebuild_online_features",
    acks_late=False,
    ignore_result=True,
)
def rebuild_online_features_task() -> int:
    """Replay the event log into the online store (after Redis lost it); on the training queue
    because it takes minutes on a large log."""
    from recs.features.rebuild import rebuild_online_store

    return rebuild_online_store()
