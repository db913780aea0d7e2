"""Celery tasks of experiments: served-log drain, shadow scoring, attribution rollups."""

from celery import shared_task

from merch.selectors.experiments import experiment_summaries
from recs.experiments.attribution import rollup_experiment
from recs.experiments.served import drain_served_log
from recs.experiments.shadow import score_shadows
from recs.experiments.watch import watch_experiment
from recs.serving.types import RecommendationContext


@shared_task(
    name="recs.scoring.score_shadows",
    acks_late=True,
    ignore_result=True,
    expires=600,
)
def score_shadows_task(context: dict, served: dict, shadow_names: list[str]) -> int:
    """Score an experiment's shadow variants for one served request (queue `scoring`)."""
    return score_shadows(RecommendationContext(**context), served, shadow_names)


def queue_shadow_scoring(entries: list[dict]) -> None:
    """One scoring task per served list sampled for shadow scoring, on the scoring queue."""
    for entry in entries:
        context = entry.pop("context")
        shadows = entry.pop("shadows")
        score_shadows_task.delay(context, entry, shadows)


@shared_task(name="recs.experiments.drain_served_log", ignore_result=True, expires=30)
def drain_served_log_task() -> int:
    return drain_served_log(queue_shadow_scoring)


@shared_task(name="recs.experiments.rollup", ignore_result=True, expires=600)
def rollup_experiments_task() -> int:
    """Roll up every experiment that has run (drains the served log first), then check the
    live ones' sample ratio and guardrails."""
    drain_served_log(queue_shadow_scoring)
    rows = 0
    for experiment in experiment_summaries():
        if experiment.status == "draft":
            continue
        rows += rollup_experiment(experiment)
        if experiment.status in ("running", "paused"):
            watch_experiment(experiment)
    return rows
