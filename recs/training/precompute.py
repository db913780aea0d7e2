"""Precomputing the candidate lists into Redis from the serving versions: every list, after
training or a promotion, and the per-user lists of models that experiments serve.

Each list runs deep enough to hold its size in available products (recs.candidates.refresh);
it is written a chunk of shoppers or products at a time, so memory stays flat."""

from collections.abc import Sequence

import numpy as np

from aisle.conf import aisle_settings
from merch.selectors.catalog import unavailable_skus
from recs import redis_keys
from recs.batches import batched
from recs.candidates import store
from recs.candidates.availability import sync_unavailable
from recs.candidates.refresh import depth_for, fill_past_unavailable
from recs.learners.base import CatalogItem, Interactions
from recs.serving import blend_table, fallback
from recs.serving.catalog import sync_catalog_cards
from recs.training.data import catalog_items, interactions_from_event_log
from recs.training.registry import CANDIDATE_SOURCES, load_serving

# Lists computed and written per chunk of shoppers or products, so memory stays flat.
PRECOMPUTE_CHUNK = 5000


def candidate_cache_is_filled() -> bool:
    """False after Redis lost its data (a restart without persistence): lists need a refill."""
    return bool(store.read_meta())


def active_users(interactions: Interactions) -> list[str]:
    """Signed-in shoppers with events in the active window (ACTIVE_USER_DAYS): the ones whose
    lists are precomputed; anyone else is served from the feature store and the fallbacks."""
    if not len(interactions):
        return []
    since = interactions.timestamps.max() - aisle_settings.ACTIVE_USER_DAYS * 86400
    recent = interactions.since(since)
    users = recent.users[np.unique(recent.user_codes)] if len(recent) else []
    return sorted(str(u) for u in users if u and not str(u).startswith("session:"))


def active_items(interactions: Interactions, catalog: Sequence[CatalogItem]) -> list[str]:
    """Products touched in the active window or launched in it: the ones whose neighbour lists
    are precomputed (an untouched old product has no neighbours to show anyway)."""
    if not len(interactions):
        return [item.sku for item in catalog]
    since = interactions.timestamps.max() - aisle_settings.ACTIVE_USER_DAYS * 86400
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
        size = aisle_settings.USER_CANDIDATES_SIZE
        for users in batched(
            active_users(interactions), PRECOMPUTE_CHUNK
        ):  # held a chunk at a time
            lists = learner.recommend_many(users, depth_for(size, unavailable))
            written += store.write_lists(
                (redis_keys.user_list(user), deep(ranked, size)) for user, ranked in lists.items()
            )
    for role, list_key in (
        ("similar_cf", redis_keys.similar_cf_list),
        ("similar_content", redis_keys.similar_content_list),
        ("bought_together", redis_keys.bought_together_list),
    ):
        if learner := loaded(role):
            size = aisle_settings.SIMILAR_ITEMS_SIZE
            for chunk in batched(skus, PRECOMPUTE_CHUNK):
                lists = learner.similar_items_many(chunk, depth_for(size, unavailable))
                written += store.write_lists(
                    (list_key(sku), deep(ranked, size)) for sku, ranked in lists.items()
                )
    size = aisle_settings.POPULAR_LIST_SIZE
    if learner := loaded("popular"):
        segments = [None, *learner.segment_names()]
        lists = [
            (
                redis_keys.popular_list(segment),
                deep(learner.popular(segment, depth_for(size, unavailable)), size),
            )
            for segment in segments
        ]
        written += store.write_lists(lists)
        fallback.write_snapshot(lists[0][1])
    if learner := loaded("trending"):
        written += store.write_lists(
            [
                (
                    redis_keys.TRENDING_ALL,
                    deep(learner.popular(None, depth_for(size, unavailable)), size),
                )
            ]
        )
    if written:
        store.write_meta(meta)
        sync_catalog_cards()
        written += precompute_experiment_lists(interactions)
    return written


def experiment_model_keys() -> list[str]:
    """Learners named by running or paused experiments whose per-user lists the default
    candidate lists do not already provide."""
    from merch.selectors.experiments import experiments_config
    from recs.serving.experiments import as_serving_strategy

    keys = set()
    for experiment in experiments_config():
        for variant in experiment.variants:
            _, model_key = as_serving_strategy(variant.strategy)
            if model_key and not variant.is_shadow:
                keys.add(model_key)
    return sorted(keys)


def precompute_experiment_lists(interactions: Interactions | None = None) -> int:
    """Per-user lists (redis_keys.model_user_list) of the learners experiments serve, so that a
    variant naming a model is served from the cache like everything else."""
    keys = experiment_model_keys()
    if not keys:
        return 0
    interactions = interactions_from_event_log() if interactions is None else interactions
    unavailable = set(unavailable_skus())
    users = active_users(interactions)
    size = aisle_settings.USER_CANDIDATES_SIZE
    written, meta = 0, {}
    for key in keys:
        entry = load_serving(key)
        if entry is None:
            continue
        version, learner = entry
        for chunk in batched(users, PRECOMPUTE_CHUNK):
            lists = learner.recommend_many(chunk, depth_for(size, unavailable))
            written += store.write_lists(
                (
                    redis_keys.model_user_list(key, user),
                    fill_past_unavailable(ranked, size, unavailable),
                )
                for user, ranked in lists.items()
            )
        meta[redis_keys.model_meta_field(key)] = f"{version.key}#{version.pk}"
    if meta:
        store.writer_client().hset(redis_keys.CANDIDATES_META, mapping=meta)
    return written
