"""Score learners on a split: the shoppers to score, their top 20, metrics per tier of shopper."""

import resource
import time
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from recs.evaluation.metrics import coverage, hit_rate_at, ndcg_at, recall_at
from recs.evaluation.split import Split
from recs.learners.base import Interactions, Learner, tier_of
from recs.learners.popularity import PopularityLearner

METRICS = ("recall@10", "recall@20", "ndcg@10", "hitrate@10")
LIST_SIZE = 20
# How much of a shopper's training history is kept as their context (most recent last).
HISTORY_SIZE = 200


@dataclass
class TestShopper:
    """A shopper of the test period at the moment of their first event after the cut.

    That first event is revealed (it is in `history`, as the feature store would have it a
    moment later); `relevant` is what they touched after it and had never touched before."""

    user_id: str
    history: list[str]  # distinct items before the cut, then the revealed one; most recent last
    interaction_count: int  # events before the cut (the tier reported)
    relevant: set[str]
    context: dict[str, str]
    revealed_kind: str = ""  # the first event's kind ("view", "purchase", ...)

    @property
    def tier(self) -> str:
        return tier_of(self.interaction_count)


@dataclass
class ModelResult:
    name: str
    fit_seconds: float = 0.0
    by_tier: dict[str, dict[str, float]] = field(default_factory=dict)
    users_by_tier: dict[str, int] = field(default_factory=dict)
    coverage_at_10: float = 0.0
    params: dict = field(default_factory=dict)
    # Over seeds (stochastic learners): per metric of the "all" row, the standard deviation.
    spread: dict[str, float] = field(default_factory=dict)
    seeds: int = 1
    failed: str = ""  # why it could not be evaluated; empty when it ran

    @property
    def overall(self) -> dict[str, float]:
        return self.by_tier.get("all", {})


def shoppers_to_score(
    train: Interactions,
    test: Interactions,
    *,
    max_shoppers: int | None = None,
    seed: int = 0,
) -> list[TestShopper]:
    """Shoppers of the test period (a seeded sample of at most `max_shoppers`), each at their
    first event after the cut: that event is revealed, the items they touched after it and
    never before are relevant. Shoppers with nothing relevant left are not scored. Linear in
    the events."""
    if not len(test):
        return []
    test_users = np.unique(test.user_codes)
    if max_shoppers is not None and len(test_users) > max_shoppers:
        rng = np.random.default_rng(seed)
        test_users = np.sort(rng.choice(test_users, size=max_shoppers, replace=False))
    counts = np.bincount(train.user_codes, minlength=len(train.users)) if len(train) else None
    histories: dict[int, dict[int, None]] = defaultdict(dict)
    if len(train):
        mine = np.flatnonzero(np.isin(train.user_codes, test_users))
        for user, item in zip(train.user_codes[mine], train.item_codes[mine], strict=True):
            history = histories[int(user)]
            history.pop(int(item), None)
            history[int(item)] = None
    revealed: dict[int, tuple[int, int]] = {}  # user -> (item, kind) of their first test event
    relevant: dict[int, set[int]] = defaultdict(set)
    first_context: dict[int, dict[str, str]] = {}
    countries = test.country_ids if len(test.countries) else None
    mine = np.flatnonzero(np.isin(test.user_codes, test_users))
    for position in mine:
        user, item = int(test.user_codes[position]), int(test.item_codes[position])
        if user not in revealed:
            revealed[user] = (item, int(test.event_codes[position]))
            first_context[user] = {
                "country": str(countries[position]) if countries is not None else "",
                "hour": str(time.gmtime(float(test.timestamps[position])).tm_hour),
            }
        elif item != revealed[user][0] and item not in histories.get(user, {}):
            relevant[user].add(item)
    items = test.items
    shoppers = []
    for user in sorted(relevant, key=lambda u: str(test.users[u])):
        first, kind = revealed[user]
        before = [i for i in histories.get(user, {}) if i != first]
        history = [str(items[i]) for i in [*before, first]][-HISTORY_SIZE:]
        count = int(counts[user]) if counts is not None and user < len(counts) else 0
        shoppers.append(
            TestShopper(
                str(test.users[user]),
                history,
                count,
                {str(items[i]) for i in relevant[user]},
                first_context[user],
                str(test.event_vocabulary[kind]),
            )
        )
    return shoppers


