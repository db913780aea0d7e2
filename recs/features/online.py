"""The online feature store in Redis: idempotent incremental updates and one-round-trip reads."""

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from django.conf import settings
from django_redis import get_redis_connection

from recs.features.definitions import ENTITIES, DerivedFeature, Feature, resolve, stored_features
from recs.features.events import FeatureEvent

# Applies a batch of events atomically, each at most once: an event's ops run only if its marker
# key was absent (SET NX), and marker and ops are written in the same script, so a batch that a
# killed worker left half done, or that reaches two workers, is never counted twice.
# ARGV: marker_ttl_s, then per event: entry_count, then per entry: marker, op_count, then
# op_count x (opcode, key, a, b, c, d). Returns how many events had at least one fresh entry.
APPLY_SCRIPT = """
local function extend_ttl(key, ttl)
  redis.call('EXPIRE', key, ttl, 'GT')
  redis.call('EXPIRE', key, ttl, 'NX')
end

local function apply_op(op, key, a, b, c, d)
  if op == 'hincr' then
    -- hourly bucket a += b; c = ttl (0: none), d = first live hour (0: no window)
    redis.call('HINCRBYFLOAT', key, a, b)
    if tonumber(c) > 0 then extend_ttl(key, c) end
    if tonumber(d) > 0 and redis.call('HLEN', key) > 32 then
      for _, field in ipairs(redis.call('HKEYS', key)) do
        if tonumber(field) < tonumber(d) then redis.call('HDEL', key, field) end
      end
    end
  elseif op == 'zmax' then
    -- member a last seen in hour b; c = ttl, d = first live hour
    redis.call('ZADD', key, 'GT', b, a)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. d)
    extend_ttl(key, c)
  elseif op == 'zlast' then
    -- member a seen at ts b; keep the newest c members; d = ttl
    redis.call('ZADD', key, 'GT', b, a)
    redis.call('ZREMRANGEBYRANK', key, 0, -(tonumber(c) + 1))
    redis.call('EXPIRE', key, d)
  elseif op == 'cart' then
    -- sku a at ts b has quantity c (0: removed); d = ttl. Latest wins, a removal wins a tie.
    local old = redis.call('HGET', key, a)
    local write = true
    if old then
      local sep = string.find(old, '|', 1, true)
      local old_ts, old_quantity = tonumber(string.sub(old, 1, sep - 1)), tonumber(string.sub(old, sep + 1))
      write = tonumber(b) > old_ts or (tonumber(b) == old_ts and tonumber(c) == 0 and old_quantity > 0)
    end
    if write then redis.call('HSET', key, a, b .. '|' .. c) end
    redis.call('EXPIRE', key, d)
  elseif op == 'dadd' then
    -- member a += 2^b in log2 space: log2(2^old + 2^b) without overflow; drop below c
    local value = tonumber(b)
    local old = redis.call('ZSCORE', key, a)
    if old then
      old = tonumber(old)
      local high, low = math.max(old, value), math.min(old, value)
      value = high + math.log(1 + 2 ^ (low - high)) / math.log(2)
    end
    redis.call('ZADD', key, string.format('%.17g', value), a)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. c)
  else
    error('unknown feature op ' .. op)
  end
end

local marker_ttl = tonumber(ARGV[1])
local i = 2
local applied = 0
while i <= #ARGV do
  local entry_count = tonumber(ARGV[i])
  i = i + 1
  local event_fresh = false
  for _ = 1, entry_count do
    local fresh = redis.call('SET', ARGV[i], '1', 'NX', 'EX', marker_ttl)
    local op_count = tonumber(ARGV[i + 1])
    i = i + 2
    if fresh then
      event_fresh = true
      for k = 0, op_count - 1 do
        local j = i + 6 * k
        apply_op(ARGV[j], ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], ARGV[j + 4], ARGV[j + 5])
      end
    end
    i = i + 6 * op_count
  end
  if event_fresh then applied = applied + 1 end
end
return applied
"""

# Events per script call: keeps each call short so Redis is never blocked for long.
APPLY_CHUNK_SIZE = 200


def redis_client():
    return get_redis_connection("default")


def _event_ops(event: FeatureEvent, entities: Sequence[str], now_s: float) -> list[tuple]:
    ops: list[tuple] = []
    for feature in stored_features():
        if feature.entity not in entities or not feature.counts(event):
            continue
        for entity_id in event.entity_ids(feature.entity):
            key = feature.aggregation.storage_key(feature.entity, feature.name, entity_id)
            ops.extend(feature.aggregation.ops(key, entity_id, event, now_s))
    return ops


