"""Run learners side by side on a temporal split and report metrics per tier of shopper."""

import resource
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from recs.evaluation.metrics import coverage, hit_rate_at, ndcg_at, recall_at
from recs.learners.base import CatalogItem, Interactions, Learner
from recs.learners.popularity import PopularityLearner

TIERS = (("0", 0, 0), ("1-9", 1, 9), ("10+", 10, None))
METRICS = ("recall@10", "recall@20", "ndcg@10", "hitrate@10")


def tier_of(interaction_count: int) -> str:
    return next(
        name
        for name, low, high in TIERS
        if interaction_count >= low and (high is None or interaction_count <= high)
    )


@dataclass
class TestShopper:
    user_id: str
    history: list[str]  # distinct training items, most recent last
    interaction_count: int
    relevant: set[str]  # items first touched in the test period
    context: dict[str, str]


@dataclass
class ModelResult:
    name: str
    fit_seconds: float
    by_tier: dict[str, dict[str, float]] = field(default_factory=dict)
    users_by_tier: dict[str, int] = field(default_factory=dict)
    coverage_at_10: float = 0.0

    @property
    def overall(self) -> dict[str, float]:
        return self.by_tier["all"]


def shoppers_to_score(train: Interactions, test: Interactions) -> list[TestShopper]:
    """Shoppers with test interactions; relevant = items they had not touched before the split."""
    histories: dict[str, dict[str, None]] = defaultdict(dict)
    counts: dict[str, int] = defaultdict(int)
    for user, item in zip(train.user_ids, train.item_ids, strict=True):
        histories[user].pop(item, None)
        histories[user][item] = None
        counts[user] += 1
    relevant: dict[str, set[str]] = defaultdict(set)
    first_context: dict[str, dict[str, str]] = {}
    for user, item, ts, country in zip(
        test.user_ids, test.item_ids, test.timestamps, test.countries, strict=True
    ):
        if not user:
            continue
        if item not in histories.get(user, {}):
            relevant[user].add(item)
        if user not in first_context:
            first_context[user] = {"country": country, "hour": str(time.gmtime(ts).tm_hour)}
    return [
        TestShopper(
            user, list(histories.get(user, {})), counts.get(user, 0), items, first_context[user]
        )
        for user, items in sorted(relevant.items())
    ]


def evaluate_learners(
    learners: Mapping[str, Learner],
    train: Interactions,
    test: Interactions,
    catalog: Sequence[CatalogItem],
    *,
    progress: Callable[[str], None] | None = None,
    fitted: bool = False,
) -> list[ModelResult]:
    """Fit each learner on train (unless `fitted`) and score its top 20 for every test shopper.

    Every list is backfilled from global popularity to 20 items, as serving backfills through
    its fallback chain, so that each model is judged on a full list.
    """
    shoppers = shoppers_to_score(train, test)
    backfill = PopularityLearner().fit(train, catalog)
    results = []
    for name, learner in learners.items():
        if progress:
            progress(name)
        started = time.perf_counter()
        if not fitted:
            learner.fit(train, catalog)
        result = ModelResult(name=name, fit_seconds=time.perf_counter() - started)
        sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        users: dict[str, int] = defaultdict(int)
        lists = []
        for shopper in shoppers:
            exclude = set(shopper.history)
            ranked = [sku for sku, _ in learner.recommend(
                shopper.user_id, shopper.history, 20, exclude=exclude, context=shopper.context)]  # fmt: skip
            if len(ranked) < 20:
                ranked += [
                    sku
                    for sku, _ in backfill.popular(
                        None, 20 - len(ranked), exclude={*exclude, *ranked}
                    )
                ]
            lists.append(ranked)
            values = {
                "recall@10": recall_at(ranked, shopper.relevant, 10),
                "recall@20": recall_at(ranked, shopper.relevant, 20),
                "ndcg@10": ndcg_at(ranked, shopper.relevant, 10),
                "hitrate@10": hit_rate_at(ranked, shopper.relevant, 10),
            }
            for tier in (tier_of(shopper.interaction_count), "all"):
                users[tier] += 1
                for metric, value in values.items():
                    sums[tier][metric] += value
        result.by_tier = {
            tier: {metric: sums[tier][metric] / users[tier] for metric in METRICS} for tier in users
        }
        result.users_by_tier = dict(users)
        result.coverage_at_10 = coverage(lists, len(catalog), 10)
        results.append(result)
    return results


def peak_memory_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_by(
    results: Sequence[ModelResult], metric: str = "recall@20", exclude: Sequence[str] = ()
) -> ModelResult:
    return max((r for r in results if r.name not in exclude), key=lambda r: r.overall[metric])


def relative(a: float, b: float) -> float:
    return a / b if b else float(np.inf)
