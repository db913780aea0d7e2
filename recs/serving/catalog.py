"""Product cards (title, price, category, launch time) held read-only in each web process.

Loaded from the catalog in one query and reloaded when `cat:version` changes in Redis (bumped by
sync_catalog_cards after imports, training and product edits) or after CATALOG_CACHE_SECONDS,
so the render path never queries the database per request. Availability is NOT cached here:
it is read from Redis on every request (see recs.candidates.availability).
"""

import logging
import threading
import time

from aisle.conf import aisle_settings
from merch.selectors.catalog import CatalogCard, catalog_cards
from recs import redis_keys
from recs.candidates.store import writer_client

logger = logging.getLogger(__name__)


_lock = threading.Lock()
_cards: dict[str, CatalogCard] = {}
_version: str | None = None
_loaded_at = 0.0
# Newest-first lists by category path ("" = all) of one cards dict, held with the dict itself
# (compared by identity: an id() of a freed dict can come back for another one).
_newest: tuple[dict[str, CatalogCard] | None, dict[str, list[str]]] = (None, {})
NEWEST_DEPTH = 200


def sync_catalog_cards() -> int:
    """Tell every reader to reload its cards (after the catalog changed); returns the version."""
    return int(writer_client().incr(redis_keys.CATALOG_VERSION))


def cards(version: str | None) -> dict[str, CatalogCard]:
    """The cards, reloaded when `version` (read from Redis with the request's other reads; None
    when Redis is down) differs from the loaded one or the copy is too old."""
    global _cards, _version, _loaded_at
    stale = time.monotonic() - _loaded_at > aisle_settings.CATALOG_CACHE_SECONDS
    if _cards and not stale and (version is None or version == _version):
        return _cards
    with _lock:
        try:
            loaded = {card.sku: card for card in catalog_cards()}
        except Exception:  # the database is down: keep serving the copy we have
            logger.exception("Could not reload product cards; serving the cached copy")
            return _cards
        _cards, _loaded_at = loaded, time.monotonic()
        if version is not None:
            _version = version
    return _cards


def newest(cards: dict[str, CatalogCard], category_path: str = "") -> list[str]:
    """The newest active products first, of a category subtree when given: what a shop with no
    history yet (no trained list, no popularity) is shown. Computed once per loaded copy of the
    cards and category; availability is checked by the caller like any other list."""
    global _newest
    if _newest[0] is not cards:
        _newest = (cards, {})
    by_category = _newest[1]
    if category_path not in by_category:
        prefix = category_path.rstrip("/") + "/"
        chosen = [
            card
            for card in cards.values()
            if card.is_active
            and (
                not category_path
                or card.category_path == category_path
                or card.category_path.startswith(prefix)
            )
        ]
        chosen.sort(key=lambda card: (-card.launched_at, card.sku))
        by_category[category_path] = [card.sku for card in chosen[:NEWEST_DEPTH]]
    return by_category[category_path]


def is_new(card: CatalogCard, now_s: float) -> bool:
    return card.launched_at > new_since(now_s)


def new_since(now_s: float) -> float:
    """Products launched after this moment count as new."""
    return now_s - aisle_settings.NEW_PRODUCT_HOURS * 3600


def clear() -> None:
    global _cards, _version, _loaded_at, _newest
    _cards, _version, _loaded_at, _newest = {}, None, 0.0, (None, {})
