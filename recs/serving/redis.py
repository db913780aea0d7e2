"""The render path's Redis client: tight timeouts and a short circuit breaker.

A request must not wait on a slow or absent Redis: each call is bounded by the socket timeouts,
and after a failure every request skips Redis for SERVING_REDIS_RETRY_S and falls back at once.
"""

import threading
import time

from aisle.conf import aisle_settings
from recs import redis_clients

_client: redis_clients.Client | None = None
_lock = threading.Lock()
_skip_until = 0.0


class RedisUnavailable(Exception):
    """Redis did not answer in time; the caller serves its fallback."""


def reader_client() -> redis_clients.Client:
    """The render path's client (a plain Redis or a cluster client, per REDIS_CLUSTER). On a
    cluster it connects to discover the nodes, so it may raise one of REDIS_ERRORS."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = redis_clients.make_client(
                    socket_timeout=aisle_settings.REDIS_SOCKET_TIMEOUT_S,
                    connect_timeout=aisle_settings.REDIS_CONNECT_TIMEOUT_S,
                    fail_fast=True,
                    # RESP2: redis-py converts RESP3 replies (scores) once more; measured 0.3 ms
                    # per request on the render path.
                    protocol=2,
                )
    return _client


def available() -> bool:
    """False while the breaker is open after a recent failure."""
    return time.monotonic() >= _skip_until


def trip() -> None:
    """Open the breaker: skip Redis for a moment instead of paying a timeout per request."""
    global _skip_until
    _skip_until = time.monotonic() + aisle_settings.SERVING_REDIS_RETRY_S


def reset() -> None:
    global _skip_until, _client
    _skip_until = 0.0
    _client = None


REDIS_ERRORS = redis_clients.CONNECTION_ERRORS