# The user's share of an event has its own marker: an anonymous event reaches the user either
# when it is applied after its session was linked, or by the replay at login, never by both.
_MARKER_GROUPS = (("", tuple(e for e in ENTITIES if e != "user")), (":user", ("user",)))


def apply_events(
    events: Iterable[FeatureEvent],
    *,
    entities: Sequence[str] = ENTITIES,
    now_s: float | None = None,
) -> int:
    """Fold events into the online store, each at most once; returns how many events took
    effect now (not before). `entities` limits which entities are updated (the replay of a
    session's history at login updates only the user)."""
    now_s = time.time() if now_s is None else now_s
    client = redis_client()
    script = client.register_script(APPLY_SCRIPT)
    groups = [(suffix, [e for e in group if e in entities]) for suffix, group in _MARKER_GROUPS]
    groups = [(suffix, group) for suffix, group in groups if group]
    applied = 0
    events = list(events)
    for start in range(0, len(events), APPLY_CHUNK_SIZE):
        argv: list[Any] = [settings.EVENT_APPLIED_MARKER_TTL_S]
        for event in events[start : start + APPLY_CHUNK_SIZE]:
            # An entry without ops writes no marker: the replay at login must still find the
            # user's share of an anonymous event unapplied.
            entries = [(suffix, _event_ops(event, group, now_s)) for suffix, group in groups]
            entries = [(suffix, ops) for suffix, ops in entries if ops]
            argv.append(len(entries))
            for suffix, ops in entries:
                argv += [f"ev:{event.event_id}{suffix}", len(ops)]
                for op in ops:
                    argv.extend(op)
        applied += int(script(keys=[], args=argv))
    return applied


def get_online(
    entity: str, entity_id: str, names: Sequence[str] | None = None, *, now_s: float | None = None
) -> dict[str, Any]:
    """One entity's features from Redis in one pipelined round trip (all of them when names is
    None). Missing values read as zero / empty."""
    return get_online_many(entity, [entity_id], names, now_s=now_s)[entity_id]


def get_online_many(
    entity: str,
    entity_ids: Sequence[str],
    names: Sequence[str] | None = None,
    *,
    now_s: float | None = None,
) -> dict[str, dict[str, Any]]:
    """Several entities' features in one round trip."""
    now_s = time.time() if now_s is None else now_s
    pipe = redis_client().pipeline(transaction=False)
    readers = {
        entity_id: queue_online_read(pipe, entity, entity_id, names, now_s=now_s)
        for entity_id in entity_ids
    }
    replies = iter(pipe.execute())
    return {entity_id: read(replies) for entity_id, read in readers.items()}


def queue_online_read(
    pipe: Any, entity: str, entity_id: str, names: Sequence[str] | None, *, now_s: float
) -> Callable[[Iterator[Any]], dict[str, Any]]:
    """Queue one entity's feature reads on a caller's pipeline (so the render path can read
    features and candidate lists in the same round trip); returns the function that turns
    the pipeline's replies, consumed in order from an iterator, into the feature values."""
    requested = resolve(entity, names)
    stored: dict[str, Feature] = {}
    for feature in requested:
        inputs = (
            resolve(entity, feature.inputs) if isinstance(feature, DerivedFeature) else [feature]
        )
        for item in inputs:
            stored[item.name] = item
    for feature in stored.values():
        key = feature.aggregation.storage_key(entity, feature.name, entity_id)
        feature.aggregation.queue_read(pipe, key, entity_id, now_s)

    def read(replies: Iterator[Any]) -> dict[str, Any]:
        values = {
            name: feature.aggregation.from_redis(next(replies), now_s)
            for name, feature in stored.items()
        }
        return finish_values(requested, values)

    return read


def finish_values(
    requested: Sequence[Feature | DerivedFeature], stored_values: dict[str, Any]
) -> dict[str, Any]:
    """Compute derived features from stored ones and keep only what was asked for."""
    out: dict[str, Any] = {}
    for feature in requested:
        if isinstance(feature, DerivedFeature):
            out[feature.name] = feature.compute(*(stored_values[name] for name in feature.inputs))
        else:
            out[feature.name] = stored_values[feature.name]
    return out
