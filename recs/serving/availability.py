"""The sold-out set as each web process holds it: checked in memory, kept current by the
request's own round trip.

A request sends the (epoch, version) this process holds; the same round trip returns the
changes since (usually none), or the whole set when the process is too far behind the capped
change log or the set was rebuilt (a new epoch). The reply is applied before anything is
filtered, so a product sold out by a commit is never served by a request that reads after the
commit. The write side is recs.candidates.availability.
"""

import threading
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from recs import redis_keys
from recs.candidates.store import ITEM_SEPARATOR
from recs.redis_clients import Client, script

# A reader further behind than this many changes takes the whole set instead.
MAX_DELTA = 512

# The read: (epoch, version, 'same' | 'delta' | 'full', changes or members); {false} when the
# set was never built or Redis lost it. Shared by the render path's one-round-trip script.
READ_LUA = """
local function read_availability(set_key, state_key, changes_key, epoch, version, max_delta)
  local state = redis.call('HMGET', state_key, 'epoch', 'version')
  if not state[1] then return {false} end
  if state[1] == epoch then
    if state[2] == version then return {state[1], state[2], 'same'} end
    local behind = tonumber(state[2]) - tonumber(version)
    if behind > 0 and behind <= max_delta then
      local changes = redis.call('XRANGE', changes_key, '(' .. version .. '-0', '+')
      if #changes == behind then return {state[1], state[2], 'delta', changes} end
    end
  end
  return {state[1], state[2], 'full', redis.call('SMEMBERS', set_key)}
end
"""
_READ_ONLY = (
    READ_LUA
    + """
return read_availability(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]))
"""
)


@dataclass
class _Held:
    epoch: str = ""
    version: int = -1
    # Changed in place under the lock (copying a set of 100k SKUs per change would cost a
    # request milliseconds in a flash sale); readers only test membership, which the GIL keeps
    # whole, and a reader that sees a change being applied sees a newer state than it read.
    unavailable: set[str] = field(default_factory=set)


_lock = threading.Lock()
_held = _Held()


def held_version() -> tuple[str, str]:
    """What this process holds, as the read script takes it."""
    held = _held
    return held.epoch, str(held.version)


def apply(reply: list) -> AbstractSet[str] | None:
    """The unavailable set after applying a read's reply; None when Redis has no set (lost or
    never built: the caller rebuilds it from the catalog)."""
    global _held
    if not reply or not reply[0]:
        return None
    epoch, version, kind = reply[0].decode(), int(reply[1]), reply[2]
    with _lock:
        held = _held
        # Epochs sort in the order they were made, so no reply can take the set back in time.
        if kind == b"same" or (epoch, version) <= (held.epoch, held.version):
            return held.unavailable  # nothing new, or another thread applied it already
        if kind == b"full":
            _held = _Held(epoch, version, {sku.decode() for sku in reply[3]})
            return _held.unavailable
        if epoch != held.epoch:  # changes of a set rebuilt since: the held one is newer
            return held.unavailable
        unavailable = held.unavailable
        for entry_id, fields in reply[3]:
            if int(entry_id.split(b"-")[0]) <= held.version:
                continue
            changes = dict(zip(fields[::2], fields[1::2], strict=True))
            if out := changes.get(b"out"):
                unavailable.update(out.decode().split(ITEM_SEPARATOR))
            if back := changes.get(b"in"):
                unavailable.difference_update(back.decode().split(ITEM_SEPARATOR))
        held.version = version
        return unavailable


def read(client: Client) -> AbstractSet[str] | None:
    """The current set in a round trip of its own (when the request's own one could not carry
    it: a cluster's pipeline, or right after a rebuild)."""
    epoch, version = held_version()
    return apply(
        script(client, _READ_ONLY)(
            keys=redis_keys.AVAILABILITY_KEYS, args=[epoch, version, MAX_DELTA], client=client
        )
    )


def clear() -> None:
    global _held
    with _lock:
        _held = _Held()
