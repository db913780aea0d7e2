"""merch.services.catalog: stock changes, bulk levels, activation, categories, product upserts."""

from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from merch.models import Product, Stock
from merch.services.catalog import (
    ProductRecord,
    StockLevel,
    deactivate_product,
    get_or_create_category_path,
    mark_out_of_stock,
    set_products_active,
    set_stock,
    set_stock_levels,
    update_stock_levels,
    upsert_products,
)
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
        set_stock(stock.product, on_hand=0)
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
        set_stock(stock.product, on_hand=0)
        raise RuntimeError("checkout failed")
    assert received_stock_changes == []
    stock.refresh_from_db()
    assert stock.on_hand == 5


@pytest.mark.django_db(transaction=True)
def test_committed_stock_change_is_announced_once(received_stock_changes):
    stock = StockFactory(on_hand=5, reserved=1)
    set_stock(stock.product, reserved=5)
    [change] = received_stock_changes
    assert change.available_quantity == 0 and change.was_available


def test_unchanged_stock_announces_nothing(
    received_stock_changes, django_capture_on_commit_callbacks
):
    stock = StockFactory(on_hand=5)
    with django_capture_on_commit_callbacks(execute=True):
        set_stock(stock.product, on_hand=5)
    assert received_stock_changes == []


def test_negative_stock_is_refused():
    stock = StockFactory(on_hand=5)
    with pytest.raises(ValueError, match="negative"):
        set_stock(stock.product, on_hand=-1)


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
        set_stock_levels(
            [
                StockLevel(kept.product.sku, 3),
                StockLevel(changed.product.sku, 0),
                StockLevel(fresh.sku, 9),
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
        set_stock_levels([StockLevel(stock.product.sku, 0), StockLevel("NOPE", 1)])
    stock.refresh_from_db()
    assert stock.on_hand == 3


def test_mark_out_of_stock_keeps_reservations_and_leaves_nothing_to_sell():
    with_reservation = StockFactory(on_hand=10, reserved=2)
    without_stock_row = ProductFactory()
    mark_out_of_stock([with_reservation.product_id, without_stock_row.pk])
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
            changed = set_products_active([active.pk, already_inactive.pk], is_active=False)
    finally:
        products_activation_changed.disconnect(receiver)
    assert changed == 1
    assert received == [([active.sku], False)]


def test_category_path_is_created_once_as_a_tree():
    leaf = get_or_create_category_path(["Home", "Candles & Lights"])
    again = get_or_create_category_path(["Home", "Candles & Lights"])
    assert leaf == again
    assert leaf.path == "home/candles-lights"
    assert leaf.parent.path == "home" and leaf.parent.parent is None


def test_upsert_products_creates_then_updates_by_sku():
    record = ProductRecord(
        sku="85123A", title="White Hanging Heart T-Light Holder", price=Decimal("2.55"),
        category_path=("Home", "Candles"),
    )  # fmt: skip
    assert upsert_products([record]).created == ["85123A"]
    updated = ProductRecord(sku="85123A", title="Renamed", price=Decimal("2.95"))
    assert upsert_products([updated]).updated == ["85123A"]
    product = Product.objects.get(sku="85123A")
    assert (product.title, product.price, product.category) == ("Renamed", Decimal("2.95"), None)


@pytest.fixture
def received_product_signals():
    """(signal name, sorted skus, is_active or None) in the order they were sent."""
    from merch.signals import products_changed

    received = []

    def on_changed(sender, skus, **kwargs):
        received.append(("changed", sorted(skus), None))

    def on_activation(sender, skus, is_active, **kwargs):
        received.append(("activation", sorted(skus), is_active))

    products_changed.connect(on_changed, weak=False)
    products_activation_changed.connect(on_activation, weak=False)
    yield received
    products_changed.disconnect(on_changed)
    products_activation_changed.disconnect(on_activation)


def test_upserting_an_identical_product_changes_nothing_and_announces_nothing(
    received_product_signals, django_capture_on_commit_callbacks
):
    record = ProductRecord(
        sku="85123A", title="Holder", price=Decimal("2.55"), category_path=("Home", "Candles"),
        attributes={"colour": "white"},
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        assert upsert_products([record]).created == ["85123A"]
    assert received_product_signals == [
        ("activation", ["85123A"], True),  # a new product: readers learn it has no stock yet
        ("changed", ["85123A"], None),
    ]
    stored = Product.objects.get(sku="85123A")
    received_product_signals.clear()
    with django_capture_on_commit_callbacks(execute=True):
        result = upsert_products([record])
    assert (result.created, result.updated, result.unchanged) == ([], [], ["85123A"])
    assert received_product_signals == []
    again = Product.objects.get(sku="85123A")
    assert (again.updated_at, again.launched_at) == (stored.updated_at, stored.launched_at)


def test_upsert_keeps_the_stored_launch_time_when_none_is_given():
    launched = timezone.now() - timezone.timedelta(days=30)
    upsert_products([ProductRecord(sku="S1", title="A", price=Decimal(1), launched_at=launched)])
    upsert_products([ProductRecord(sku="S1", title="B", price=Decimal(1))])
    assert Product.objects.get(sku="S1").launched_at == launched


def test_upsert_announces_activation_flips_and_changes(
    received_product_signals, django_capture_on_commit_callbacks
):
    on, off = ProductFactory(sku="ON", is_active=True), ProductFactory(sku="OFF", is_active=False)
    records = [
        ProductRecord(sku="ON", title=on.title, price=on.price, is_active=False),
        ProductRecord(sku="OFF", title=off.title, price=off.price, is_active=True),
        ProductRecord(sku="NEW", title="New", price=Decimal(1), is_active=False),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        result = upsert_products(records)
    assert (sorted(result.updated), result.created) == (["OFF", "ON"], ["NEW"])
    assert received_product_signals == [
        ("activation", ["NEW", "ON"], False),
        ("activation", ["OFF"], True),
        ("changed", ["NEW", "OFF", "ON"], None),
    ]


def test_update_stock_levels_reports_unknown_skus_instead_of_failing():
    kept, changed = StockFactory(on_hand=3, reserved=1), StockFactory(on_hand=3, reserved=2)
    result = update_stock_levels(
        [
            StockLevel(kept.product.sku, 3, 1),
            StockLevel(changed.product.sku, 9, reserved=None),  # keeps its reservation
            StockLevel("NOPE", 1),
        ]
    )
    assert (result.updated, result.unchanged, result.unknown) == (
        [changed.product.sku],
        [kept.product.sku],
        ["NOPE"],
    )
    changed.refresh_from_db()
    assert (changed.on_hand, changed.reserved) == (9, 2)


def test_deactivate_product_by_sku():
    product = ProductFactory(sku="GONE")
    assert deactivate_product("GONE").is_active is False
    assert deactivate_product("GONE").is_active is False, "idempotent"
    with pytest.raises(Product.DoesNotExist):
        deactivate_product("NEVER")
    product.refresh_from_db()
    assert not product.is_active
