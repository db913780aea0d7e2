"""The shopper's cart, kept in the session as {sku: quantity} (the shape recs reads too)."""

from collections.abc import Iterable

from django.contrib.sessions.backends.base import SessionBase

CART_SESSION_KEY = "cart"
MAX_LINE_QUANTITY = 99


class SessionCart:
    """Quantities per SKU in the session; validation of products is the caller's job."""

    def __init__(self, session: SessionBase) -> None:
        self.session = session

    @property
    def quantities(self) -> dict[str, int]:
        stored = self.session.get(CART_SESSION_KEY)
        return (
            {str(sku): int(qty) for sku, qty in stored.items()} if isinstance(stored, dict) else {}
        )

    @property
    def item_count(self) -> int:
        return sum(self.quantities.values())

    def _save(self, quantities: dict[str, int]) -> None:
        self.session[CART_SESSION_KEY] = quantities

    def set(self, sku: str, quantity: int) -> int:
        """Set a line (0 removes it); returns the quantity now in the cart."""
        quantities = self.quantities
        quantity = max(0, min(quantity, MAX_LINE_QUANTITY))
        if quantity:
            quantities[sku] = quantity
        else:
            quantities.pop(sku, None)
        self._save(quantities)
        return quantity

    def add(self, sku: str, quantity: int, *, at_most: int = MAX_LINE_QUANTITY) -> int:
        """Add to a line without going over `at_most` (what is left to sell)."""
        wanted = self.quantities.get(sku, 0) + quantity
        return self.set(sku, min(wanted, at_most))

    def remove(self, sku: str) -> None:
        self.set(sku, 0)

    def remove_many(self, skus: Iterable[str]) -> None:
        quantities = self.quantities
        for sku in skus:
            quantities.pop(sku, None)
        self._save(quantities)

    def clear(self) -> None:
        self._save({})
