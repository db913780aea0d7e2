"""Writes and reads of precomputed candidate lists in Redis (keys: recs.redis_keys).

A value holds the SKUs best first, then their scores: `\x1e sku \x1f sku ... \x1e score \x1f score`
(SKUs cannot hold the separators: the catalog refuses whitespace in a SKU). The render path only
needs the order, so it splits the first part and never parses a score (`decode_skus`: one split
per list instead of a JSON parse and a tuple per entry). Values written before this format
(JSON lists of [sku, score]) are still read until training replaces them. Lists are replaced,
never expired: the last good list keeps serving when training stops.
"""

import json
import logging
import time
from collections.abc import Iterable, Mapping

from recs import redis_clients, redis_keys

logger = logging.getLogger(__name__)

WRITE_CHUNK = 500
LIST_MARK = "\x1e"  # starts a value and separates its SKUs from its scores
ITEM_SEPARATOR = "\x1f"
_LIST_MARK_BYTE = ord(LIST_MARK)


def writer_client() -> redis_clients.Client:
    """The client of background writers (a plain Redis or a cluster client): generous timeouts,
    unlike the render path's client, because a pipeline of thousands of lists legitimately
    takes longer than a read budget."""
    return redis_clients.worker_client()


def encode_list(ranked: Iterable[tuple[str, float]]) -> str:
    """The stored form of a ranked list (see the module's docstring)."""
    skus, scores = [], []
    for sku, score in ranked:
        if LIST_MARK in sku or ITEM_SEPARATOR in sku:
            logger.warning(
                "Left %r out of a candidate list: a SKU may not hold \\x1e or \\x1f", sku
            )
            continue
        skus.append(sku)
        scores.append(repr(round(float(score), 6)))
    if not skus:
        return LIST_MARK + LIST_MARK
    return LIST_MARK + ITEM_SEPARATOR.join(skus) + LIST_MARK + ITEM_SEPARATOR.join(scores)


def decode_list(raw: bytes | str | None) -> list[tuple[str, float]]:
    """(sku, score) pairs, best first, of a stored value (either format); [] for none."""
    if not raw:
        return []
    text = raw.decode() if isinstance(raw, bytes) else raw
    if not text.startswith(LIST_MARK):
        return [(sku, float(score)) for sku, score in json.loads(text)]
    skus, _, scores = text[1:].partition(LIST_MARK)
    if not skus:
        return []
    return list(
        zip(skus.split(ITEM_SEPARATOR), map(float, scores.split(ITEM_SEPARATOR)), strict=True)
    )


def decode_skus(raw: bytes | None) -> list[str]:
    """The SKUs of a stored value, best first, without their scores: what the render path reads."""
    if not raw:
        return []
    if raw[0] != _LIST_MARK_BYTE:
        return [sku for sku, _ in json.loads(raw)]
    skus = raw[1 : raw.index(b"\x1e", 1)]
    return skus.decode().split(ITEM_SEPARATOR) if skus else []


def write_lists(lists: Iterable[tuple[str, list[tuple[str, float]]]]) -> int:
    """Store (key, ranked list) pairs with pipelined writes; returns how many were written.

    A user's list that is replaced leaves its previous version as that user's last-known-good
    list, the next step of the serving fallback chain. On one server COPY duplicates it inside
    Redis; on a cluster the two keys live in different hash slots, so the previous lists of a
    chunk are read first (one round trip) and written back as last-known-good with the new ones."""
    client = writer_client()
    cluster = redis_clients.is_cluster(client)
    written = 0
    chunk: list[tuple[str, list[tuple[str, float]]]] = []
    for item in lists:
        chunk.append(item)
        if len(chunk) >= WRITE_CHUNK:
            written += _write_chunk(client, chunk, cluster)
            chunk = []
    if chunk:
        written += _write_chunk(client, chunk, cluster)
    return written


def _write_chunk(client, chunk: list[tuple[str, list[tuple[str, float]]]], cluster: bool) -> int:
    user_keys = list(
        dict.fromkeys(key for key, _ in chunk if key.startswith(redis_keys.USER_LIST_PREFIX))
    )
    previous = (
        dict(zip(user_keys, redis_clients.get_many(client, user_keys), strict=True))
        if cluster and user_keys
        else {}
    )
    pipe = client.pipeline(transaction=False)
    for key, ranked in chunk:
        encoded = encode_list(ranked)
        if key.startswith(redis_keys.USER_LIST_PREFIX):
            last_known_good = redis_keys.last_known_good_list(
                key.removeprefix(redis_keys.USER_LIST_PREFIX)
            )
            if not cluster:
                pipe.copy(key, last_known_good, replace=True)
            elif previous.get(key) is not None:
                pipe.set(last_known_good, previous[key])
            previous[key] = encoded.encode()  # a second write of the key in this chunk
        pipe.set(key, encoded)
    pipe.execute()
    return len(chunk)


def write_meta(meta: Mapping[str, str]) -> None:
    writer_client().hset(
        redis_keys.CANDIDATES_META, mapping={**meta, "generated_at": str(time.time())}
    )


def read_list(key: str) -> list[tuple[str, float]]:
    return decode_list(writer_client().get(key))


def read_meta() -> dict[str, str]:
    return {
        k.decode(): v.decode()
        for k, v in writer_client().hgetall(redis_keys.CANDIDATES_META).items()
    }
