"""merch.resources: CSV round trips, row errors, dry runs that write nothing."""

from decimal import Decimal

import pytest
import tablib

from merch.models import Category, Product, Stock
from merch.resources import ProductResource, StockResource
from merch.signals import stock_changed
from tests.factories import CategoryFactory, ProductFactory, StockFactory

pytestmark = pytest.mark.django_db


def csv_dataset(text: str) -> tablib.Dataset:
    return tablib.Dataset().load(text, format="csv")


@pytest.fixture
def stock_announcements():
    received = []

    def receiver(sender, changes, **kwargs):
        received.extend(changes)

    stock_changed.connect(receiver, weak=False)
    yield received
    stock_changed.disconnect(receiver)


def test_stock_export_then_import_round_trips():
    StockFactory(product=ProductFactory(sku="A1"), on_hand=7, reserved=2)
    exported = StockResource().export()
    row = exported.dict[0]
    assert (row["sku"], row["on_hand"], row["reserved"], row["available"]) == ("A1", "7", "2", "5")
    Stock.objects.update(on_hand=0)
    result = StockResource().import_data(csv_dataset(exported.csv), raise_errors=True)
    assert not result.has_errors()
    assert Stock.objects.get().on_hand == 7


def test_stock_import_of_an_unknown_sku_is_a_row_error_and_keeps_the_valid_rows():
    StockFactory(product=ProductFactory(sku="A1"), on_hand=7)
    result = StockResource().import_data(
        csv_dataset("sku,on_hand,reserved\nNOPE,1,0\nA1,3,0\n"), use_transactions=False
    )
    assert result.has_validation_errors() or result.has_errors()
    messages = [str(row.error) for row in result.invalid_rows] + [
        str(error.error) for row in result.rows for error in row.errors
    ]
    assert any("Unknown SKU 'NOPE'" in message for message in messages), messages
    assert Stock.objects.get(product__sku="A1").on_hand == 3


def test_negative_stock_is_a_row_error():
    StockFactory(product=ProductFactory(sku="A1"), on_hand=7)
    result = StockResource().import_data(csv_dataset("sku,on_hand,reserved\nA1,-4,0\n"))
    assert result.has_validation_errors() or result.has_errors()
    assert Stock.objects.get().on_hand == 7


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_writes_nothing_and_announces_nothing(stock_announcements):
    StockFactory(product=ProductFactory(sku="A1"), on_hand=7)
    result = StockResource().import_data(
        csv_dataset("sku,on_hand,reserved\nA1,0,0\n"), dry_run=True, use_transactions=True
    )
    assert not result.has_errors()
    assert Stock.objects.get().on_hand == 7
    assert stock_announcements == []


@pytest.mark.django_db(transaction=True)
def test_a_real_stock_import_announces_after_commit(stock_announcements):
    StockFactory(product=ProductFactory(sku="A1"), on_hand=7)
    StockResource().import_data(
        csv_dataset("sku,on_hand,reserved\nA1,0,0\n"), use_transactions=True, raise_errors=True
    )
    assert [c.sku for c in stock_announcements] == ["A1"]


def test_product_import_creates_missing_categories_from_names():
    result = ProductResource().import_data(
        csv_dataset(
            "sku,title,category,price,currency,attributes,is_active\n"
            'N1,New lamp,Home > Candles & Lights,9.50,GBP,"{""colour"": ""red""}",1\n'
        ),
        raise_errors=True,
    )
    assert not result.has_errors()
    product = Product.objects.get(sku="N1")
    assert product.category.path == "home/candles-lights"
    assert product.category.parent.name == "Home"
    assert (product.price, product.attributes) == (Decimal("9.50"), {"colour": "red"})


def test_product_export_then_import_round_trips():
    parent = CategoryFactory(name="Home", slug="home", path="home")
    leaf = CategoryFactory(name="Candles", slug="candles", path="home/candles", parent=parent)
    ProductFactory(sku="A1", title="Lantern", category=leaf, attributes={"material": "metal"})
    exported = ProductResource().export()
    assert exported.dict[0]["category"] == "Home > Candles"
    Product.objects.update(title="changed")
    ProductResource().import_data(csv_dataset(exported.csv), raise_errors=True)
    product = Product.objects.get(sku="A1")
    assert (product.title, product.category, product.attributes) == (
        "Lantern", leaf, {"material": "metal"},
    )  # fmt: skip
    assert Category.objects.count() == 2


def test_product_import_with_a_bad_price_is_a_row_error():
    result = ProductResource().import_data(
        csv_dataset("sku,title,category,price,currency\nB1,Bad,,-3,GBP\n")
    )
    assert result.has_validation_errors() or result.has_errors()
    assert not Product.objects.filter(sku="B1").exists()
