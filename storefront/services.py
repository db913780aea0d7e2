"""Checkout: turn the cart into an order, taking the stock in one transaction or not at all."""

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction

from aisle.conf import aisle_cache, aisle_settings
from merch.models import Product, Stock
from merch.services.catalog import set_stock


@dataclass(frozen=True)
class OrderLine:
    sku: str
    title: str
    quantity: int
    unit_price: Decimal
    currency: str

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Order:
    """A placed order. The demo keeps no order table: stock and purchase events record it."""

    order_id: str
    lines: tuple[OrderLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.line_total for line in self.lines), Decimal("0"))

    @property
    def currency(self) -> str:
        return self.lines[0].currency if self.lines else ""

    def to_session(self) -> dict[str, Any]:
        """JSON-safe, for the confirmation page after the redirect."""
        return {
            "order_id": self.order_id,
            "lines": [{**asdict(line), "unit_price": str(line.unit_price)} for line in self.lines],
        }

    @classmethod
    def from_session(cls, data: Mapping[str, Any]) -> "Order":
        lines = tuple(
            OrderLine(**{**line, "unit_price": Decimal(line["unit_price"])})
            for line in data["lines"]
        )
        return cls(order_id=data["order_id"], lines=lines)


@dataclass(frozen=True)
class RefusedLine:
    sku: str
    title: str
    requested: int
    available: int  # 0: sold out (or no longer sold)


class OrderRefused(Exception):
    """Some lines cannot be sold as asked; nothing was taken from stock."""

    def __init__(self, refused: list[RefusedLine]) -> None:
        super().__init__(", ".join(line.sku for line in refused))
        self.refused = refused


class OrderTooLarge(ValueError):
    """More units in one order than the shop sells at once (CHECKOUT_MAX_UNITS)."""


logger = logging.getLogger(__name__)


def checkout_allowed(address: str) -> bool:
    """Whether this address may place another order this hour (CHECKOUT_ORDERS_PER_HOUR): a
    script must not be able to empty the shop's stock. Counted in the cache; fails open."""
    key = f"checkout:{address}:{int(time.time() // 3600)}"
    try:
        cache = aisle_cache()
        added = cache.add(key, 1, timeout=3600)
        count = 1 if added else cache.incr(key)
    except Exception:  # the cache is down: selling goes on, the stock limits still hold
        logger.warning("Checkout counter unavailable; not limiting %s", address)
        return True
    return count <= aisle_settings.CHECKOUT_ORDERS_PER_HOUR


@transaction.atomic
def place_order(quantities: Mapping[str, int]) -> Order:
    """Take every line from stock, or none: a shopper must not get half an order by surprise.

    Raises OrderRefused listing each line that is sold out or short, OrderTooLarge beyond
    CHECKOUT_MAX_UNITS, and ValueError for an empty cart.
    """
    wanted = {sku: quantity for sku, quantity in quantities.items() if quantity > 0}
    if not wanted:
        raise ValueError("The cart is empty.")
    if sum(wanted.values()) > aisle_settings.CHECKOUT_MAX_UNITS:
        raise OrderTooLarge(
            f"One order takes at most {aisle_settings.CHECKOUT_MAX_UNITS} items; "
            "split it or contact the shop."
        )
    # Lock the stock rows first so that two checkouts cannot both sell the last one.
    stocks = {
        stock.product_id: stock
        for stock in Stock.objects.select_for_update().filter(product__sku__in=list(wanted))
    }
    products = {p.sku: p for p in Product.objects.filter(sku__in=list(wanted))}
    refused: list[RefusedLine] = []
    for sku, quantity in wanted.items():
        product = products.get(sku)
        stock = stocks.get(product.pk) if product is not None else None
        available = stock.available_quantity if stock and product.is_active else 0
        if available < quantity:
            title = product.title if product is not None else sku
            refused.append(RefusedLine(sku, title, requested=quantity, available=available))
    if refused:
        raise OrderRefused(refused)
    lines = []
    for sku, quantity in wanted.items():
        product, stock = products[sku], stocks[products[sku].pk]
        set_stock(product, on_hand=stock.on_hand - quantity)
        lines.append(OrderLine(sku, product.title, quantity, product.price, product.currency))
    return Order(order_id=uuid.uuid4().hex[:16], lines=tuple(lines))