class ListScorer:
    """Turns a fitted learner into each shopper's top 20 the way serving would show it: only
    products of the split's catalog, nothing the shopper already had, backfilled from global
    popularity (serving's last fallback)."""

    def __init__(self, split: Split, shoppers: Sequence[TestShopper]):
        self.shoppers = shoppers
        self.allowed = {item.sku for item in split.catalog}
        self.backfill = PopularityLearner(list_size=max(LIST_SIZE * 50, 1000)).fit(
            split.train, split.catalog
        )

    def lists(self, learner: Learner) -> list[list[str]]:
        return [self.top(learner, shopper) for shopper in self.shoppers]

    def top(self, learner: Learner, shopper: TestShopper) -> list[str]:
        exclude = set(shopper.history)
        ranked = learner.recommend(
            shopper.user_id, shopper.history, LIST_SIZE * 2, exclude=exclude,
            context=shopper.context,
        )  # fmt: skip
        return self.complete([sku for sku, _ in ranked], exclude)

    def complete(self, ranked: Sequence[str], exclude: Collection[str]) -> list[str]:
        chosen = [
            sku for sku in dict.fromkeys(ranked) if sku in self.allowed and sku not in exclude
        ]
        chosen = chosen[:LIST_SIZE]
        if len(chosen) < LIST_SIZE:
            taken = {*exclude, *chosen}
            for sku, _ in self.backfill.popular(None, LIST_SIZE * 3, exclude=taken):
                if sku in self.allowed and len(chosen) < LIST_SIZE:
                    chosen.append(sku)
        return chosen


def shopper_metrics(ranked: Sequence[str], relevant: Collection[str]) -> dict[str, float]:
    return {
        "recall@10": recall_at(ranked, relevant, 10),
        "recall@20": recall_at(ranked, relevant, 20),
        "ndcg@10": ndcg_at(ranked, relevant, 10),
        "hitrate@10": hit_rate_at(ranked, relevant, 10),
    }


def summarise(
    name: str,
    lists: Sequence[Sequence[str]],
    shoppers: Sequence[TestShopper],
    catalog_size: int,
) -> ModelResult:
    """Mean metrics per tier and overall ("all"), and catalog coverage of the top 10s."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    users: dict[str, int] = defaultdict(int)
    for ranked, shopper in zip(lists, shoppers, strict=True):
        values = shopper_metrics(ranked, shopper.relevant)
        for tier in (shopper.tier, "all"):
            users[tier] += 1
            for metric, value in values.items():
                sums[tier][metric] += value
    return ModelResult(
        name=name,
        by_tier={t: {m: sums[t][m] / users[t] for m in METRICS} for t in users},
        users_by_tier=dict(users),
        coverage_at_10=coverage(lists, catalog_size, 10),
    )


def mean_of(results: Sequence[ModelResult]) -> ModelResult:
    """Several seeds' results as one: means per tier, standard deviations of the overall row."""
    first = results[0]
    tiers = first.by_tier
    merged = ModelResult(
        name=first.name,
        fit_seconds=float(np.mean([r.fit_seconds for r in results])),
        by_tier={
            t: {m: float(np.mean([r.by_tier[t][m] for r in results])) for m in METRICS}
            for t in tiers
        },
        users_by_tier=first.users_by_tier,
        coverage_at_10=float(np.mean([r.coverage_at_10 for r in results])),
        params=first.params,
        seeds=len(results),
    )
    merged.spread = {
        m: float(np.std([r.overall[m] for r in results]))
        for m in (*METRICS, "coverage@10")
        if m != "coverage@10"
    }
    merged.spread["coverage@10"] = float(np.std([r.coverage_at_10 for r in results]))
    return merged


def failure_reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:300]


def peak_memory_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def relative(a: float, b: float) -> float:
    return a / b if b else float(np.inf)
