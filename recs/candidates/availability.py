"""Which products must not be served: the write side of the sold-out set in Redis.

merch announces stock and activation changes with transaction.on_commit; the receivers
(recs.receivers) update the set synchronously inside that callback, i.e. before the service
call that committed returns, so no reader serves a sold-out product after the commit. Refreshing
the cached lists that held it (so they regain their length) is left to a Celery task.

Web processes hold the set in memory (recs.serving.availability). Every change is one script
that updates the set, bumps its version and appends the change to a capped stream, atomically;
a reader sends the version it holds with each request's one round trip and gets back the
changes since (usually none), or the whole set when it is too far behind or the set was rebuilt
from nothing (a new epoch).
"""

import logging
import time
import uuid
from collections.abc import Iterable, Sequence

from merch.selectors.catalog import available_skus, unavailable_skus
from recs import redis_keys
from recs.candidates.store import ITEM_SEPARATOR, writer_client
from recs.redis_clients import script

logger = logging.getLogger(__name__)

# Changes kept in the stream; a reader further behind than this reloads the whole set.
CHANGES_KEPT = 10_000
_CHANGE = """
local out_count = tonumber(ARGV[2])
local out, back = {}, {}
for i = 3, 2 + out_count do out[#out + 1] = ARGV[i] end
for i = 3 + out_count, #ARGV do back[#back + 1] = ARGV[i] end
for i = 1, #out, 1000 do
  redis.call('SADD', KEYS[1], unpack(out, i, math.min(i + 999, #out)))
end
for i = 1, #back, 1000 do
  redis.call('SREM', KEYS[1], unpack(back, i, math.min(i + 999, #back)))
end
local version = redis.call('HINCRBY', KEYS[2], 'version', 1)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], version .. '-0',
           'out', table.concat(out, '\\31'), 'in', table.concat(back, '\\31'))
return version
"""

_RESET = """
redis.call('DEL', KEYS[1], KEYS[3])
for i = 2, #ARGV, 1000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('HSET', KEYS[2], 'epoch', ARGV[1], 'version', 0)
return 0
"""


def set_unavailable(unavailable: Iterable[str], available: Iterable[str] = ()) -> None:
    """Mark products unavailable / available again for every reader, in one round trip."""
    unavailable, available = list(unavailable), list(available)
    if not unavailable and not available:
        return
    if any(ITEM_SEPARATOR in sku for sku in [*unavailable, *available]):
        raise ValueError("a SKU may not hold \\x1f")
    client = writer_client()
    script(client, _CHANGE)(
        keys=redis_keys.AVAILABILITY_KEYS, args=[CHANGES_KEPT, len(unavailable), *unavailable, *available],
        client=client,
    )  # fmt: skip


def sync_unavailable() -> int:
    """Bring the set in line with the catalog (after a Redis restart, and periodically by beat
    in case a commit-time update could not reach Redis); returns its size.

    While the set is there, only the difference is written, as one ordinary change, so readers
    keep their copies; a set that is gone (Redis lost its data, or the key layout before
    {avail}) is rebuilt under a new epoch, which makes every reader reload it whole."""
    skus = set(unavailable_skus())
    client = writer_client()
    if client.hget(redis_keys.UNAVAILABLE_STATE, "epoch") is None:
        epoch = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"  # sorts in the order made
        script(client, _RESET)(
            keys=redis_keys.AVAILABILITY_KEYS, args=[epoch, *sorted(skus)], client=client
        )
        client.delete(*redis_keys.LEGACY_AVAILABILITY_KEYS)
        return len(skus)
    current = {sku.decode() for sku in client.smembers(redis_keys.UNAVAILABLE)}
    set_unavailable(sorted(skus - current), sorted(current - skus))
    return len(skus)


def apply_availability_change(
    became_unavailable: Sequence[str], maybe_available: Sequence[str]
) -> list[str]:
    """Update the set for a committed change; returns the products whose lists need a refill
    (those that went out, and those really back: a product with stock may still be inactive)."""
    back = sorted(available_skus(maybe_available)) if maybe_available else []
    still_out = sorted(set(maybe_available) - set(back))
    try:
        set_unavailable([*became_unavailable, *still_out], back)
    except Exception:
        logger.exception(
            "Could not mark %d products unavailable in Redis; the periodic sync will",
            len(became_unavailable),
        )
    return sorted({*became_unavailable, *back})
