"""merch.services: stock changes, bulk levels, activation, categories, product upserts."""

from decimal import Decimal

import pytest
from django.db import transaction

from merch import services
from merch.models import Product, Stock
from merch.signals import products_activation_changed, stock_changed
from tests.factories import ProductFactory, StockFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def received_stock_changes():
    received = []

    def receiver(sender, changes, **kwargs):
        received.extend(changes)

    stock_changed.connect(receiver, weak=False)
    yield received
    stock_changed.disconnect(receiver)


def test_stock_change_is_announced_only_after_commit(
    received_stock_changes, django_capture_on_commit_callbacks
):
    stock = StockFactory(on_hand=5)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.set_stock(stock.product, on_hand=0)
    assert received_stock_changes == []
    for callback in callbacks:
        callback()
    [change] = received_stock_changes
    assert change.sku == stock.product.sku
    assert change.was_available and not change.is_available and change.availability_flipped


@pytest.mark.django_db(transaction=True)
def test_rolled_back_stock_change_is_never_announced(received_stock_changes):
    stock = StockFactory(on_hand=5)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.set_stock(stock.product, on_hand=0)
        raise RuntimeError("checkout failed")
    assert received_stock_changes == []
    stock.refresh_from_db()
    assert stock.on_hand == 5


@pytest.mark.django_db(transaction=True)
def test_committed_stock_change_is_announced_once(received_stock_changes):
    stock = StockFactory(on_hand=5, reserved=1)
    services.set_stock(stock.product, reserved=5)
    [change] = received_stock_changes
    assert change.available_quantity == 0 and change.was_available


def test_unchanged_stock_announces_nothing(
    received_stock_changes, django_capture_on_commit_callbacks
):
    stock = StockFactory(on_hand=5)
    with django_capture_on_commit_callbacks(execute=True):
        services.set_stock(stock.product, on_hand=5)
    assert received_stock_changes == []


def test_negative_stock_is_refused():
    stock = StockFactory(on_hand=5)
    with pytest.raises(ValueError, match="negative"):
        services.set_stock(stock.product, on_hand=-1)


def test_available_quantity_is_on_hand_minus_reserved_never_negative():
    assert StockFactory.build(on_hand=7, reserved=3).available_quantity == 4
    assert StockFactory.build(on_hand=2, reserved=3).available_quantity == 0


def test_bulk_stock_levels_create_and_update_in_one_announcement(
    received_stock_changes, django_capture_on_commit_callbacks
):
    kept = StockFactory(on_hand=3)
    changed = StockFactory(on_hand=3)
    fresh = ProductFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.set_stock_levels(
            [
                services.StockLevel(kept.product.sku, 3),
                services.StockLevel(changed.product.sku, 0),
                services.StockLevel(fresh.sku, 9),
            ]
        )
    assert len(callbacks) == 1
    assert {c.sku: c.available_quantity for c in received_stock_changes} == {
        changed.product.sku: 0,
        fresh.sku: 9,
    }
    assert Stock.objects.get(product=fresh).on_hand == 9


def test_bulk_stock_levels_with_unknown_sku_write_nothing():
    stock = StockFactory(on_hand=3)
    with pytest.raises(KeyError, match="NOPE"):
        services.set_stock_levels(
            [services.StockLevel(stock.product.sku, 0), services.StockLevel("NOPE", 1)]
        )
    stock.refresh_from_db()
    assert stock.on_hand == 3


def test_mark_out_of_stock_keeps_reservations_and_leaves_nothing_to_sell():
    with_reservation = StockFactory(on_hand=10, reserved=2)
    without_stock_row = ProductFactory()
    services.mark_out_of_stock([with_reservation.product_id, without_stock_row.pk])
    with_reservation.refresh_from_db()
    assert (with_reservation.on_hand, with_reservation.reserved) == (2, 2)
    assert Stock.objects.get(product=without_stock_row).available_quantity == 0
    assert set(Product.objects.out_of_stock()) == {with_reservation.product, without_stock_row}


def test_deactivation_is_announced_with_the_changed_skus(django_capture_on_commit_callbacks):
    active, already_inactive = ProductFactory(), ProductFactory(is_active=False)
    received = []

    def receiver(sender, skus, is_active, **kwargs):
        received.append((sorted(skus), is_active))

    products_activation_changed.connect(receiver, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            changed = services.set_products_active(
                [active.pk, already_inactive.pk], is_active=False
            )
    finally:
        products_activation_changed.disconnect(receiver)
    assert changed == 1
    assert received == [([active.sku], False)]


def test_category_path_is_created_once_as_a_tree():
    leaf = services.get_or_create_category_path(["Home", "Candles & Lights"])
    again = services.get_or_create_category_path(["Home", "Candles & Lights"])
    assert leaf == again
    assert leaf.path == "home/candles-lights"
    assert leaf.parent.path == "home" and leaf.parent.parent is None


def test_upsert_products_creates_then_updates_by_sku():
    record = services.ProductRecord(
        sku="85123A", title="White Hanging Heart T-Light Holder", price=Decimal("2.55"),
        category_path=("Home", "Candles"),
    )  # fmt: skip
    assert services.upsert_products([record]) == (1, 0)
    updated = services.ProductRecord(sku="85123A", title="Renamed", price=Decimal("2.95"))
    assert services.upsert_products([updated]) == (0, 1)
    product = Product.objects.get(sku="85123A")
    assert (product.title, product.price, product.category) == ("Renamed", Decimal("2.95"), None)
