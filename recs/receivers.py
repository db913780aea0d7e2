"""What the engine does when merch announces a committed change (merch.signals), in one place.

Wired in RecsConfig.ready. Every receiver runs inside the commit's on_commit callback of the
request that made the change, so none of them may fail it: a Redis or broker outage is logged,
and the periodic sync or the next training repairs what was missed.
"""

import logging

from merch import signals
from merch.signals import StockChange
from recs.candidates.availability import apply_availability_change
from recs.candidates.tasks import queue_list_refresh, queue_similar_for_products
from recs.serving.catalog import sync_catalog_cards
from recs.serving.merchandising import bump_config_version
from recs.training.tasks import precompute_experiment_lists_task

logger = logging.getLogger(__name__)


def on_stock_changed(sender, changes: list[StockChange], **kwargs) -> None:
    """Sold-out products leave the unavailable set's readers at once; their lists refill later."""
    refill = apply_availability_change(
        [c.sku for c in changes if not c.is_available],
        [c.sku for c in changes if c.is_available],
    )
    if refill:
        queue_list_refresh(refill)


def on_activation_changed(sender, skus: list[str], is_active: bool, **kwargs) -> None:
    refill = apply_availability_change(*(([], skus) if is_active else (skus, [])))
    if refill:
        queue_list_refresh(refill)


def on_products_changed(sender, skus: list[str], **kwargs) -> None:
    """Product cards reload in every web process (the catalog version is bumped), and the
    products get content-similar lists without a retraining."""
    try:
        sync_catalog_cards()
    except Exception:
        logger.exception("Could not bump the catalog version after %d product changes", len(skus))
    queue_similar_for_products(skus)


def on_experiments_changed(sender, **kwargs) -> None:
    """Cached experiment config is stale, and a started variant's model lists get computed."""
    bump_config_version()
    try:
        precompute_experiment_lists_task.delay()
    except Exception:  # the broker is down: the next training run computes them
        logger.exception("Could not queue the experiment lists")


def connect_receivers() -> None:
    signals.stock_changed.connect(on_stock_changed, dispatch_uid="recs-stock")
    signals.products_activation_changed.connect(
        on_activation_changed, dispatch_uid="recs-activation"
    )
    signals.products_changed.connect(on_products_changed, dispatch_uid="recs-products-changed")
    signals.merchandising_changed.connect(bump_config_version, dispatch_uid="recs-merchandising")
    signals.experiments_changed.connect(on_experiments_changed, dispatch_uid="recs-experiments")
