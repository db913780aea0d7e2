"""Which products must not be served, kept in Redis at commit time.

merch announces stock and activation changes with transaction.on_commit; the receivers here
update the `avail:unavailable` set synchronously inside that callback, i.e. before the service
call that committed returns, so no reader serves a sold-out product after the commit. Refreshing
the cached lists that held it (so they regain their length) is left to a Celery task.
"""

import logging
from collections.abc import Iterable, Sequence

from merch.selectors import available_skus, unavailable_skus
from merch.signals import StockChange
from recs.candidates.store import writer_client

logger = logging.getLogger(__name__)

UNAVAILABLE_KEY = "avail:unavailable"
# Present while the set is complete; gone when Redis lost its data (a restart without
# persistence), which readers must not take for "nothing is sold out".
SYNCED_KEY = "avail:synced"


def set_unavailable(unavailable: Iterable[str], available: Iterable[str] = ()) -> None:
    """Mark products unavailable / available again for every reader, in one round trip."""
    unavailable, available = list(unavailable), list(available)
    if not unavailable and not available:
        return
    pipe = writer_client().pipeline(transaction=True)
    if unavailable:
        pipe.sadd(UNAVAILABLE_KEY, *unavailable)
    if available:
        pipe.srem(UNAVAILABLE_KEY, *available)
    pipe.execute()


def sync_unavailable() -> int:
    """Rebuild the set from the catalog (after a Redis restart, and periodically by beat in
    case a commit-time update could not reach Redis); returns its size."""
    skus = sorted(unavailable_skus())
    client = writer_client()
    pipe = client.pipeline(transaction=True)
    pipe.delete(UNAVAILABLE_KEY)
    for start in range(0, len(skus), 1000):
        pipe.sadd(UNAVAILABLE_KEY, *skus[start : start + 1000])
    pipe.execute()
    client.set(SYNCED_KEY, "1")
    return len(skus)


def _apply_change(became_unavailable: Sequence[str], maybe_available: Sequence[str]) -> None:
    # A product with stock again may still be inactive: ask the catalog once for those.
    back = sorted(available_skus(maybe_available)) if maybe_available else []
    still_out = sorted(set(maybe_available) - set(back))
    try:
        set_unavailable([*became_unavailable, *still_out], back)
    except Exception:
        logger.exception(
            "Could not mark %d products unavailable in Redis; the periodic sync will",
            len(became_unavailable),
        )
    if became_unavailable or back:
        from recs.candidates.tasks import refresh_lists_task

        try:
            refresh_lists_task.delay(sorted({*became_unavailable, *back}))
        except Exception:
            logger.exception("Could not queue the refresh of lists after a stock change")


def on_stock_changed(sender, changes: list[StockChange], **kwargs) -> None:
    """Receiver of merch.signals.stock_changed (sent on commit)."""
    _apply_change(
        [c.sku for c in changes if not c.is_available],
        [c.sku for c in changes if c.is_available],
    )


def on_activation_changed(sender, skus: list[str], is_active: bool, **kwargs) -> None:
    """Receiver of merch.signals.products_activation_changed (sent on commit)."""
    if is_active:
        _apply_change([], skus)
    else:
        _apply_change(skus, [])
