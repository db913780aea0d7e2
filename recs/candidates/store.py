"""Writes and reads of precomputed candidate lists in Redis (keys: recs.redis_keys).

Values are JSON lists of [sku, score], best first. Lists are replaced, never expired: the last
good list keeps serving when training stops.
"""

import json
import time
from collections.abc import Iterable, Mapping

from recs import redis_clients, redis_keys

WRITE_CHUNK = 500


def writer_client() -> redis_clients.Client:
    """The client of background writers (a plain Redis or a cluster client): generous timeouts,
    unlike the render path's client, because a pipeline of thousands of lists legitimately
    takes longer than a read budget."""
    return redis_clients.worker_client()


def encode_list(ranked: Iterable[tuple[str, float]]) -> str:
    return json.dumps(
        [[sku, round(float(score), 6)] for sku, score in ranked], separators=(",", ":")
    )


def decode_list(raw: bytes | str | None) -> list[tuple[str, float]]:
    return [(sku, float(score)) for sku, score in json.loads(raw)] if raw else []


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
