"""Which products must not be served: the write side of the unavailable set in Redis.

merch announces stock and activation changes with transaction.on_commit; the receivers
(recs.receivers) update the set synchronously inside that callback, i.e. before the service
call that committed returns, so no reader serves a sold-out product after the commit. Refreshing
the cached lists that held it (so they regain their length) is left to a Celery task.
"""

import logging
from collections.abc import Iterable, Sequence

from merch.selectors.catalog import available_skus, unavailable_skus
from recs import redis_keys
from recs.candidates.store import writer_client

logger = logging.getLogger(__name__)


def set_unavailable(unavailable: Iterable[str], available: Iterable[str] = ()) -> None:
    """Mark products unavailable / available again for every reader, in one round trip."""
    unavailable, available = list(unavailable), list(available)
    if not unavailable and not available:
        return
    pipe = writer_client().pipeline(transaction=True)
    if unavailable:
        pipe.sadd(redis_keys.UNAVAILABLE, *unavailable)
    if available:
        pipe.srem(redis_keys.UNAVAILABLE, *available)
    pipe.execute()


def sync_unavailable() -> int:
    """Rebuild the set from the catalog (after a Redis restart, and periodically by beat in
    case a commit-time update could not reach Redis); returns its size."""
    skus = sorted(unavailable_skus())
    client = writer_client()
    pipe = client.pipeline(transaction=True)
    pipe.delete(redis_keys.UNAVAILABLE)
    for start in range(0, len(skus), 1000):
        pipe.sadd(redis_keys.UNAVAILABLE, *skus[start : start + 1000])
    pipe.execute()
    # Present while the set is complete; gone when Redis lost its data (a restart without
    # persistence), which readers must not take for "nothing is sold out".
    client.set(redis_keys.UNAVAILABLE_SYNCED, "1")
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
