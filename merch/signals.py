"""Signals merch sends after a commit, so other apps (recs) can react without merch importing them.

They are sent only from merch.services, always through transaction.on_commit: a receiver never
sees a change that was rolled back, and sees every committed one.
"""

from dataclasses import dataclass

from django.dispatch import Signal


@dataclass(frozen=True)
class StockChange:
    """One product's availability before and after a committed stock change."""

    product_id: int
    sku: str
    available_quantity: int
    was_available: bool

    @property
    def is_available(self) -> bool:
        return self.available_quantity > 0

    @property
    def availability_flipped(self) -> bool:
        return self.was_available != self.is_available


# kwargs: changes: list[StockChange]
stock_changed = Signal()
# kwargs: skus: list[str], is_active: bool; also sent for products just created by
# upsert_products, so that readers learn whether a new product may be sold
products_activation_changed = Signal()
# kwargs: skus: list[str]; products created or changed by upsert_products (cards, content lists)
products_changed = Signal()
# kwargs: none; a placement or merchandising rule changed, so cached merchandising config is stale
merchandising_changed = Signal()
# kwargs: experiment_id: int; an experiment or its variants changed: cached config is stale
experiments_changed = Signal()
