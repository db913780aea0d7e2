"""One training flow for the command, the beat schedule and the admin action.

Build the training set from the event log, evaluate every learner on a temporal split, refit on
all data, save versioned artifacts with their metrics, promote versions that beat the serving
one on Recall@20 (recs.training.registry), and precompute the candidate lists from the serving
versions into Redis (recs.training.precompute).
"""

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import joblib
from threadpoolctl import threadpool_limits

from aisle.conf import aisle_settings
from recs.evaluation.offline import failure_reason, peak_memory_mib
from recs.evaluation.run import SERVED_ROLES, EvaluationRun, learner_factory, run_evaluation
from recs.evaluation.split import holdout_days_for
from recs.learners import LEARNERS, Learner
from recs.learners.base import Interactions
from recs.learners.hybrid import COMPONENTS
from recs.models import ModelVersion
from recs.training.data import catalog_items, interactions_from_event_log
from recs.training.precompute import precompute_candidates
from recs.training.registry import promote_if_better

logger = logging.getLogger(__name__)


class NoTrainingData(Exception):
    pass


@dataclass
class TrainingRun:
    run_id: str
    interactions: int
    versions: list[ModelVersion] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # learner -> why it was skipped
    candidate_lists: int = 0
    seconds: float = 0.0
    peak_memory_mib: float = 0.0


def build_learner(key: str, params: Mapping[str, Any] | None = None) -> Learner:
    """A learner with the project's settings (event weights) and tuned parameters."""
    return learner_factory(key, aisle_settings.EVENT_WEIGHTS)(dict(params or {}))


def _save_artifact(learner: Learner, run_id: str) -> tuple[str, str]:
    directory = aisle_settings.MODEL_ARTIFACT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{learner.key}-{run_id}.joblib"
    joblib.dump(learner, path, compress=3)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return str(path), digest


def _when(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def _tune(
    interactions: Interactions, catalog: list, keys: Sequence[str], holdout_days: float,
    say: Callable[[str], None],
) -> EvaluationRun | None:  # fmt: skip
    """Tune and score on the evaluation protocol; None when the log is too short to split (then
    every learner trains with its defaults and versions carry no metrics)."""
    needed = list(dict.fromkeys([*keys, *(COMPONENTS if "hybrid" in keys else ())]))
    for holdout in (holdout_days, holdout_days_for(interactions)):
        try:
            return run_evaluation(
                interactions, catalog, keys=needed, holdout_days=holdout,
                budget=aisle_settings.TRAINING_TUNING_BUDGET, seeds=1,
                max_shoppers=aisle_settings.TRAINING_EVALUATION_SHOPPERS,
                event_weights=aisle_settings.EVENT_WEIGHTS, progress=say,
                served=all(k in needed for k in SERVED_ROLES.values()),
            )  # fmt: skip
        except ValueError as error:
            say(f"evaluation split: {error}")
    return None


def _fit_all(
    keys: Sequence[str], tuned: Mapping[str, Mapping[str, Any]], interactions: Interactions,
    catalog: list, say: Callable[[str], None],
) -> tuple[dict[str, Learner], dict[str, float], dict[str, str]]:  # fmt: skip
    """Refit each learner on all data with its tuned parameters; the hybrid adopts its fitted
    components. Returns (learners, fit seconds, failures): one failing learner is skipped."""
    fitted, seconds, failures = {}, {}, {}
    order = list(dict.fromkeys([*(COMPONENTS if "hybrid" in keys else ()), *keys]))
    order = [k for k in order if k != "hybrid"] + (["hybrid"] if "hybrid" in keys else [])
    for key in order:
        say(f"fitting {key} on all data")
        started = time.perf_counter()
        try:
            learner = build_learner(key, tuned.get(key))
            if key == "hybrid":
                components = {k: fitted[k] for k in COMPONENTS if k in fitted}
                learner.use_fitted(components, interactions)
            else:
                learner.fit(interactions, catalog)
        except (Exception, MemoryError) as error:  # the others go on; serving keeps the last good
            logger.exception("Fitting %s failed; it is skipped in this run", key)
            failures[key] = failure_reason(error)
            continue
        fitted[key], seconds[key] = learner, time.perf_counter() - started
    return fitted, seconds, failures


def train_models(
    keys: Sequence[str] | None = None,
    *,
    holdout_days: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainingRun:
    """Tune every learner on a validation split and score it on the test period (the evaluation
    protocol), refit on all data with the tuned parameters, version, promote what beats the
    serving version, precompute. A learner that fails is skipped and reported."""
    started = time.perf_counter()
    keys = list(keys or LEARNERS)
    holdout_days = aisle_settings.TRAINING_HOLDOUT_DAYS if holdout_days is None else holdout_days
    say = progress or (lambda message: None)
    say("loading the event log")
    interactions = interactions_from_event_log()
    catalog = catalog_items()
    if not len(interactions):
        raise NoTrainingData("The event log has no interactions to train on.")
    run = TrainingRun(run_id=uuid.uuid4().hex[:12], interactions=len(interactions))
    with threadpool_limits(1, "blas"):
        evaluation = _tune(interactions, catalog, keys, holdout_days, say)
        tuned = {k: t.params for k, t in evaluation.tuned.items()} if evaluation else {}
        metrics = {}
        if evaluation:
            for r in evaluation.results:
                if r.failed:
                    run.failures[r.name] = r.failed
                else:
                    metrics[r.name] = {**r.overall, "coverage@10": r.coverage_at_10}
        fitted, seconds, failures = _fit_all(keys, tuned, interactions, catalog, say)
        run.failures.update(failures)
        for key in keys:
            learner = fitted.get(key)
            if learner is None:
                continue
            params = learner.params()
            if key == "hybrid" and evaluation and evaluation.blend:
                params["served_blend"] = evaluation.blend
                if evaluation.served and not evaluation.served.failed:
                    metrics[key] = {
                        **metrics.get(key, {}),
                        **{f"served_{m}": v for m, v in evaluation.served.overall.items()},
                    }
            path, digest = _save_artifact(learner, run.run_id)
            version = ModelVersion.objects.create(
                key=key, training_run=run.run_id, params=params,
                data_start=_when(interactions.timestamps.min()),
                data_end=_when(interactions.timestamps.max()), interactions=len(interactions),
                metrics=metrics.get(key, {}), artifact_path=path, artifact_sha256=digest,
                fit_seconds=seconds[key],
            )  # fmt: skip
            run.versions.append(version)
            if promote_if_better(version):
                run.promoted.append(key)
        say("precomputing candidate lists")
        run.candidate_lists = precompute_candidates(interactions)
    run.seconds = time.perf_counter() - started
    run.peak_memory_mib = peak_memory_mib()
    return run
