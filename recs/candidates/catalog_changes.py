"""Catalog changes reach serving without a restart or a retraining: cards reload, and new or
changed products get content-similar lists from the serving content model.

merch announces created and changed products on commit (merch.signals.products_changed). The
receiver bumps the catalog version every web process watches, so that their product cards
reload on their next request, and queues the scoring of the products' similar-item lists.
"""

import logging
from collections.abc import Callable, Sequence

from django.conf import settings

from recs.candidates.refresh import depth_for, fill_past_unavailable, unavailable_now
from recs.candidates.store import write_lists
from recs.learners import Learner
from recs.learners.content import ContentLearner
from recs.serving.catalog import sync_catalog_cards
from recs.training.data import catalog_items

logger = logging.getLogger(__name__)

SIMILAR_CONTENT_PREFIX = "c:similar:content:"


def on_products_changed(sender, skus: list[str], **kwargs) -> None:
    """Receiver of merch.signals.products_changed (sent on commit).

    Nothing here may fail the request whose commit sent it: with Redis down the cards still
    reload after CATALOG_CACHE_SECONDS, and the lists come with the next training."""
    try:
        sync_catalog_cards()
    except Exception:
        logger.exception("Could not bump the catalog version after %d product changes", len(skus))
    from recs.candidates.tasks import similar_for_changed_products_task  # loads training

    try:
        similar_for_changed_products_task.delay(sorted(skus))
    except Exception:
        logger.exception("Could not queue the similar-items lists of %d products", len(skus))


def write_similar_for_products(
    skus: Sequence[str], load_learner: Callable[[str], Learner | None]
) -> int:
    """Write `c:similar:content:<sku>` for these products from the serving content model, folded
    in without retraining; returns how many lists were written (0 before the first training).

    Idempotent: the lists depend only on the stored products and the serving model."""
    learner = load_learner("similar_content")
    if not isinstance(learner, ContentLearner) or not learner.can_fold_in:
        logger.info("No content model that can fold in new products; lists wait for training")
        return 0
    items = catalog_items(skus)
    if not items:
        return 0
    unavailable = unavailable_now()
    size = settings.SIMILAR_ITEMS_SIZE
    lists = learner.similar_items_for_new(items, depth_for(size, unavailable))
    return write_lists(
        (SIMILAR_CONTENT_PREFIX + sku, fill_past_unavailable(ranked, size, unavailable))
        for sku, ranked in lists.items()
    )
