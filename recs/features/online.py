"""The online feature store in Redis: idempotent incremental updates and one-round-trip reads."""

import functools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import redis

try:
    import hiredis
except ImportError:  # redis-py without its C parser: its own packer
    hiredis = None

from aisle.conf import aisle_settings
from recs import redis_clients, redis_keys
from recs.features.definitions import ENTITIES, DerivedFeature, Feature, resolve, stored_features
from recs.features.events import FeatureEvent

# Applies events, each at most once: an entry's ops take effect only if its marker key was
# absent (SET NX), and markers and ops are written in the same script, so a batch that a killed
# worker left half done, or that reaches two workers, is never counted twice.
#
# The ops of a call are grouped by key, so that a key that many events touch (a segment's
# popularity, trending) is written once per call with all its members, not once per event:
# first every marker is set, then each key's ops of fresh entries are merged (sums per field,
# latest per member, decayed scores folded in order) and written with one ZADD / HINCRBYFLOAT
# per key or field. A key is trimmed, and its TTL extended, only when a write could change
# them: a new hour bucket or member (a reader filters by window anyway, so trims are
# housekeeping, and a bucket's TTL was set when the bucket was created). Redis time per event
# is what bounds a worker: every call saved counts.
#
# KEYS: the markers, then one key per group, in the order the script consumes them (a cluster
# routes the call by them and refuses keys of more than one hash slot).
# ARGV: marker_ttl_s, marker_count, then per group: opcode, op_count, c, d (the key's: the
# largest TTL and first live hour of its ops), then op_count x (marker index, a, b). Returns
# the (1-based) indexes of the fresh markers.
APPLY_SCRIPT = """
local function extend_ttl(key, ttl)
  if redis.call('EXPIRE', key, ttl, 'GT') == 0 then redis.call('EXPIRE', key, ttl, 'NX') end
end

local function log2_add(old, value)
  local high, low = math.max(old, value), math.min(old, value)
  return high + math.log(1 + 2 ^ (low - high)) / math.log(2)
end

-- ZADD of many (score, member) pairs, in slices far below Lua's unpack limit; returns the sum
-- of the replies (new members; with CH, new or changed ones).
local function zadd_pairs(key, options, pairs)
  local total = 0
  for first = 1, #pairs, 1000 do
    local args = {'ZADD', key}
    for _, option in ipairs(options) do args[#args + 1] = option end
    for n = first, math.min(first + 999, #pairs) do args[#args + 1] = pairs[n] end
    total = total + redis.call(unpack(args))
  end
  return total
end

-- The latest b per member a over the ops (ARGV positions), as (score, member) pairs.
local function latest_pairs(ops)
  local latest, members = {}, {}
  for _, j in ipairs(ops) do
    local a, b = ARGV[j + 1], ARGV[j + 2]
    local held = latest[a]
    if held == nil then
      members[#members + 1] = a
      latest[a] = b
    elseif tonumber(b) > tonumber(held) then
      latest[a] = b
    end
  end
  local pairs = {}
  for _, member in ipairs(members) do
    pairs[#pairs + 1] = latest[member]
    pairs[#pairs + 1] = member
  end
  return pairs
end

-- The fresh ops of one key: ARGV positions, each followed by a and b, in event order; c and d
-- are the key's. A key belongs to one feature, so all its ops have one opcode.
local function apply_ops(op, key, ops, c, d)
  local j = ops[1]
  if op == 'hincr' then
    -- bucket a += b; c = ttl (0: none), d = first live hour (0: no window)
    local new = false
    if #ops == 1 then
      new = tonumber(redis.call('HINCRBYFLOAT', key, ARGV[j + 1], ARGV[j + 2])) == tonumber(ARGV[j + 2])
    else
      local sums, fields = {}, {}
      for _, j in ipairs(ops) do
        local a = ARGV[j + 1]
        if sums[a] == nil then
          sums[a] = 0
          fields[#fields + 1] = a
        end
        sums[a] = sums[a] + tonumber(ARGV[j + 2])
      end
      for _, field in ipairs(fields) do
        local total = redis.call('HINCRBYFLOAT', key, field, string.format('%.17g', sums[field]))
        new = new or tonumber(total) == sums[field]
      end
    end
    -- A new hour bucket: the key lives to the end of the newest bucket's window, and buckets
    -- out of the window go. A bucket that existed changed neither.
    if new then
      if tonumber(c) > 0 then extend_ttl(key, c) end
      if tonumber(d) > 0 and redis.call('HLEN', key) > 32 then
        for _, field in ipairs(redis.call('HKEYS', key)) do
          if tonumber(field) < tonumber(d) then redis.call('HDEL', key, field) end
        end
      end
    end
  elseif op == 'zmax' then
    -- member a last seen in hour b; c = ttl, d = first live hour. Unchanged: nothing to do.
    local changed
    if #ops == 1 then
      changed = redis.call('ZADD', key, 'GT', 'CH', ARGV[j + 2], ARGV[j + 1])
    else
      changed = zadd_pairs(key, {'GT', 'CH'}, latest_pairs(ops))
    end
    if changed > 0 then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. d)
      extend_ttl(key, c)
    end
  elseif op == 'zlast' then
    -- member a seen at ts b; keep the newest c members; d = ttl
    local added
    if #ops == 1 then
      added = redis.call('ZADD', key, 'GT', ARGV[j + 2], ARGV[j + 1])
    else
      added = zadd_pairs(key, {'GT'}, latest_pairs(ops))
    end
    if added > 0 then redis.call('ZREMRANGEBYRANK', key, 0, -(tonumber(c) + 1)) end
    redis.call('EXPIRE', key, d)
  elseif op == 'cart' then
    -- sku a has 'ts|quantity' b (quantity 0: removed); c = ttl. Latest wins, a removal wins a tie.
    for _, j in ipairs(ops) do
      local a, b = ARGV[j + 1], ARGV[j + 2]
      local sep = string.find(b, '|', 1, true)
      local ts, quantity = tonumber(string.sub(b, 1, sep - 1)), tonumber(string.sub(b, sep + 1))
      local old = redis.call('HGET', key, a)
      local write = true
      if old then
        local old_sep = string.find(old, '|', 1, true)
        local old_ts, old_quantity = tonumber(string.sub(old, 1, old_sep - 1)), tonumber(string.sub(old, old_sep + 1))
        write = ts > old_ts or (ts == old_ts and quantity == 0 and old_quantity > 0)
      end
      if write then redis.call('HSET', key, a, b) end
    end
    redis.call('EXPIRE', key, c)
  elseif op == 'dadd' then
    -- member a += 2^b in log2 space (log2(2^old + 2^b), folded in event order); members
    -- below c are dropped when one was added
    local added = false
    if #ops == 1 then
      local value, old = tonumber(ARGV[j + 2]), redis.call('ZSCORE', key, ARGV[j + 1])
      if old then value = log2_add(tonumber(old), value) else added = true end
      redis.call('ZADD', key, string.format('%.17g', value), ARGV[j + 1])
    else
      local members, values = {}, {}
      for _, j in ipairs(ops) do
        local a = ARGV[j + 1]
        if values[a] == nil then
          members[#members + 1] = a
          values[a] = false
        end
      end
      local olds = redis.call('ZMSCORE', key, unpack(members))
      for n, member in ipairs(members) do
        if olds[n] then values[member] = tonumber(olds[n]) else added = true end
      end
      for _, j in ipairs(ops) do
        local a, value = ARGV[j + 1], tonumber(ARGV[j + 2])
        if values[a] then values[a] = log2_add(values[a], value) else values[a] = value end
      end
      local pairs = {}
      for _, member in ipairs(members) do
        pairs[#pairs + 1] = string.format('%.17g', values[member])
        pairs[#pairs + 1] = member
      end
      zadd_pairs(key, {}, pairs)
    end
    if added then redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. c) end
  else
    error('unknown feature op ' .. op)
  end
end

local marker_ttl, marker_count = tonumber(ARGV[1]), tonumber(ARGV[2])
local fresh, fresh_markers = {}, {}
for m = 1, marker_count do
  if redis.call('SET', KEYS[m], '1', 'NX', 'EX', marker_ttl) then
    fresh[m] = true
    fresh_markers[#fresh_markers + 1] = m
  end
end
local i, k = 3, marker_count + 1
while i <= #ARGV do
  local op, op_count, c, d = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  local ops = {}
  for _ = 1, op_count do
    if fresh[tonumber(ARGV[i])] then ops[#ops + 1] = i end
    i = i + 3
  end
  if #ops > 0 then apply_ops(op, KEYS[k], ops, c, d) end
  k = k + 1
end
return fresh_markers
"""

