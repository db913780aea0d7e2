"""Counters of the render path: served lists by tier, source and fallback reason.

Counted in process (exact, and alive while Redis is down) and flushed as deltas to an hourly
Redis hash with the next request's first round trip, so every web process adds to one total
without an extra round trip.
"""

import threading
import time
from collections import Counter

from aisle.conf import aisle_settings
from recs import redis_keys
from recs.serving.types import Recommendations

HOURLY_TTL_S = 8 * 24 * 3600
# How old the candidate lists behind an answer were, in buckets for the health panel.
AGE_BUCKETS = ((60, "lt_1m"), (3600, "lt_1h"), (86400, "lt_1d"))

_lock = threading.Lock()
totals: Counter[str] = Counter()
_pending: Counter[str] = Counter()
_last_flush = 0.0


def count(result: Recommendations) -> None:
    fields = ["requests", f"tier:{result.tier}", f"source:{result.source or 'empty'}"]
    fields += [f"fallback:{reason}" for reason in result.fallbacks]
    fields.append(f"age:{age_bucket(result)}")
    if result.variant:
        fields.append(f"variant:{result.variant}")
    if not result.items:
        fields.append("empty")
    with _lock:
        for name in fields:
            totals[name] += 1
            _pending[name] += 1


def age_bucket(result: Recommendations) -> str:
    if not result.generated_at:
        return "unknown"
    return next((name for limit, name in AGE_BUCKETS if result.age_s < limit), "ge_1d")


def queue_flush(pipe, now_s: float) -> None:
    """Queue the pending deltas on a pipeline (at most every SERVING_METRICS_FLUSH_S)."""
    global _last_flush
    if not _pending or time.monotonic() - _last_flush < aisle_settings.SERVING_METRICS_FLUSH_S:
        return
    with _lock:
        deltas = dict(_pending)
        _pending.clear()
        _last_flush = time.monotonic()
    key = redis_keys.serving_hourly(time.strftime("%Y%m%d%H", time.gmtime(now_s)))
    for name, value in deltas.items():
        pipe.hincrby(key, name, value)
        pipe.hincrby(redis_keys.SERVING_TOTALS, name, value)
    pipe.expire(key, HOURLY_TTL_S)


def read_total(client) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall(redis_keys.SERVING_TOTALS).items()}


def read_hour(client, hour_epoch_s: float) -> dict[str, int]:
    key = redis_keys.serving_hourly(time.strftime("%Y%m%d%H", time.gmtime(hour_epoch_s)))
    return {k.decode(): int(v) for k, v in client.hgetall(key).items()}
