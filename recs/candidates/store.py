"""Writes and reads of precomputed candidate lists in Redis.

Keys (values are JSON lists of [sku, score], best first):
  c:user:<user_id>              top-N for an active user (serving collaborative model)
  c:lkg:user:<user_id>          the user's previous list, kept when a new one replaces it
  c:similar:cf:<sku>            collaborative neighbours of a product
  c:similar:content:<sku>       content neighbours (also for products nobody bought yet)
  c:fbt:<sku>                   frequently bought together
  c:popular:<segment>           segment = all | country:X | hour:band | category:path
  c:trending:all                time-decayed popularity
  c:meta                        hash: model versions and generation time of the lists
Lists are replaced, never expired: the last good list keeps serving when training stops.
"""

import json
import time
from collections.abc import Iterable, Mapping

import redis
from django.conf import settings

WRITE_CHUNK = 500
META_KEY = "c:meta"

_writer: redis.Redis | None = None


def writer_client() -> redis.Redis:
    """A client for background writers: generous timeouts, unlike the render path's client,
    because a pipeline of thousands of lists legitimately takes longer than a read budget."""
    global _writer
    if _writer is None:
        _writer = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=settings.REDIS_WORKER_TIMEOUT_S,
            socket_connect_timeout=settings.REDIS_WORKER_TIMEOUT_S,
        )
    return _writer


def encode_list(ranked: Iterable[tuple[str, float]]) -> str:
    return json.dumps(
        [[sku, round(float(score), 6)] for sku, score in ranked], separators=(",", ":")
    )


def decode_list(raw: bytes | str | None) -> list[tuple[str, float]]:
    return [(sku, float(score)) for sku, score in json.loads(raw)] if raw else []


def write_lists(lists: Iterable[tuple[str, list[tuple[str, float]]]]) -> int:
    """Store (key, ranked list) pairs with pipelined writes; returns how many were written.

    A user's list that is replaced leaves its previous version as that user's last-known-good
    list, the next step of the serving fallback chain."""
    pipe = writer_client().pipeline(transaction=False)
    written = 0
    for key, ranked in lists:
        if key.startswith("c:user:"):
            pipe.copy(key, "c:lkg:" + key[2:], replace=True)
        pipe.set(key, encode_list(ranked))
        written += 1
        if written % WRITE_CHUNK == 0:
            pipe.execute()
    pipe.execute()
    return written


def write_meta(meta: Mapping[str, str]) -> None:
    writer_client().hset(META_KEY, mapping={**meta, "generated_at": str(time.time())})


def read_list(key: str) -> list[tuple[str, float]]:
    return decode_list(writer_client().get(key))


def read_meta() -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in writer_client().hgetall(META_KEY).items()}
