"""One training pipeline for the command, the beat schedule and the admin action.

Build the training set from the event log, evaluate every learner on a temporal split, refit on
all data, save versioned artifacts with their metrics, promote versions that beat the serving
one on Recall@20, and precompute the candidate lists from the serving versions into Redis.
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
import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from threadpoolctl import threadpool_limits

from merch.selectors import unavailable_skus
from recs.batches import batched
from recs.candidates import store
from recs.candidates.refresh import depth_for, fill_past_unavailable
from recs.evaluation.offline import failure_reason, peak_memory_mib
from recs.evaluation.run import SERVED_ROLES, EvaluationRun, learner_factory, run_evaluation
from recs.evaluation.split import holdout_days_for
from recs.faults import scoring_delay
from recs.learners import LEARNERS, Learner
from recs.learners.base import CatalogItem, Interactions
from recs.learners.hybrid import COMPONENTS
from recs.models import ModelVersion
from recs.serving import blend_table, fallback
from recs.serving.availability import sync_unavailable
from recs.serving.catalog import sync_catalog_cards
from recs.training.data import catalog_items, interactions_from_event_log

logger = logging.getLogger(__name__)

# Which serving learner fills which candidate lists.
CANDIDATE_SOURCES = {
    "user": "hybrid",
    "similar_cf": "hybrid",
    "similar_content": "content",
    "bought_together": "bought_together",
    "popular": "popularity",
    "trending": "trending",
}


# Lists computed and written per chunk of shoppers or products, so memory stays flat.
PRECOMPUTE_CHUNK = 5000


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
    return learner_factory(key, settings.EVENT_WEIGHTS)(dict(params or {}))


def _save_artifact(learner: Learner, run_id: str) -> tuple[str, str]:
    directory = settings.MODEL_ARTIFACT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{learner.key}-{run_id}.joblib"
    joblib.dump(learner, path, compress=3)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return str(path), digest


def _when(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


@transaction.atomic
def promote(version: ModelVersion) -> None:
    """Make this version the one that serves its key; the previous one retires."""
    ModelVersion.objects.filter(key=version.key, status=ModelVersion.Status.SERVING).exclude(
        pk=version.pk
    ).update(status=ModelVersion.Status.RETIRED)
    version.status = ModelVersion.Status.SERVING
    version.promoted_at = timezone.now()
    version.save(update_fields=["status", "promoted_at"])


def promote_if_better(version: ModelVersion) -> bool:
    serving = ModelVersion.objects.filter(
        key=version.key, status=ModelVersion.Status.SERVING
    ).first()
    if serving is None or version.primary_metric > serving.primary_metric:
        promote(version)
        return True
    return False


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
                budget=settings.TRAINING_TUNING_BUDGET, seeds=1,
                max_shoppers=settings.TRAINING_EVALUATION_SHOPPERS,
                event_weights=settings.EVENT_WEIGHTS, progress=say,
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
    holdout_days = settings.TRAINING_HOLDOUT_DAYS if holdout_days is None else holdout_days
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


def load_serving(key: str) -> tuple[ModelVersion, Learner] | None:
    version = ModelVersion.objects.filter(key=key, status=ModelVersion.Status.SERVING).first()
    if version is None:
        return None
    return version, joblib.load(version.artifact_path)


_loaded: dict[str, Learner] = {}


def serving_learner(role: str) -> Learner | None:
    """The serving learner behind a candidate-list role ("user", "similar_cf", ...)."""
    return serving_learner_by_key(CANDIDATE_SOURCES[role])


def serving_learner_by_key(key: str) -> Learner | None:
    """A learner key's serving version, loaded once per worker process and artifact (a
    promotion changes the artifact, so the next call loads the new one). Every worker-side
    scoring call (re-score, sell-out refresh, shadow scoring) takes its model here."""
    scoring_delay()
    version = ModelVersion.objects.filter(key=key, status=ModelVersion.Status.SERVING).first()
    if version is None:
        return None
    if version.artifact_sha256 not in _loaded:
        if len(_loaded) >= len(LEARNERS) * 2:
            _loaded.clear()
        _loaded[version.artifact_sha256] = joblib.load(version.artifact_path)
    return _loaded[version.artifact_sha256]


def candidate_cache_is_filled() -> bool:
    """False after Redis lost its data (a restart without persistence): lists need a refill."""
    return bool(store.read_meta())


def active_users(interactions: Interactions) -> list[str]:
    """Signed-in shoppers with events in the active window (ACTIVE_USER_DAYS): the ones whose
    lists are precomputed; anyone else is served from the feature store and the fallbacks."""
    if not len(interactions):
        return []
    since = interactions.timestamps.max() - settings.ACTIVE_USER_DAYS * 86400
    recent = interactions.since(since)
    users = recent.users[np.unique(recent.user_codes)] if len(recent) else []
    return sorted(str(u) for u in users if u and not str(u).startswith("session:"))


def active_items(interactions: Interactions, catalog: Sequence[CatalogItem]) -> list[str]:
    """Products touched in the active window or launched in it: the ones whose neighbour lists
    are precomputed (an untouched old product has no neighbours to show anyway)."""
    if not len(interactions):
        return [item.sku for item in catalog]
    since = interactions.timestamps.max() - settings.ACTIVE_USER_DAYS * 86400
    recent = interactions.since(since)
    touched = {str(s) for s in recent.items[np.unique(recent.item_codes)]} if len(recent) else set()
    return sorted(touched | {item.sku for item in catalog if item.launched_at >= since})


def precompute_candidates(interactions: Interactions | None = None) -> int:
    """Write every candidate list from the serving versions; returns how many lists.

    Each list runs deep enough to hold its size in available products (see
    recs.candidates.refresh); the availability set, the catalog version readers watch and the
    in-process fallback snapshot are refreshed with it."""
    interactions = interactions_from_event_log() if interactions is None else interactions
    unavailable = set(unavailable_skus())
    sync_unavailable()
    serving = {key: load_serving(key) for key in set(CANDIDATE_SOURCES.values())}
    written = 0
    meta = {}
    skus = active_items(interactions, catalog_items())

    def loaded(role: str):
        entry = serving.get(CANDIDATE_SOURCES[role])
        if entry:
            meta[role] = f"{entry[0].key}#{entry[0].pk}"
        return entry[1] if entry else None

    def deep(ranked, size):
        return fill_past_unavailable(ranked, size, unavailable)

    if (entry := serving.get(CANDIDATE_SOURCES["user"])) and entry[0].params.get("served_blend"):
        meta["blend"] = blend_table.encode(entry[0].params["served_blend"])
    if learner := loaded("user"):
        size = settings.USER_CANDIDATES_SIZE
        for users in batched(
            active_users(interactions), PRECOMPUTE_CHUNK
        ):  # held a chunk at a time
            lists = learner.recommend_many(users, depth_for(size, unavailable))
            written += store.write_lists(
                (f"c:user:{user}", deep(ranked, size)) for user, ranked in lists.items()
            )
    for role, prefix in (
        ("similar_cf", "c:similar:cf"),
        ("similar_content", "c:similar:content"),
        ("bought_together", "c:fbt"),
    ):
        if learner := loaded(role):
            size = settings.SIMILAR_ITEMS_SIZE
            for chunk in batched(skus, PRECOMPUTE_CHUNK):
                lists = learner.similar_items_many(chunk, depth_for(size, unavailable))
                written += store.write_lists(
                    (f"{prefix}:{sku}", deep(ranked, size)) for sku, ranked in lists.items()
                )
    size = settings.POPULAR_LIST_SIZE
    if learner := loaded("popular"):
        segments = [None, *learner.segment_names()]
        lists = [
            (
                f"c:popular:{segment or 'all'}",
                deep(learner.popular(segment, depth_for(size, unavailable)), size),
            )
            for segment in segments
        ]
        written += store.write_lists(lists)
        fallback.write_snapshot(lists[0][1])
    if learner := loaded("trending"):
        written += store.write_lists(
            [("c:trending:all", deep(learner.popular(None, depth_for(size, unavailable)), size))]
        )
    if written:
        store.write_meta(meta)
        sync_catalog_cards()
        written += precompute_experiment_lists(interactions)
    return written


def experiment_model_keys() -> list[str]:
    """Learners named by running or paused experiments whose per-user lists the default
    candidate lists do not already provide."""
    from merch.selectors import experiments_config
    from recs.serving.experiments import as_serving_strategy

    keys = set()
    for experiment in experiments_config():
        for variant in experiment.variants:
            _, model_key = as_serving_strategy(variant.strategy)
            if model_key and not variant.is_shadow:
                keys.add(model_key)
    return sorted(keys)


def precompute_experiment_lists(interactions: Interactions | None = None) -> int:
    """Per-user lists (`c:user@<key>:<user>`) of the learners experiments serve, so that a
    variant naming a model is served from the cache like everything else."""
    keys = experiment_model_keys()
    if not keys:
        return 0
    interactions = interactions_from_event_log() if interactions is None else interactions
    unavailable = set(unavailable_skus())
    users = active_users(interactions)
    size = settings.USER_CANDIDATES_SIZE
    written, meta = 0, {}
    for key in keys:
        entry = load_serving(key)
        if entry is None:
            continue
        version, learner = entry
        for chunk in batched(users, PRECOMPUTE_CHUNK):
            lists = learner.recommend_many(chunk, depth_for(size, unavailable))
            written += store.write_lists(
                (f"c:user@{key}:{user}", fill_past_unavailable(ranked, size, unavailable))
                for user, ranked in lists.items()
            )
        meta[f"user@{key}"] = f"{version.key}#{version.pk}"
    if meta:
        store.writer_client().hset(store.META_KEY, mapping=meta)
    return written
