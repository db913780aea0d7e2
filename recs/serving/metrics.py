"""Counters of the render path: served lists by tier, source and fallback reason.

Counted in process (exact, and alive while Redis is down) and flushed as deltas to an hourly
Redis hash with the next request's first round trip, so every web process adds to one total
without an extra round trip.
"""

import threading
import time
from collections import Counter

from django.conf import settings

from recs.serving.types import Recommendations

HOURLY_KEY = "m:serving:{hour}"
HOURLY_TTL_S = 8 * 24 * 3600

_lock = threading.Lock()
totals: Counter[str] = Counter()
_pending: Counter[str] = Counter()
_last_flush = 0.0


def count(result: Recommendations) -> None:
    fields = ["requests", f"tier:{result.tier}", f"source:{result.source or 'empty'}"]
    fields += [f"fallback:{reason}" for reason in result.fallbacks]
    if not result.items:
        fields.append("empty")
    with _lock:
        for name in fields:
            totals[name] += 1
            _pending[name] += 1


def queue_flush(pipe, now_s: float) -> None:
    """Queue the pending deltas on a pipeline (at most every SERVING_METRICS_FLUSH_S)."""
    global _last_flush
    if not _pending or time.monotonic() - _last_flush < settings.SERVING_METRICS_FLUSH_S:
        return
    with _lock:
        deltas = dict(_pending)
        _pending.clear()
        _last_flush = time.monotonic()
    key = HOURLY_KEY.format(hour=time.strftime("%Y%m%d%H", time.gmtime(now_s)))
    for name, value in deltas.items():
        pipe.hincrby(key, name, value)
    pipe.expire(key, HOURLY_TTL_S)


def read_hour(client, hour_epoch_s: float) -> dict[str, int]:
    key = HOURLY_KEY.format(hour=time.strftime("%Y%m%d%H", time.gmtime(hour_epoch_s)))
    return {k.decode(): int(v) for k, v in client.hgetall(key).items()}
