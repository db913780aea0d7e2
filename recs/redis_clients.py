"""The engine's Redis clients: one server or a Redis Cluster, chosen by settings.

REDIS_URL names the server, or with REDIS_CLUSTER on, one or more startup nodes of a cluster
(comma-separated; the client discovers the rest). The render path's reader, the background
writers and the feature store all build their clients here, so one switch moves them together.
Django's cache and Celery's broker do not come from here: neither django-redis nor kombu speaks
the cluster protocol, so they stay on a plain Redis (CACHE_URL, CELERY_BROKER_URL).

Code that must differ on a cluster asks `is_cluster(client)`: multi-key commands (MGET, COPY,
a script's keys) may only touch keys of one hash slot there.
"""

import functools
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.retry import Retry

from aisle.conf import aisle_settings

Client = redis.Redis | RedisCluster

# The errors that mean "Redis (or a cluster node) did not answer", for fallbacks and breakers.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterError,  # cluster down, slot not covered
    redis.exceptions.RedisClusterException,  # no reachable startup node
    OSError,
)

_lock = threading.Lock()
_shared: dict[tuple, Client] = {}


def make_client(
    *,
    socket_timeout: float,
    connect_timeout: float,
    protocol: int | None = None,
    fail_fast: bool = False,
    url: str | None = None,
    cluster: bool | None = None,
) -> Client:
    """A new client for REDIS_URL (or `url`): `redis.Redis` for one server, `RedisCluster`
    when REDIS_CLUSTER (or `cluster`) is on. `fail_fast` gives up on the first connection
    error or timeout instead of retrying, for callers that fall back rather than wait."""
    url = aisle_settings.REDIS_URL if url is None else url
    cluster = aisle_settings.REDIS_CLUSTER if cluster is None else cluster
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
    }
    if protocol is not None:
        options["protocol"] = protocol
    if not cluster:
        if fail_fast:
            options.update(retry_on_timeout=False, health_check_interval=0)
        return redis.Redis.from_url(url.split(",")[0].strip(), **options)
    first, *others = [part.strip() for part in url.split(",") if part.strip()]
    return RedisCluster(
        url=first,
        startup_nodes=[ClusterNode(*_host_port(part)) for part in others],
        retry=Retry(NoBackoff(), 0) if fail_fast else None,
        **options,
    )


def _host_port(part: str) -> tuple[str, int]:
    parsed = urlsplit(part if "://" in part else f"redis://{part}")
    return parsed.hostname or "127.0.0.1", parsed.port or 6379


def worker_client() -> Client:
    """The shared client of background work (event workers, training, list refreshes, the
    feature store's reads outside the render path): generous timeouts, because a pipeline of
    thousands of lists or a script over 200 events legitimately takes longer than a read budget.
    One per process and configuration (a changed REDIS_URL gets its own)."""
    key = (
        aisle_settings.REDIS_URL,
        aisle_settings.REDIS_CLUSTER,
        aisle_settings.REDIS_WORKER_TIMEOUT_S,
    )
    client = _shared.get(key)
    if client is None:
        with _lock:
            client = _shared.get(key)
            if client is None:
                client = make_client(
                    socket_timeout=aisle_settings.REDIS_WORKER_TIMEOUT_S,
                    connect_timeout=aisle_settings.REDIS_WORKER_TIMEOUT_S,
                )
                _shared[key] = client
    return client


def is_cluster(client: Any) -> bool:
    """True for a cluster client or one of its pipelines."""
    return isinstance(client, RedisCluster)


_scripts: dict[str, Script] = {}


def script(client: Client, source: str) -> Script:
    """The Lua script of `source`, run with EVALSHA (loaded on first use, and again after a
    SCRIPT FLUSH or restart); call it with `client=` to choose the connection."""
    if source not in _scripts:
        _scripts[source] = client.register_script(source)
    return _scripts[source]


def get_many(client: Client, keys: Sequence[str]) -> list[bytes | None]:
    """GET of many keys in one round trip: MGET on one server; on a cluster one MGET per hash
    slot, pipelined to every node (not atomic across slots, which no reader here needs)."""
    if not keys:
        return []
    return client.mget_nonatomic(keys) if is_cluster(client) else client.mget(keys)


def slot_of(key: str) -> int:
    """The hash slot of a key (honours {hash tags})."""
    return key_slot(key.encode())


@functools.cache
def _slot_tags() -> tuple[str, ...]:
    # The shortest decimal string hashing to each slot: a key containing "{tag}" lands in
    # that slot. Built once per process (~150k CRC16s, about 0.1 s).
    tags: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    missing, number = REDIS_CLUSTER_HASH_SLOTS, 0
    while missing:
        tag = str(number)
        slot = key_slot(tag.encode())
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
        number += 1
    return tuple(tag for tag in tags if tag is not None)


def slot_tag(slot: int) -> str:
    """A hash tag for `slot`: `f"x:{{{slot_tag(s)}}}:y"` is a key in slot s."""
    return _slot_tags()[slot]
