"""One training pipeline for the command, the beat schedule and the admin action.

Build the training set from the event log, evaluate every learner on a temporal split, refit on
all data, save versioned artifacts with their metrics, promote versions that beat the serving
one on Recall@20, and precompute the candidate lists from the serving versions into Redis.
"""

import hashlib
import inspect
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import joblib
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from threadpoolctl import threadpool_limits

from merch.selectors import unavailable_skus
from recs.candidates import store
from recs.candidates.refresh import depth_for, fill_past_unavailable
from recs.evaluation.offline import evaluate_learners, peak_memory_mib
from recs.evaluation.split import temporal_split
from recs.faults import scoring_delay
from recs.learners import LEARNERS, Learner
from recs.learners.base import Interactions
from recs.models import ModelVersion
from recs.serving import fallback
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


class NoTrainingData(Exception):
    pass


@dataclass
class TrainingRun:
    run_id: str
    interactions: int
    versions: list[ModelVersion] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    candidate_lists: int = 0
    seconds: float = 0.0
    peak_memory_mib: float = 0.0


def build_learner(key: str) -> Learner:
    """A learner with the project's settings (event weights) where it takes them."""
    cls = LEARNERS[key]
    if "event_weights" in inspect.signature(cls.__init__).parameters:
        return cls(event_weights=settings.EVENT_WEIGHTS)
    return cls()


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


def train_models(
    keys: Sequence[str] | None = None,
    *,
    holdout_days: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainingRun:
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
        train, test, _ = temporal_split(interactions, holdout_days)
        results = evaluate_learners(
            {key: build_learner(key) for key in keys}, train, test, catalog,
            progress=lambda key: say(f"evaluating {key}"),
        )  # fmt: skip
        metrics = {
            r.name: {**r.by_tier.get("all", {}), "coverage@10": r.coverage_at_10} for r in results
        }
        for key in keys:
            say(f"fitting {key} on all data")
            fit_started = time.perf_counter()
            learner = build_learner(key).fit(interactions, catalog)
            fit_seconds = time.perf_counter() - fit_started
            path, digest = _save_artifact(learner, run.run_id)
            version = ModelVersion.objects.create(
                key=key, training_run=run.run_id, params=learner.params(),
                data_start=_when(interactions.timestamps.min()),
                data_end=_when(interactions.timestamps.max()), interactions=len(interactions),
                metrics=metrics.get(key, {}), artifact_path=path, artifact_sha256=digest,
                fit_seconds=fit_seconds,
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
    if not len(interactions):
        return []
    since = interactions.timestamps.max() - settings.ACTIVE_USER_DAYS * 86400
    recent = interactions.user_ids[interactions.timestamps >= since]
    return sorted({u for u in recent if u and not u.startswith("session:")})


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
    skus = [item.sku for item in catalog_items()]

    def loaded(role: str):
        entry = serving.get(CANDIDATE_SOURCES[role])
        if entry:
            meta[role] = f"{entry[0].key}#{entry[0].pk}"
        return entry[1] if entry else None

    def deep(ranked, size):
        return fill_past_unavailable(ranked, size, unavailable)

    if learner := loaded("user"):
        size = settings.USER_CANDIDATES_SIZE
        lists = learner.recommend_many(active_users(interactions), depth_for(size, unavailable))
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
            written += store.write_lists(
                (
                    f"{prefix}:{sku}",
                    deep(learner.similar_items(sku, depth_for(size, unavailable)), size),
                )
                for sku in skus
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
        lists = learner.recommend_many(users, depth_for(size, unavailable))
        written += store.write_lists(
            (f"c:user@{key}:{user}", fill_past_unavailable(ranked, size, unavailable))
            for user, ranked in lists.items()
        )
        meta[f"user@{key}"] = f"{version.key}#{version.pk}"
    if meta:
        store.writer_client().hset(store.META_KEY, mapping=meta)
    return written
