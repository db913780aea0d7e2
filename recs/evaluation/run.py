"""The evaluation protocol end to end: tune on validation, score the test period once.

Every learner (the reference baselines included) gets the same number of configurations on
the validation split, which lies wholly before the test cut; the winner is refitted on all data
before the test cut and scored once on the test period, over several seeds when it is
stochastic. A learner that fails is reported with its reason and the run goes on.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recs.evaluation.offline import (
    ListScorer,
    ModelResult,
    TestShopper,
    failure_reason,
    mean_of,
    peak_memory_mib,
    shoppers_to_score,
    summarise,
)
from recs.evaluation.split import Protocol, protocol_splits
from recs.evaluation.tuning import Tuned, tune
from recs.learners import LEARNERS, Learner
from recs.learners.base import CatalogItem, Interactions, construct
from recs.learners.hybrid import COMPONENTS, HybridLearner

# Reference baselines: what a shop would otherwise pick; tuned exactly like the project's own.
BASELINES = {"popularity": "global popularity", "als": "implicit ALS"}
# The learner behind each kind of list the render path reads (recs.training.pipeline).
SERVED_ROLES = {
    "user": "hybrid",
    "similar_cf": "hybrid",
    "similar_content": "content",
    "popular": "popularity",
    "trending": "trending",
}


@dataclass
class EvaluationRun:
    protocol: Protocol
    results: list[ModelResult]
    tuned: dict[str, Tuned]
    validation_shoppers: list[TestShopper]
    test_shoppers: list[TestShopper]
    budget: int
    seeds: int
    seconds: float = 0.0
    peak_memory_mib: float = 0.0
    # Fitted on the test split's training part, per seed; the served replay reuses them.
    fitted: dict[str, list[Learner]] = field(default_factory=dict)
    served: ModelResult | None = None  # the render path replayed (None: not run)
    served_default: ModelResult | None = None  # the same with the untuned blend table
    blend: dict[str, dict[str, float]] = field(default_factory=dict)

    def result(self, name: str) -> ModelResult | None:
        return next((r for r in self.results if r.name == name), None)


def learner_factory(
    key: str, event_weights: Mapping[str, float] | None = None, **fixed: Any
) -> Callable[[dict[str, Any]], Learner]:
    """Builds `key`'s learner from a configuration (seed 0 unless given)."""
    cls = LEARNERS[key]
    return lambda params: construct(cls, {**fixed, **params}, event_weights=event_weights)


