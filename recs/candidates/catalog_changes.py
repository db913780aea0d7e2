"""Catalog changes reach serving without a restart or a retraining: cards reload, and new or
changed products get content-similar lists from the serving content model.

merch announces created and changed products on commit (merch.signals.products_changed). The
receiver bumps the catalog version every web process watches, so that their product cards
reload on their next request, and queues the scoring of the products' similar-item lists.
"""

import logging
from collections.abc import Callable, Sequence

from celery import shared_task
from django.conf import settings

from merch.selectors import product_summaries
from recs.candidates.refresh import depth_for, fill_past_unavailable, unavailable_now
from recs.candidates.store import write_lists
from recs.learners import Learner
from recs.learners.base import CatalogItem
from recs.learners.content import ContentLearner
from recs.serving.catalog import sync_catalog_cards

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
    try:
        similar_for_changed_products_task.delay(sorted(skus))
    except Exception:
        logger.exception("Could not queue the similar-items lists of %d products", len(skus))


def catalog_items_of(skus: Sequence[str]) -> list[CatalogItem]:
    """The content learner's view of these products, as stored now."""
    return [
        CatalogItem(
            sku=p.sku,
            title=p.title,
            description=p.description,
            category_path=p.category_path,
            brand=p.brand,
            price=float(p.price),
            attributes=p.attributes or {},
            launched_at=p.launched_at.timestamp(),
        )
        for p in product_summaries(skus)
    ]


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
    items = catalog_items_of(skus)
    if not items:
        return 0
    unavailable = unavailable_now()
    size = settings.SIMILAR_ITEMS_SIZE
    lists = learner.similar_items_for_new(items, depth_for(size, unavailable))
    return write_lists(
        (SIMILAR_CONTENT_PREFIX + sku, fill_past_unavailable(ranked, size, unavailable))
        for sku, ranked in lists.items()
    )


@shared_task(
    name="recs.scoring.similar_for_changed_products",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=1,
    max_retries=5,
)
def similar_for_changed_products_task(skus: list[str]) -> int:
    """Content-similar lists for products created or changed through the catalog (idempotent)."""
    from recs.training.pipeline import serving_learner  # the training stack, loaded lazily

    return write_similar_for_products(skus, serving_learner)
