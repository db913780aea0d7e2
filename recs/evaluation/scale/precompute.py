"""The candidate lists the training pipeline would precompute, computed (not written) and
timed; on a seeded sample, extrapolated, when the full run would take too long."""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from django.test import override_settings

from aisle.conf import aisle_settings
from recs.evaluation.offline import failure_reason, peak_memory_mib
from recs.evaluation.scale.measures import ListsMeasure, PrecomputeMeasure, Say, rss_mib
from recs.learners import CatalogItem, Interactions, Learner
from recs.training.precompute import PRECOMPUTE_CHUNK, active_items, active_users
from recs.training.registry import CANDIDATE_SOURCES

# Per-entity precompute calls timed before deciding whether the full run is affordable.
PROBE_CALLS = 200
PRECOMPUTE_LIMIT_S = 30 * 60
PRECOMPUTE_SAMPLE = 20_000


def active_shoppers_and_items(
    interactions: Interactions, catalog: Sequence[CatalogItem], active_days: float
) -> tuple[list[str], list[str]]:
    """The users and items whose lists the training pipeline precomputes (its own functions,
    with the active window set to `active_days`)."""
    with override_settings(ACTIVE_USER_DAYS=active_days):
        return active_users(interactions), active_items(interactions, catalog)


@dataclass
class _Role:
    """A per-user or per-item kind of list: its learner and how to compute a batch of lists."""

    role: str
    learner: str
    population: list[str]
    compute: Callable[[list[str]], list[list]]


def _roles(
    fitted: Mapping[str, Learner], users: list[str], skus: list[str]
) -> tuple[list[_Role], dict[str, str]]:
    user_size, similar_size = aisle_settings.USER_CANDIDATES_SIZE, aisle_settings.SIMILAR_ITEMS_SIZE
    roles, skipped = [], {}
    for role in ("user", "similar_cf", "similar_content", "bought_together"):
        key = CANDIDATE_SOURCES[role]
        learner = fitted.get(key)
        if learner is None:
            skipped[role] = f"`{key}` was not fitted"
        elif role == "user":

            def per_user(batch, learner=learner):
                return list(learner.recommend_many(batch, user_size).values())

            roles.append(_Role(role, key, users, per_user))
        else:

            def per_item(batch, learner=learner):
                return list(learner.similar_items_many(batch, similar_size).values())

            roles.append(_Role(role, key, skus, per_item))
    return roles, skipped


def _popularity_lists(fitted: Mapping[str, Learner], say: Say) -> tuple[list[ListsMeasure], dict]:
    """The global and per-segment popularity lists and the trending list: few, always all."""
    size = aisle_settings.POPULAR_LIST_SIZE
    measures, skipped = [], {}
    for role in ("popular", "trending"):
        key = CANDIDATE_SOURCES[role]
        learner = fitted.get(key)
        if learner is None:
            skipped[role] = f"`{key}` was not fitted"
            continue
        started = time.perf_counter()
        try:
            segments = [None, *learner.segment_names()] if role == "popular" else [None]
            lists = [learner.popular(segment, size) for segment in segments]
        except Exception as error:
            measures.append(ListsMeasure(role, key, 0, 0, 0.0, 0, failure_reason(error)))
            continue
        seconds = time.perf_counter() - started
        measures.append(
            ListsMeasure(role, key, len(lists), len(lists), seconds, sum(map(len, lists)))
        )
        say(f"{role}: {len(lists):,} lists in {seconds:.2f} s")
    return measures, skipped


