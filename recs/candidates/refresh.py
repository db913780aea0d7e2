"""Keeping cached lists full when products sell out, without waiting for the next training.

Lists are stored deeper than their size by the products that are unavailable: each list runs
down its learner's ranking until it holds `size` servable products, keeping the unavailable
ones in place. Readers skip unavailable products at request time, so a list keeps its length,
and a product back in stock re-enters its old places as soon as it leaves the unavailable set.
"""

import logging
from collections.abc import Callable, Iterable, Sequence

from aisle.conf import aisle_settings
from recs import redis_clients, redis_keys
from recs.candidates.store import decode_list, decode_skus, write_lists, writer_client
from recs.learners import Learner

logger = logging.getLogger(__name__)

SCAN_CHUNK = 500
# Which serving learner and list size each cached list family comes from.
FAMILIES: dict[str, tuple[str, str]] = {
    redis_keys.USER_LIST_PREFIX: ("user", "USER_CANDIDATES_SIZE"),
    redis_keys.SIMILAR_CF_PREFIX: ("similar_cf", "SIMILAR_ITEMS_SIZE"),
    redis_keys.SIMILAR_CONTENT_PREFIX: ("similar_content", "SIMILAR_ITEMS_SIZE"),
    redis_keys.BOUGHT_TOGETHER_PREFIX: ("bought_together", "SIMILAR_ITEMS_SIZE"),
    redis_keys.POPULAR_PREFIX: ("popular", "POPULAR_LIST_SIZE"),
    redis_keys.TRENDING_PREFIX: ("trending", "POPULAR_LIST_SIZE"),
}


def fill_past_unavailable(
    ranked: Sequence[tuple[str, float]], size: int, unavailable: set[str]
) -> list[tuple[str, float]]:
    """The head of `ranked` that holds `size` available products (and the unavailable ones
    ranked among them)."""
    kept, available = [], 0
    for sku, score in ranked:
        kept.append((sku, score))
        if sku not in unavailable:
            available += 1
            if available >= size:
                break
    return kept


def depth_for(size: int, unavailable: set[str]) -> int:
    """How deep to ask a learner so that `size` products survive the unavailable ones."""
    return size + min(len(unavailable), size * 10)


def unavailable_now() -> set[str]:
    return {sku.decode() for sku in writer_client().smembers(redis_keys.UNAVAILABLE)}


def regenerate(
    role: str, subject: str, learner: Learner, size: int, unavailable: set[str]
) -> list[tuple[str, float]]:
    """A list's fresh ranking from its learner, deep enough to hold `size` available products;
    `subject` is what the list is of: a user, a segment ("all", "country:X") or a product."""
    depth = depth_for(size, unavailable)
    if role == "user":
        ranked = learner.recommend_many([subject], depth).get(subject, [])
    elif role in ("popular", "trending"):
        ranked = learner.popular(None if subject == "all" else subject, depth)
    else:
        ranked = learner.similar_items(subject, depth)
    return fill_past_unavailable(ranked, size, unavailable)


def _keys_holding(prefix: str, skus: set[str]) -> Iterable[tuple[str, list[tuple[str, float]]]]:
    client = writer_client()
    batch: list[bytes] = []

    def matching(keys: list[bytes]):
        for key, raw in zip(keys, redis_clients.get_many(client, keys), strict=True):
            if raw and not skus.isdisjoint(decode_skus(raw)):
                yield key.decode(), decode_list(raw)

    for key in client.scan_iter(match=prefix + "*", count=SCAN_CHUNK):
        batch.append(key)
        if len(batch) >= SCAN_CHUNK:
            yield from matching(batch)
            batch = []
    if batch:
        yield from matching(batch)


def refresh_lists_holding(
    skus: Iterable[str], load_learner: Callable[[str], Learner | None]
) -> int:
    """Rewrite every cached list that holds one of these now-unavailable products, so that it
    holds `size` available ones again; returns how many lists were rewritten."""
    unavailable = unavailable_now()
    sold_out = set(skus) & unavailable
    if not sold_out:
        return 0
    rewritten = 0
    for prefix, (role, size_setting) in FAMILIES.items():
        learner = load_learner(role)
        if learner is None:
            continue
        size = getattr(aisle_settings, size_setting)
        updates = []
        for key, ranked in _keys_holding(prefix, sold_out):
            available = sum(1 for sku, _ in ranked if sku not in unavailable)
            if available < size:
                # A product newer than the model has no ranking of its own there: keep what
                # its list still has in stock rather than emptying it until the next training.
                subject = key.removeprefix(prefix)
                fresh = regenerate(role, subject, learner, size, unavailable) or [
                    (sku, score) for sku, score in ranked if sku not in unavailable
                ]
                updates.append((key, fresh))
        rewritten += write_lists(updates)
    logger.info("Refreshed %d cached lists after %d products sold out", rewritten, len(sold_out))
    return rewritten
