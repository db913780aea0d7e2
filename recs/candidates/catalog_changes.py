"""Catalog changes reach serving without a restart or a retraining: cards reload, and new or
changed products get content-similar lists from the serving content model.

merch announces created and changed products on commit (merch.signals.products_changed). The
receiver (recs.receivers) bumps the catalog version every web process watches, so that their
product cards reload on their next request, and queues the scoring done here.
"""

import logging
from collections.abc import Callable, Sequence

from aisle.conf import aisle_settings
from recs import redis_keys
from recs.candidates.refresh import depth_for, fill_past_unavailable, unavailable_now
from recs.candidates.store import write_lists
from recs.learners import Learner
from recs.learners.content import ContentLearner
from recs.training.data import catalog_items

logger = logging.getLogger(__name__)


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
    size = aisle_settings.SIMILAR_ITEMS_SIZE
    lists = learner.similar_items_for_new(items, depth_for(size, unavailable))
    return write_lists(
        (redis_keys.similar_content_list(sku), fill_past_unavailable(ranked, size, unavailable))
        for sku, ranked in lists.items()
    )