def measure_precompute(
    fitted: Mapping[str, Learner],
    interactions: Interactions,
    catalog: Sequence[CatalogItem],
    *,
    active_days: float | None = None,
    sample: int = PRECOMPUTE_SAMPLE,
    limit_s: float = PRECOMPUTE_LIMIT_S,
    probe: int = PROBE_CALLS,
    seed: int = 0,
    say: Say | None = None,
) -> PrecomputeMeasure:
    """Compute the lists the training pipeline would write (not writing them anywhere).

    A few calls per kind of list are timed first; when the full run extrapolated from them
    would take longer than `limit_s`, every per-user and per-item kind runs on the same seeded
    sample of at most `sample` users and items, and its full time is extrapolated from the rate
    measured on that sample."""
    say = say or (lambda message: None)
    days = aisle_settings.ACTIVE_USER_DAYS if active_days is None else active_days
    peak_before, rss_before = peak_memory_mib(), rss_mib()
    started = time.perf_counter()
    users, skus = active_shoppers_and_items(interactions, catalog, days)
    say(f"precompute: {len(users):,} active users, {len(skus):,} active items")
    rng = np.random.default_rng(seed)
    order = {"users": rng.permutation(len(users)), "items": rng.permutation(len(skus))}
    roles, skipped = _roles(fitted, users, skus)
    done: dict[str, tuple[int, float, int]] = {}  # role -> (computed, seconds, entries)
    failures: dict[str, str] = {}
    held: dict[str, tuple[float, int]] = {}  # role -> (MiB per list, lists), largest batch

    def run(role: _Role, stop: int) -> None:
        start, seconds, entries = done.get(role.role, (0, 0.0, 0))
        stop = max(stop, start)
        positions = order["users" if role.role == "user" else "items"][start:stop]
        batch = [role.population[i] for i in positions]
        began, made = time.perf_counter(), 0
        # As the pipeline does: a chunk of lists computed, measured and let go at a time.
        for first in range(0, len(batch), PRECOMPUTE_CHUNK):
            chunk = batch[first : first + PRECOMPUTE_CHUNK]
            rss_before = rss_mib()
            try:
                lists = role.compute(chunk)
            except Exception as error:
                failures[role.role] = failure_reason(error)
                return
            if len(chunk) >= held.get(role.role, (0.0, 0))[1]:  # the largest chunk tells best
                grown = max(rss_mib() - rss_before, 0.0)
                held[role.role] = (grown / max(len(chunk), 1), len(chunk))
            made += sum(map(len, lists))
            del lists
        spent = time.perf_counter() - began
        done[role.role] = (stop, seconds + spent, entries + made)

    estimate = 0.0
    for role in roles:
        run(role, min(probe, len(role.population)))
        computed, seconds, _ = done.get(role.role, (0, 0.0, 0))
        if computed:
            estimate += seconds / computed * len(role.population)
    sampled = estimate > limit_s
    say(
        f"precompute: full run estimated at {estimate / 60:,.1f} min from the probe"
        + (f"; running a seeded sample of at most {sample:,} users/items" if sampled else "")
    )
    for role in roles:
        if role.role in failures:
            continue
        stop = min(sample, len(role.population)) if sampled else len(role.population)
        run(role, stop)
        computed, seconds, _ = done.get(role.role, (0, 0.0, 0))
        say(f"{role.role}: {computed:,} lists in {seconds:.1f} s")
    lists = []
    for role in roles:
        computed, seconds, entries = done.get(role.role, (0, 0.0, 0))
        measure = ListsMeasure(
            role.role, role.learner, len(role.population), computed, seconds, entries,
            failed=failures.get(role.role), held_mib_per_list=held.get(role.role, (0.0, 0))[0],
            held_batch=held.get(role.role, (0.0, 0))[1],
        )  # fmt: skip
        lists.append(measure)
    popular, popular_skipped = _popularity_lists(fitted, say)
    return PrecomputeMeasure(
        active_days=days, active_users=len(users), active_items=len(skus),
        probe_estimate_s=estimate, sampled=sampled, sample_size=sample, probe_calls=probe,
        limit_s=limit_s,
        seconds=time.perf_counter() - started, peak_before_mib=peak_before,
        peak_after_mib=peak_memory_mib(), rss_before_mib=rss_before, rss_after_mib=rss_mib(),
        lists=lists + popular, skipped={**skipped, **popular_skipped},
    )  # fmt: skip
