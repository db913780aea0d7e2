"""Celery task of the training queue."""

from celery import shared_task

from recs.training.pipeline import NoTrainingData, precompute_candidates, train_models


# Acknowledged early on purpose: a training run lost with its worker is simply run again by beat,
# and a late ack would redeliver a long run to a second worker while the first still trains.
@shared_task(name="recs.training.train_models", acks_late=False, ignore_result=True)
def train_models_task() -> str:
    try:
        run = train_models()
    except NoTrainingData as error:
        return str(error)
    return f"run {run.run_id}: {len(run.versions)} versions, promoted {run.promoted}"


@shared_task(name="recs.training.precompute_candidates", acks_late=False, ignore_result=True)
def precompute_candidates_task() -> int:
    """Rewrite the candidate lists from the serving versions (after a promotion)."""
    return precompute_candidates()
