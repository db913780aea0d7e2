"""The online feature store in Redis: idempotent incremental updates and one-round-trip reads."""

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import redis

from aisle.conf import aisle_settings
from recs import redis_clients, redis_keys
from recs.features.definitions import ENTITIES, DerivedFeature, Feature, resolve, stored_features
from recs.features.events import FeatureEvent

# Applies events, each at most once: an entry's ops run only if its marker key was absent
# (SET NX), and marker and ops are written in the same script, so a batch that a killed worker
# left half done, or that reaches two workers, is never counted twice. Every key the script
# touches is declared in KEYS (a cluster routes the call by them and refuses keys of more than
# one hash slot), in the order the script consumes them: per entry its marker, then the key of
# each op (repeated where ops share a key, which costs no more than naming it in ARGV did).
# ARGV: marker_ttl_s, then per event: entry_count, then per entry: op_count, then
# op_count x (opcode, a, b, c, d). Returns the (1-based) positions of the events with at
# least one fresh entry.
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
local i, k = 2, 1
local event = 0
local fresh_events = {}
while i <= #ARGV do
  local entry_count = tonumber(ARGV[i])
  i = i + 1
  event = event + 1
  local event_fresh = false
  for _ = 1, entry_count do
    local fresh = redis.call('SET', KEYS[k], '1', 'NX', 'EX', marker_ttl)
    local op_count = tonumber(ARGV[i])
    i, k = i + 1, k + 1
    if fresh then
      event_fresh = true
      for n = 0, op_count - 1 do
        local j = i + 5 * n
        apply_op(ARGV[j], KEYS[k + n], ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], ARGV[j + 4])
      end
    end
    i, k = i + 5 * op_count, k + op_count
  end
  if event_fresh then fresh_events[#fresh_events + 1] = event end
end
return fresh_events
"""

# Events per script call: keeps each call short so Redis is never blocked for long.
APPLY_CHUNK_SIZE = 200


# The key layout the store's data was written in: bumped when key names change, so that a
# store written under older names is rebuilt from the event log (rebuild_online_features).
LAYOUT_VERSION = "2"  # 2: per-entity hash tags, f:<entity>:<feature>:{<id>}


def layout_is_current() -> bool:
    """False for an empty store (Redis lost its data) or one written under older key names."""
    raw = redis_client().get(redis_keys.FEATURE_LAYOUT)
    return raw is not None and raw.decode() == LAYOUT_VERSION


def mark_layout_current() -> None:
    redis_client().set(redis_keys.FEATURE_LAYOUT, LAYOUT_VERSION)


def redis_client() -> redis_clients.Client:
    """The feature store's client (a plain Redis or a cluster client, per REDIS_CLUSTER)."""
    return redis_clients.worker_client()


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


# (marker key, ops): ops of one event applied together with one marker, in one script call.
Entry = tuple[str, list[tuple]]


class _Call:
    """One script call: its KEYS, its ARGV, and which batch events its ARGV events are."""

    def __init__(self, marker_ttl_s: int, slot: int = 0) -> None:
        self.slot = slot  # the hash slot of every key, on a cluster
        self.keys: list[str] = []
        self.args: list[Any] = [marker_ttl_s]
        self.events: list[int] = []

    def add_event(self, event: int, entries: Sequence[Entry]) -> None:
        keys, args = self.keys, self.args
        self.events.append(event)
        args.append(len(entries))
        for marker, ops in entries:
            keys.append(marker)
            args.append(len(ops))
            for op in ops:
                keys.append(op[1])
                args.append(op[0])
                args += op[2:]


def _entries(
    event: FeatureEvent, groups: Sequence[tuple[str, Sequence[str]]], now_s: float
) -> list[Entry]:
    """The event's entries, one per marker group. An entry without ops writes no marker: the
    replay at login must still find the user's share of an anonymous event unapplied."""
    entries = []
    for suffix, group in groups:
        ops = _event_ops(event, group, now_s)
        if ops:
            entries.append((redis_keys.event_marker(event.event_id, suffix), ops))
    return entries


def _entries_by_slot(
    event: FeatureEvent, groups: Sequence[tuple[str, Sequence[str]]], now_s: float
) -> dict[int, list[Entry]]:
    """On a cluster a script may only touch keys of one hash slot, so each entry is split by
    the slots of its keys, and each part gets its own marker in that slot (the hash tag
    `{<slot tag>}` puts it there): every part is applied at most once, atomically with its
    marker, on the node that owns the slot."""
    by_slot: dict[int, list[Entry]] = {}
    for marker, ops in _entries(event, groups, now_s):
        parts: dict[int, list[tuple]] = {}
        for op in ops:
            parts.setdefault(redis_clients.slot_of(op[1]), []).append(op)
        for slot, part in parts.items():
            by_slot.setdefault(slot, []).append(
                (redis_keys.slotted_event_marker(redis_clients.slot_tag(slot), marker), part)
            )
    return by_slot


def apply_events(
    events: Iterable[FeatureEvent],
    *,
    entities: Sequence[str] = ENTITIES,
    now_s: float | None = None,
) -> int:
    """Fold events into the online store, each at most once; returns how many events took
    effect now (not before). `entities` limits which entities are updated (the replay of a
    session's history at login updates only the user).

    One server: one script call per chunk of events. Cluster: per chunk, one script call per
    hash slot the chunk's updates touch, all pipelined (one round trip to each node)."""
    now_s = time.time() if now_s is None else now_s
    client = redis_client()
    cluster = redis_clients.is_cluster(client)
    groups = [(suffix, [e for e in group if e in entities]) for suffix, group in _MARKER_GROUPS]
    groups = [(suffix, group) for suffix, group in groups if group]
    ttl = aisle_settings.EVENT_APPLIED_MARKER_TTL_S
    fresh: set[int] = set()
    events = list(events)
    for start in range(0, len(events), APPLY_CHUNK_SIZE):
        positions = range(start, min(start + APPLY_CHUNK_SIZE, len(events)))
        if cluster:
            by_slot: dict[int, _Call] = {}
            for position in positions:
                for slot, entries in _entries_by_slot(events[position], groups, now_s).items():
                    if slot not in by_slot:
                        by_slot[slot] = _Call(ttl, slot)
                    by_slot[slot].add_event(position, entries)
            calls = list(by_slot.values())
        else:
            call = _Call(ttl)
            for position in positions:
                call.add_event(position, _entries(events[position], groups, now_s))
            calls = [call]
        for call, reply in zip(calls, _run(client, calls), strict=True):
            fresh.update(call.events[int(n) - 1] for n in reply)
    return len(fresh)


def _run(client: redis_clients.Client, calls: Sequence[_Call]) -> list[list[int]]:
    script = redis_clients.script(client, APPLY_SCRIPT)
    if not redis_clients.is_cluster(client):
        return [script(keys=call.keys, args=call.args, client=client) for call in calls]
    # A cluster pipeline sends each call to the node owning its slot, all in one round trip.
    # A node that does not know the script yet (first use, or restarted since) answers NOSCRIPT
    # to its calls; those are sent again once the script is loaded on every primary.
    replies: list[Any] = [None] * len(calls)
    pending = list(range(len(calls)))
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        for n in pending:
            call = calls[n]
            # Naming the node spares redis-py a COMMAND GETKEYS round trip per EVALSHA; a
            # call that meets a moved slot is retried by the client on the slot's new owner.
            node = client.nodes_manager.get_node_from_slot(call.slot)
            pipe.execute_command(
                "EVALSHA", script.sha, len(call.keys), *call.keys, *call.args, target_nodes=node
            )
        results = pipe.execute(raise_on_error=False)
        retry = []
        for n, result in zip(pending, results, strict=True):
            if isinstance(result, redis.exceptions.NoScriptError) and not attempt:
                retry.append(n)
            elif isinstance(result, Exception):
                raise result
            else:
                replies[n] = result
        if not retry:
            break
        client.script_load(APPLY_SCRIPT)
        pending = retry
    return replies


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
