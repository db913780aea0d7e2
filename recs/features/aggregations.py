"""Aggregations: each knows its Redis update ops, its Redis read, and its offline computation.

Time semantics shared by both sides: windows are whole UTC hours ending with the current hour
(an event counts while hour(event) >= hour(as_of) - window + 1); decayed scores halve every
half_life_hours and are kept in log2 space so that they never need rescaling.
"""

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from recs import redis_keys
from recs.features.events import FeatureEvent

# A decayed contribution below 2**-DECAY_FLOOR_LOG2 of one unit is treated as zero (and trimmed).
DECAY_FLOOR_LOG2 = 40.0
# Shopper state (cart) is forgotten after this long without a change.
STATE_TTL_S = 90 * 24 * 3600

# Ops are fixed-width for the Lua applier: (opcode, key, a, b, c, d); a and b are the op's
# own, c and d the same for every op of a key in one call (the applier keeps the largest).
Op = tuple[str, str, Any, Any, Any, Any]


def hour_of(epoch_s: float) -> int:
    return int(epoch_s // 3600)


class Aggregation(ABC):
    """How one feature is kept online and recomputed offline."""

    @abstractmethod
    def ops(self, key: str, member_owner: str, event: FeatureEvent, now_s: float) -> list[Op]:
        """Redis ops that fold this event into the online value stored at `key`."""

    @abstractmethod
    def queue_read(self, pipe: Any, key: str, member_owner: str, now_s: float) -> None:
        """Queue the one Redis command that reads the online value."""

    @abstractmethod
    def from_redis(self, raw: Any, now_s: float) -> Any:
        """Turn the Redis reply into the feature value."""

    @abstractmethod
    def offline(self, events: Sequence[FeatureEvent], as_of_s: float) -> Any:
        """The same value computed from the event log (events of the entity, ts <= as_of)."""

    def storage_key(self, entity: str, name: str, entity_id: str) -> str:
        return redis_keys.entity_feature(entity, name, entity_id)

    def missing(self) -> Any:
        return 0.0


class BucketedSum(Aggregation):
    """Sum of value(event) over a window of UTC hours (None: all time), kept in hourly buckets."""

    def __init__(self, value: Callable[[FeatureEvent], float], window_hours: int | None):
        self.value = value
        self.window_hours = window_hours

    def _first_hour(self, as_of_s: float) -> int:
        return hour_of(as_of_s) - (self.window_hours or 0) + 1

    def ops(self, key, member_owner, event, now_s):
        amount = self.value(event)
        if not amount:
            return []
        if self.window_hours is None:
            return [("hincr", key, "all", repr(float(amount)), 0, 0)]
        bucket = hour_of(event.ts)
        first = self._first_hour(now_s)
        if bucket < first:
            return []  # already outside the window
        ttl_s = (bucket + self.window_hours + 1) * 3600 - int(now_s)
        return [("hincr", key, str(bucket), repr(float(amount)), max(ttl_s, 60), first)]

    def queue_read(self, pipe, key, member_owner, now_s):
        pipe.hgetall(key)

    def from_redis(self, raw, now_s):
        if self.window_hours is None:
            return float(raw.get(b"all", 0)) if raw else 0.0
        first, last = self._first_hour(now_s), hour_of(now_s)
        return float(sum(float(v) for f, v in (raw or {}).items() if first <= int(f) <= last))

    def offline(self, events, as_of_s):
        first = self._first_hour(as_of_s) if self.window_hours is not None else None
        return float(sum(self.value(e) for e in events if first is None or hour_of(e.ts) >= first))


class DistinctCount(Aggregation):
    """Number of distinct key(event) values seen in a window of UTC hours."""

    def __init__(self, key: Callable[[FeatureEvent], str], window_hours: int):
        self.key = key
        self.window_hours = window_hours

    def _first_hour(self, as_of_s: float) -> int:
        return hour_of(as_of_s) - self.window_hours + 1

    def ops(self, key, member_owner, event, now_s):
        member = self.key(event)
        bucket = hour_of(event.ts)
        first = self._first_hour(now_s)
        if not member or bucket < first:
            return []
        ttl_s = (bucket + self.window_hours + 1) * 3600 - int(now_s)
        return [("zmax", key, member, bucket, max(ttl_s, 60), first)]

    def queue_read(self, pipe, key, member_owner, now_s):
        pipe.zcount(key, self._first_hour(now_s), hour_of(now_s))

    def from_redis(self, raw, now_s):
        return float(raw or 0)

    def offline(self, events, as_of_s):
        first = self._first_hour(as_of_s)
        return float(len({self.key(e) for e in events if self.key(e) and hour_of(e.ts) >= first}))


class LastN(Aggregation):
    """The `size` most recent distinct key(event) values, newest first."""

    def __init__(self, key: Callable[[FeatureEvent], str], size: int):
        self.key = key
        self.size = size

    def ops(self, key, member_owner, event, now_s):
        member = self.key(event)
        return [("zlast", key, member, repr(event.ts), self.size, STATE_TTL_S)] if member else []

    def queue_read(self, pipe, key, member_owner, now_s):
        pipe.zrevrange(key, 0, self.size - 1)

    def from_redis(self, raw, now_s):
        return [m.decode() for m in raw or []]

    def offline(self, events, as_of_s):
        latest: dict[str, float] = {}
        for e in events:
            member = self.key(e)
            if member and e.ts > latest.get(member, -math.inf):
                latest[member] = e.ts
        # Redis orders equal scores by member, descending in ZREVRANGE; do the same.
        ranked = sorted(latest.items(), key=lambda item: (item[1], item[0]), reverse=True)
        return [member for member, _ in ranked[: self.size]]

    def missing(self):
        return []


class CartState(Aggregation):
    """Products in the cart: the latest cart event per product decides (removal wins a tie)."""

    def ops(self, key, member_owner, event, now_s):
        if not event.product_sku:
            return []
        quantity = (event.quantity or 1) if event.event_type == "add_to_cart" else 0
        return [("cart", key, event.product_sku, f"{event.ts!r}|{quantity}", STATE_TTL_S, 0)]

    def queue_read(self, pipe, key, member_owner, now_s):
        pipe.hgetall(key)

    def from_redis(self, raw, now_s):
        cart = {}
        for sku, state in (raw or {}).items():
            quantity = int(state.decode().split("|")[1])
            if quantity > 0:
                cart[sku.decode()] = quantity
        return dict(sorted(cart.items()))

    def offline(self, events, as_of_s):
        latest: dict[str, tuple[float, bool, int]] = {}
        for e in events:
            if not e.product_sku:
                continue
            quantity = (e.quantity or 1) if e.event_type == "add_to_cart" else 0
            state = (e.ts, quantity == 0, quantity)
            if e.product_sku not in latest or state[:2] > latest[e.product_sku][:2]:
                latest[e.product_sku] = state
        return dict(sorted((sku, s[2]) for sku, s in latest.items() if s[2] > 0))

    def missing(self):
        return {}


class DecayedScore(Aggregation):
    """Sum of weight(event) * 2**(-age / half_life): a scalar per entity, or a map per key(event).

    Stored as log2(sum of weight * 2**(t / half_life)) in a sorted set, which is order-independent
    and ranks members by their current score without rescaling.
    """

    def __init__(
        self,
        weight: Callable[[FeatureEvent], float],
        half_life_hours: float,
        key: Callable[[FeatureEvent], str] | None = None,
        top_n: int | None = None,
    ):
        self.weight = weight
        self.half_life_s = half_life_hours * 3600
        self.key = key
        self.top_n = top_n

    def _log_now(self, now_s: float) -> float:
        return now_s / self.half_life_s

    def storage_key(self, entity, name, entity_id):
        # A scalar score of many entities shares one sorted set, so it ranks them (trending).
        if self.key:
            return redis_keys.entity_feature(entity, name, entity_id)
        return redis_keys.shared_feature(entity, name)

    def ops(self, key, member_owner, event, now_s):
        weight = self.weight(event)
        member = self.key(event) if self.key else member_owner
        if weight <= 0 or not member:
            return []
        log_value = math.log2(weight) + event.ts / self.half_life_s
        floor = self._log_now(now_s) - DECAY_FLOOR_LOG2
        if log_value < floor:
            return []
        return [("dadd", key, member, repr(log_value), repr(floor), 0)]

    def queue_read(self, pipe, key, member_owner, now_s):
        if self.key is None:
            pipe.zscore(key, member_owner)
        else:
            floor = self._log_now(now_s) - DECAY_FLOOR_LOG2
            pipe.zrevrangebyscore(
                key, "+inf", floor, start=0, num=self.top_n or -1, withscores=True
            )

    def from_redis(self, raw, now_s):
        log_now = self._log_now(now_s)
        if self.key is None:
            if raw is None or raw < log_now - DECAY_FLOOR_LOG2:
                return 0.0
            return 2.0 ** (raw - log_now)
        scores = {m.decode(): 2.0 ** (s - log_now) for m, s in raw or []}
        return self._top(scores)

    def _top(self, scores: dict[str, float]) -> dict[str, float]:
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return dict(ranked[: self.top_n] if self.top_n else ranked)

    def offline(self, events, as_of_s):
        scores: dict[str, float] = {}
        for e in events:
            weight = self.weight(e)
            member = self.key(e) if self.key else "_"
            if weight > 0 and member:
                scores[member] = scores.get(member, 0.0) + weight * 2.0 ** (
                    (e.ts - as_of_s) / self.half_life_s
                )
        floor = 2.0**-DECAY_FLOOR_LOG2
        scores = {m: s for m, s in scores.items() if s >= floor}
        if self.key is None:
            return scores.get("_", 0.0)
        return self._top(scores)

    def missing(self):
        return {} if self.key else 0.0