# Events per script call: keeps each call short so Redis is never blocked for long, and lets
# Redis run one chunk while this process builds the next (_stream): smaller chunks overlap more
# of a batch of 100, larger ones merge more ops per key (50 measured best, docs/PERFORMANCE.md).
APPLY_CHUNK_SIZE = 50
# On a cluster the chunk's calls (one per hash slot) are pipelined, not streamed: larger chunks
# there mean fewer round trips.
CLUSTER_APPLY_CHUNK_SIZE = 200


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


@functools.cache
def _features_counting(event_type: str, entities: tuple[str, ...]) -> tuple[Feature, ...]:
    """The stored features of these entities that an event of this type updates."""
    return tuple(
        f for f in stored_features() if f.entity in entities and event_type in f.event_types
    )


def _event_ops(event: FeatureEvent, entities: tuple[str, ...], now_s: float) -> list[tuple]:
    ops: list[tuple] = []
    for feature in _features_counting(event.event_type, entities):
        for entity_id in event.entity_ids(feature.entity):
            key = feature.aggregation.storage_key(feature.entity, feature.name, entity_id)
            ops.extend(feature.aggregation.ops(key, entity_id, event, now_s))
    return ops


# The user's share of an anonymous event has its own marker: such an event reaches the user
# either when it is applied after its session was linked, or by the replay at login, never by
# both. An event that names its user (or has none) is applied whole, under one marker: one
# Redis key and write per event fewer.
_MARKER_GROUPS = (("", tuple(e for e in ENTITIES if e != "user")), (":user", ("user",)))


