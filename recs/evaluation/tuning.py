"""Hyper-parameter search on the validation split, with the same budget for every learner."""

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from recs.evaluation.offline import (
    ListScorer,
    ModelResult,
    TestShopper,
    failure_reason,
    summarise,
)
from recs.evaluation.split import Split
from recs.learners.base import Learner

PRIMARY_METRIC = "recall@20"


def configurations(
    space: Mapping[str, Sequence[Any]], budget: int, seed: int = 0
) -> list[dict[str, Any]]:
    """The whole grid when it fits the budget, else a seeded sample of `budget` points."""
    names = sorted(space)
    grid = list(product(*(space[name] for name in names)))
    if len(grid) > budget:
        grid = random.Random(seed).sample(grid, budget)
    return [dict(zip(names, values, strict=True)) for values in grid]


@dataclass
class Trial:
    params: dict[str, Any]
    score: float = 0.0  # PRIMARY_METRIC on the validation split
    seconds: float = 0.0
    failed: str = ""


@dataclass
class Tuned:
    """The winning configuration, the learner fitted with it on the validation split's training
    part (reused by learners built from it, such as the hybrid), and every trial."""

    name: str
    params: dict[str, Any]
    learner: Learner
    validation: ModelResult
    trials: list[Trial] = field(default_factory=list)


def tune(
    name: str,
    factory: Callable[[dict[str, Any]], Learner],
    space: Mapping[str, Sequence[Any]],
    split: Split,
    shoppers: Sequence[TestShopper],
    *,
    budget: int,
    seed: int = 0,
    scorer: ListScorer | None = None,
) -> Tuned:
    """Fit and score each sampled configuration on the validation split; the best by Recall@20
    wins. A learner with a post-fit blend (`tune_blend`) picks it on the same shoppers. Raises
    RuntimeError when every configuration failed."""
    scorer = scorer or ListScorer(split, shoppers)
    trials: list[Trial] = []
    best: tuple[float, Trial, Learner, ModelResult] | None = None
    for params in configurations(space, budget, seed) or [{}]:
        started = time.perf_counter()
        try:
            learner = factory(params).fit(split.train, split.catalog)
            chosen = dict(params)
            if hasattr(learner, "tune_blend"):
                chosen.update(learner.tune_blend(scorer))
            result = summarise(name, scorer.lists(learner), shoppers, len(split.catalog))
        except (Exception, MemoryError) as error:
            trials.append(Trial(params, failed=failure_reason(error)))
            continue
        trial = Trial(
            chosen, result.overall.get(PRIMARY_METRIC, 0.0), time.perf_counter() - started
        )
        trials.append(trial)
        if best is None or trial.score > best[0]:
            best = (trial.score, trial, learner, result)
    if best is None:
        reasons = "; ".join(sorted({t.failed for t in trials}))
        raise RuntimeError(f"every configuration failed on the validation split: {reasons}")
    _, trial, learner, result = best
    result.params = trial.params
    return Tuned(name, trial.params, learner, result, trials)