def run_evaluation(
    interactions: Interactions,
    catalog: Sequence[CatalogItem],
    *,
    keys: Sequence[str] | None = None,
    holdout_days: float | None = None,
    budget: int = 6,
    seeds: int = 3,
    max_shoppers: int | None = 5000,
    event_weights: Mapping[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
    served: bool = True,
) -> EvaluationRun:
    started = time.perf_counter()
    say = progress or (lambda message: None)
    protocol = protocol_splits(interactions, catalog, holdout_days)
    say("choosing shoppers to score")
    validation_shoppers = shoppers_to_score(
        protocol.validation.train, protocol.validation.test, max_shoppers=max_shoppers
    )
    test_shoppers = shoppers_to_score(
        protocol.test.train, protocol.test.test, max_shoppers=max_shoppers
    )
    run = EvaluationRun(
        protocol, [], {}, validation_shoppers, test_shoppers, budget=budget, seeds=seeds
    )
    validation_scorer = ListScorer(protocol.validation, validation_shoppers)
    test_scorer = ListScorer(protocol.test, test_shoppers)
    keys = list(keys or LEARNERS)
    ordered = [k for k in keys if k != "hybrid"] + (["hybrid"] if "hybrid" in keys else [])
    for key in ordered:
        try:
            if key == "hybrid":
                result = _evaluate_hybrid(run, validation_scorer, test_scorer, event_weights, say)
            else:
                result = _evaluate_one(
                    run, key, validation_scorer, test_scorer, event_weights, say,
                    keep_fitted=key in COMPONENTS or key in SERVED_ROLES.values(),
                )  # fmt: skip
        except (Exception, MemoryError) as error:  # one learner must not end the run
            say(f"{key} failed: {failure_reason(error)}")
            result = ModelResult(name=key, failed=failure_reason(error))
        run.results.append(result)
    if served:
        _evaluate_served(run, say)
    run.seconds = time.perf_counter() - started
    run.peak_memory_mib = peak_memory_mib()
    return run


def _evaluate_one(
    run: EvaluationRun,
    key: str,
    validation_scorer: ListScorer,
    test_scorer: ListScorer,
    event_weights: Mapping[str, float] | None,
    say: Callable[[str], None],
    *,
    keep_fitted: bool,
) -> ModelResult:
    cls = LEARNERS[key]
    factory = learner_factory(key, event_weights)
    say(f"tuning {key} on the validation split")
    tuned = tune(
        key, factory, cls.search_space, run.protocol.validation, run.validation_shoppers,
        budget=run.budget, scorer=validation_scorer,
    )  # fmt: skip
    run.tuned[key] = tuned
    split = run.protocol.test
    per_seed = []
    for seed in range(run.seeds) if cls.stochastic else [0]:
        say(f"scoring {key} on the test period (seed {seed})")
        learner = factory({**tuned.params, **({"seed": seed} if cls.stochastic else {})})
        fit_started = time.perf_counter()
        learner.fit(split.train, split.catalog)
        fit_seconds = time.perf_counter() - fit_started
        result = summarise(key, test_scorer.lists(learner), run.test_shoppers, len(split.catalog))
        result.fit_seconds = fit_seconds
        per_seed.append(result)
        if keep_fitted:
            run.fitted.setdefault(key, []).append(learner)
    merged = mean_of(per_seed)
    merged.params = tuned.params
    return merged


def _evaluate_hybrid(
    run: EvaluationRun,
    validation_scorer: ListScorer,
    test_scorer: ListScorer,
    event_weights: Mapping[str, float] | None,
    say: Callable[[str], None],
) -> ModelResult:
    """The hybrid's components come tuned (their own validation winners); only its per-tier
    blend is tuned here, on the same validation shoppers, then it is scored per seed."""
    components = [k for k in COMPONENTS if k in run.tuned and k in run.fitted]
    if not components:
        raise RuntimeError("none of its components could be evaluated")
    component_params = {k: run.tuned[k].params for k in components}
    say("tuning the hybrid's blend on the validation split")
    hybrid = HybridLearner(event_weights, component_params=component_params)
    hybrid.use_fitted({k: run.tuned[k].learner for k in components}, run.protocol.validation.train)
    chosen = hybrid.tune_blend(validation_scorer)
    validation = summarise(
        "hybrid", validation_scorer.lists(hybrid), run.validation_shoppers,
        len(run.protocol.validation.catalog),
    )  # fmt: skip
    params = {"component_params": component_params, **chosen}
    run.tuned["hybrid"] = Tuned("hybrid", params, hybrid, validation)
    split = run.protocol.test
    per_seed = []
    seeds = max(len(run.fitted[k]) for k in components)
    for seed in range(seeds):
        say(f"scoring hybrid on the test period (seed {seed})")
        fitted = {k: run.fitted[k][min(seed, len(run.fitted[k]) - 1)] for k in components}
        learner = HybridLearner(event_weights, seed=seed, **params).use_fitted(fitted, split.train)
        result = summarise(
            "hybrid", test_scorer.lists(learner), run.test_shoppers, len(split.catalog)
        )
        result.fit_seconds = sum(
            r.fit_seconds for r in run.results if r.name in components and not r.failed
        )
        per_seed.append(result)
        run.fitted.setdefault("hybrid", []).append(learner)
    merged = mean_of(per_seed)
    merged.params = params
    return merged


def _evaluate_served(run: EvaluationRun, say: Callable[[str], None]) -> None:
    """Replay the render path when every learner it reads from was evaluated."""
    from recs.evaluation.served import evaluate_served  # Django-side code: imported when used

    keys = set(SERVED_ROLES.values())
    missing = sorted(k for k in keys if k not in run.tuned or k not in run.fitted)
    if missing:
        run.served = ModelResult(name="served", failed=f"needs {', '.join(missing)}")
        return
    say("replaying the render path (blend tuned on the validation split)")
    try:
        validation = {role: run.tuned[key].learner for role, key in SERVED_ROLES.items()}
        seeds = max(len(run.fitted[k]) for k in keys)
        test = [
            {
                role: run.fitted[key][min(s, len(run.fitted[key]) - 1)]
                for role, key in SERVED_ROLES.items()
            }
            for s in range(seeds)
        ]
        run.served, run.blend, run.served_default = evaluate_served(
            validation, run.protocol.validation, run.validation_shoppers,
            test, run.protocol.test, run.test_shoppers,
        )  # fmt: skip
    except (Exception, MemoryError) as error:
        say(f"served replay failed: {failure_reason(error)}")
        run.served = ModelResult(name="served", failed=failure_reason(error))