class _MarkerGroups:
    """Which entities each marker of an event covers, for a call updating `entities`."""

    def __init__(self, entities: Sequence[str]) -> None:
        split = [
            (suffix, tuple(e for e in group if e in entities)) for suffix, group in _MARKER_GROUPS
        ]
        self.split = [(suffix, group) for suffix, group in split if group]
        # Whole events keep the first group's marker name; a call updating only the user (the
        # replay) has nothing to merge.
        self.whole = (
            [("", tuple(e for e in ENTITIES if e in entities))]
            if len(self.split) > 1
            else self.split
        )

    def of(self, event: FeatureEvent) -> list[tuple[str, tuple[str, ...]]]:
        return self.split if event.user_from_link else self.whole


# (marker key, ops): ops of one event applied together with one marker, in one script call.
Entry = tuple[str, list[tuple]]


# Ops whose c and d vary by op (a bucket's TTL): the key takes the largest.
_LARGEST_CD = frozenset({"hincr", "zmax"})


class _Call:
    """One script call: its markers (and which batch event each belongs to), and its ops
    grouped by key (a key belongs to one feature, so to one opcode)."""

    def __init__(self, marker_ttl_s: int, slot: int = 0) -> None:
        self.slot = slot  # the hash slot of every key, on a cluster
        self.marker_ttl_s = marker_ttl_s
        self.markers: list[str] = []
        self.events: list[int] = []  # per marker, the batch event it belongs to
        self.groups: dict[str, list[Any]] = {}  # key -> [opcode, c, d, marker, a, b, ...]

    def add_event(self, event: int, entries: Sequence[Entry]) -> None:
        groups = self.groups
        for marker, ops in entries:
            self.markers.append(marker)
            self.events.append(event)
            index = len(self.markers)
            for opcode, key, a, b, c, d in ops:
                group = groups.get(key)
                if group is None:
                    groups[key] = [opcode, c, d, index, a, b]
                    continue
                if opcode in _LARGEST_CD:
                    group[1], group[2] = max(group[1], c), max(group[2], d)
                group += (index, a, b)

    @property
    def keys(self) -> list[str]:
        return [*self.markers, *self.groups]

    @property
    def args(self) -> list[Any]:
        args: list[Any] = [self.marker_ttl_s, len(self.markers)]
        for opcode, c, d, *ops in self.groups.values():
            args += (opcode, len(ops) // 3, c, d, *ops)
        return args


def _entries(event: FeatureEvent, groups: _MarkerGroups, now_s: float) -> list[Entry]:
    """The event's entries, one per marker group. An entry without ops writes no marker: the
    replay at login must still find the user's share of an anonymous event unapplied."""
    entries = []
    for suffix, group in groups.of(event):
        ops = _event_ops(event, group, now_s)
        if ops:
            entries.append((redis_keys.event_marker(event.event_id, suffix), ops))
    return entries


def _entries_by_slot(
    event: FeatureEvent, groups: _MarkerGroups, now_s: float
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

    One server: one script call per chunk of events, the next sent before the previous one's
    reply is read. Cluster: per chunk, one script call per
    hash slot the chunk's updates touch, all pipelined (one round trip to each node)."""
    now_s = time.time() if now_s is None else now_s
    client = redis_client()
    cluster = redis_clients.is_cluster(client)
    groups = _MarkerGroups(entities)
    ttl = aisle_settings.EVENT_APPLIED_MARKER_TTL_S
    events = list(events)
    size = CLUSTER_APPLY_CHUNK_SIZE if cluster else APPLY_CHUNK_SIZE
    chunks = [range(start, min(start + size, len(events))) for start in range(0, len(events), size)]
    fresh: set[int] = set()
    if not cluster:
        calls = (_chunk_call(events, positions, groups, ttl, now_s) for positions in chunks)
        for call, reply in _stream(client, calls):
            fresh.update(call.events[int(n) - 1] for n in reply)
        return len(fresh)
    for positions in chunks:
        by_slot: dict[int, _Call] = {}
        for position in positions:
            for slot, entries in _entries_by_slot(events[position], groups, now_s).items():
                if slot not in by_slot:
                    by_slot[slot] = _Call(ttl, slot)
                by_slot[slot].add_event(position, entries)
        calls = list(by_slot.values())
        for call, reply in zip(calls, _run(client, calls), strict=True):
            fresh.update(call.events[int(n) - 1] for n in reply)
    return len(fresh)


def _chunk_call(
    events: Sequence[FeatureEvent],
    positions: range,
    groups: _MarkerGroups,
    marker_ttl_s: int,
    now_s: float,
) -> _Call:
    call = _Call(marker_ttl_s)
    for position in positions:
        call.add_event(position, _entries(events[position], groups, now_s))
    return call


def _stream(
    client: redis_clients.Client, calls: Iterator[_Call]
) -> Iterator[tuple[_Call, list[int]]]:
    """Send each call before reading the previous one's reply, on one connection: Redis runs a
    chunk while this process builds the next, instead of each waiting for the other. A call
    answered NOSCRIPT (Redis restarted or flushed its scripts) did not run, and is run again
    once the script is loaded."""
    script = redis_clients.script(client, APPLY_SCRIPT)
    pool = client.connection_pool
    connection = pool.get_connection()
    in_flight: deque[_Call] = deque()
    unrun: list[_Call] = []

    def settle(call: _Call) -> tuple[_Call, list[int]] | None:
        try:
            return call, connection.read_response()
        except redis.exceptions.NoScriptError:
            unrun.append(call)
            return None

    try:
        for call in calls:
            keys = call.keys
            command = ("EVALSHA", script.sha, len(keys), *keys, *call.args)
            # hiredis packs thousands of arguments in C; redis-py first copies them one by one.
            packed = (
                [hiredis.pack_command(command)] if hiredis else connection.pack_command(*command)
            )
            connection.send_packed_command(packed)
            in_flight.append(call)
            if len(in_flight) > 1 and (answered := settle(in_flight.popleft())):
                yield answered
        while in_flight:
            if answered := settle(in_flight.popleft()):
                yield answered
    except BaseException:
        connection.disconnect()  # replies may be left unread on it
        raise
    finally:
        pool.release(connection)
    for call in unrun:
        yield call, script(keys=call.keys, args=call.args, client=client)


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
            keys = call.keys
            pipe.execute_command(
                "EVALSHA", script.sha, len(keys), *keys, *call.args, target_nodes=node
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
