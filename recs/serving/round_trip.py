"""One request, one Redis round trip: the render path's reads as a single server-side script.

A request queues its reads on a `RoundTrip` with a pipeline's method names (so the feature
aggregations and the serving counters queue onto it as onto a pipeline), names the anchors of
its session re-rank, and runs it. On one Redis server that is one EVALSHA: the script runs the
reads, checks the sold-out set's version (recs.serving.availability), and then, from the
shopper's features it has just read, fetches the neighbour lists of what they viewed and hold,
which a pipeline could only ask for in a second round trip. Replies come back shaped as
redis-py's pipeline would return them.

On a Redis Cluster a script may only touch keys of one hash slot, so there the same reads run as
a pipeline (one round trip per node, in parallel), the availability read as its own script
(its keys share the {avail} slot), and the caller reads the neighbour lists afterwards.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from recs import redis_clients, redis_keys
from recs.serving import availability

_RENDER_READ = (
    availability.READ_LUA
    + """
local plan = cjson.decode(ARGV[1])
local replies = {}
-- Every GET in one MGET: each redis.call costs the script several microseconds of its own.
local get_keys, get_at = {}, {}
for i, op in ipairs(plan.ops) do
  if op[1] == 'get' then get_keys[#get_keys + 1] = op[2]; get_at[#get_at + 1] = i end
end
if #get_keys > 0 then
  local values = redis.call('MGET', unpack(get_keys))
  for j, i in ipairs(get_at) do replies[i] = values[j] end
end
for i, op in ipairs(plan.ops) do
  local name, key = op[1], op[2]
  if name == 'get' then -- read above
  elseif name == 'hgetall' then replies[i] = redis.call('HGETALL', key)
  elseif name == 'zrevrange' then replies[i] = redis.call('ZREVRANGE', key, 0, op[3])
  elseif name == 'exists' then replies[i] = redis.call('EXISTS', key)
  elseif name == 'incr' then replies[i] = redis.call('INCR', key)
  elseif name == 'hincrby' then replies[i] = redis.call('HINCRBY', key, op[3], op[4])
  elseif name == 'expire' then replies[i] = redis.call('EXPIRE', key, op[3])
  else return redis.error_reply('unknown render-path read ' .. tostring(name)) end
end
local a = plan.availability
local held = read_availability(a[1], a[2], a[3], a[4], a[5], a[6])

-- The session re-rank's anchors, as recs.serving.reads.shopper_from derives them: viewed
-- products (session first, then the user's), the cart (the page's, then the stored carts, each
-- sorted) and the latest purchases; the Python side checks and reads whatever this missed.
local neighbours = {}
local n = plan.neighbours
if n then
  local fetched, wanted = {}, {}
  for _, key in ipairs(n.have) do fetched[key] = true end
  local function fetch(key)
    if not fetched[key] then fetched[key] = true; wanted[#wanted + 1] = key end
  end
  local recent, seen = {}, {}
  for _, index in ipairs(n.recent) do
    for _, sku in ipairs(replies[index]) do
      if #recent < n.size and not seen[sku] then seen[sku] = true; recent[#recent + 1] = sku end
    end
  end
  local cart, in_cart = {}, {}
  local function hold(sku)
    if not in_cart[sku] then in_cart[sku] = true; cart[#cart + 1] = sku end
  end
  for _, sku in ipairs(n.page_cart) do hold(sku) end
  for _, index in ipairs(n.carts) do
    local reply, held_skus = replies[index], {}
    for i = 1, #reply, 2 do
      local quantity = tonumber(string.match(reply[i + 1], '^[^|]*|(%-?%d+)'))
      if quantity and quantity > 0 then held_skus[#held_skus + 1] = reply[i] end
    end
    table.sort(held_skus)
    for _, sku in ipairs(held_skus) do hold(sku) end
  end
  if n.purchased > 0 then
    for i, sku in ipairs(replies[n.purchased]) do
      if i > n.purchase_anchors then break end
      hold(sku)
    end
  end
  for _, sku in ipairs(recent) do fetch(n.content .. sku) end
  for _, sku in ipairs(recent) do fetch(n.cf .. sku) end
  for i = 1, math.min(#cart, n.size) do fetch(n.bought_together .. cart[i]) end
  if #wanted > 0 then
    local values = redis.call('MGET', unpack(wanted))
    for j, key in ipairs(wanted) do
      neighbours[#neighbours + 1] = key
      neighbours[#neighbours + 1] = values[j]
    end
  end
end
return {replies, held, neighbours}
"""
)


@dataclass
class Anchors:
    """Where the script finds the session re-rank's anchors: feature keys read in this round
    trip (viewed products, stored carts, purchases), the cart the page sent, and the list keys
    already read (not fetched twice)."""

    recent_keys: list[str] = field(default_factory=list)
    cart_keys: list[str] = field(default_factory=list)
    purchased_key: str = ""
    page_cart: list[str] = field(default_factory=list)
    have: list[str] = field(default_factory=list)
    size: int = 5
    purchase_anchors: int = 3


@dataclass
class RoundTripReply:
    replies: list[Any]  # per queued read, shaped as a redis-py pipeline returns it
    availability: list | None  # the availability read's reply; None: read it separately
    neighbours: dict[str, bytes | None]  # list key -> raw value, fetched from the anchors


class RoundTrip:
    """The reads of one request, queued with a pipeline's method names."""

    def __init__(self) -> None:
        self.ops: list[list] = []
        self._index: dict[tuple[str, str], int] = {}

    def _queue(self, op: list) -> None:
        self._index.setdefault((op[0], op[1]), len(self.ops))
        self.ops.append(op)

    def get(self, key: str) -> None:
        self._queue(["get", key])

    def hgetall(self, key: str) -> None:
        self._queue(["hgetall", key])

    def zrevrange(self, key: str, start: int, end: int) -> None:
        if start != 0:
            raise ValueError("the render path reads rankings from their head")
        self._queue(["zrevrange", key, end])

    def exists(self, key: str) -> None:
        self._queue(["exists", key])

    def incr(self, key: str) -> None:
        self._queue(["incr", key])

    def hincrby(self, key: str, name: str, amount: int = 1) -> None:
        self._queue(["hincrby", key, name, amount])

    def expire(self, key: str, seconds: int) -> None:
        self._queue(["expire", key, int(seconds)])

    def run(self, client: redis_clients.Client, anchors: Anchors | None) -> RoundTripReply:
        if redis_clients.is_cluster(client):
            return self._run_pipelined(client)
        epoch, version = availability.held_version()
        plan = {
            "ops": self.ops,
            "availability": [*redis_keys.AVAILABILITY_KEYS, epoch, version, availability.MAX_DELTA],
            "neighbours": self._anchor_plan(anchors) if anchors else None,
        }
        replies, held, neighbours = redis_clients.script(client, _RENDER_READ)(
            args=[json.dumps(plan, separators=(",", ":"))], client=client
        )
        shaped = [
            _as_dict(reply) if op[0] == "hgetall" else reply
            for op, reply in zip(self.ops, replies, strict=True)
        ]
        fetched = _as_dict(neighbours)
        return RoundTripReply(shaped, held, {key.decode(): raw for key, raw in fetched.items()})

    def _anchor_plan(self, anchors: Anchors) -> dict:
        def index(kind: str, key: str) -> int:
            return self._index[(kind, key)] + 1  # Lua counts from 1

        return {
            "recent": [index("zrevrange", key) for key in anchors.recent_keys],
            "carts": [index("hgetall", key) for key in anchors.cart_keys],
            "purchased": index("zrevrange", anchors.purchased_key) if anchors.purchased_key else 0,
            "page_cart": anchors.page_cart,
            "have": anchors.have,
            "size": anchors.size,
            "purchase_anchors": anchors.purchase_anchors,
            "content": redis_keys.similar_content_list(""),
            "cf": redis_keys.similar_cf_list(""),
            "bought_together": redis_keys.bought_together_list(""),
        }

    def _run_pipelined(self, client) -> RoundTripReply:
        pipe = client.pipeline(transaction=False)
        for name, key, *rest in self.ops:
            if name == "zrevrange":
                pipe.zrevrange(key, 0, rest[0])
            else:
                getattr(pipe, name)(key, *rest)
        return RoundTripReply(pipe.execute(), None, {})


def _as_dict(flat: list) -> dict:
    pairs = iter(flat)
    return dict(zip(pairs, pairs, strict=True))
