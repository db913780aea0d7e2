"""merch.product_input: one product dict -> ProductRecord, or a sentence naming what is wrong."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from merch.product_input import InvalidProduct, parse_product, validate_products


def product(**fields):
    return {
        "sku": "85123A",
        "title": "White Hanging Heart T-Light Holder",
        "price": "2.55",
        **fields,
    }


def reason(**fields) -> str:
    with pytest.raises(InvalidProduct) as error:
        parse_product(product(**fields))
    return str(error.value)


def test_a_full_product_becomes_a_record():
    record = parse_product(
        product(
            description="Heart-shaped holder",
            category_path=["Home", "Candles & Lights"],
            brand="Aisle Home",
            price=2.5,
            currency="EUR",
            image_url="https://cdn.example.com/85123A.jpg",
            attributes={"colour": "white", "sizes": ["S", "M"], "fragile": True, "weight_g": 120},
            launched_at="2024-10-01T09:00:00+02:00",
            active=False,
        )
    )
    assert record.sku == "85123A" and record.price == Decimal("2.50")
    assert record.category_path == ("Home", "Candles & Lights")
    assert (record.brand, record.currency, record.is_active) == ("Aisle Home", "EUR", False)
    assert record.attributes["sizes"] == ["S", "M"]
    assert record.launched_at == datetime(2024, 10, 1, 7, tzinfo=UTC)


def test_defaults_of_optional_fields(settings):
    settings.AISLE = {**settings.AISLE, "DEFAULT_CURRENCY": "USD"}
    record = parse_product(product(description=None, brand=None, image_url=None, attributes=None))
    assert (record.currency, record.is_active, record.launched_at) == ("USD", True, None)
    assert (record.description, record.brand, record.image_url) == ("", "", "")
    assert record.category_path == () and record.attributes == {}


def test_category_path_may_be_one_string_with_separators():
    assert parse_product(product(category_path="Home > Candles")).category_path == (
        "Home",
        "Candles",
    )
    assert parse_product(product(category_path="")).category_path == ()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"sku": "has space"}, "sku: may not contain spaces or slashes"),
        ({"sku": "a/b"}, "sku: may not contain spaces or slashes"),
        ({"sku": "ABC\n"}, "sku: may not contain spaces or slashes"),
        ({"sku": "X" * 33}, "sku: Ensure this field has no more than 32 characters."),
        ({"title": "   "}, "title: must not be blank"),
        ({"title": "t" * 256}, "title: Ensure this field has no more than 255 characters."),
        ({"price": "-1"}, "price: must be a decimal from 0 to 99999999.99 with at most 2 decimals"),
        ({"price": "2.555"}, "price: must be a decimal"),
        ({"price": "100000000"}, "price: must be a decimal"),
        ({"price": "cheap"}, "price: must be a decimal"),
        ({"price": True}, "price: must be a decimal"),
        ({"price": "NaN"}, "price: must be a decimal"),
        ({"currency": "gbp"}, "currency: must be a 3-letter ISO 4217 code like GBP"),
        ({"image_url": "ftp://example.com/a.jpg"}, "image_url: must be an http or https URL"),
        ({"image_url": "javascript:alert(1)"}, "image_url: must be an http or https URL"),
        ({"attributes": {"size": {"w": 1}}}, "attributes: 'size' must be a string"),
        ({"attributes": [1, 2]}, "attributes: must be a JSON object"),
        ({"attributes": {f"k{n}": n for n in range(31)}}, "attributes: has at most 30 keys"),
        ({"attributes": {"k" * 65: 1}}, "attributes: keys have 1 to 64 characters"),
        ({"attributes": {"tags": ["a"] * 21}}, "attributes: 'tags' must be a list of at most 20"),
        ({"category_path": ["A", "B", "C", "D", "E"]}, "category_path: has at most 4 levels"),
        ({"category_path": ["Home", " "]}, "category_path: a category name cannot be blank"),
        ({"category_path": ["x" * 121]}, "category_path: each name has at most 120 characters"),
        ({"category_path": 7}, "category_path: must be a list of category names"),
        ({"launched_at": "last tuesday"}, "launched_at: Datetime has wrong format."),
        ({"active": "maybe"}, "active: Must be a valid boolean."),
    ],
)
def test_each_bad_field_is_named_in_a_plain_sentence(fields, expected):
    assert reason(**fields).startswith(expected)


def test_missing_required_fields_are_all_named():
    with pytest.raises(InvalidProduct) as error:
        parse_product({"description": "no identity"})
    message = str(error.value)
    assert all(f"{name}: This field is required." in message for name in ("sku", "title", "price"))


def test_a_batch_keeps_the_valid_products_and_says_why_others_failed():
    items = [
        product(sku="A1"),
        "not an object",
        product(sku="A2", price="-3"),
        product(sku="A1", title="Again"),
        product(sku="A3"),
    ]
    records, rejected = validate_products(items)
    assert [r.sku for r in records] == ["A1", "A3"]
    assert [(r.index, r.sku) for r in rejected] == [(1, ""), (2, "A2"), (3, "A1")]
    assert rejected[0].reason == "is not a JSON object"
    assert rejected[1].reason.startswith("price:")
    assert rejected[2].reason == "sku: repeats an earlier item with this SKU"


def test_skus_seen_in_earlier_batches_count_as_repeats():
    seen: set[str] = set()
    validate_products([product(sku="A1")], seen)
    records, rejected = validate_products([product(sku="A1"), product(sku="A2")], seen)
    assert [r.sku for r in records] == ["A2"] and rejected[0].sku == "A1"


def test_stock_levels_are_validated_one_by_one():
    from merch.product_input import validate_stock_levels

    levels, rejected = validate_stock_levels(
        [{"sku": "A", "on_hand": 3}, {"sku": "A", "on_hand": 1}, {"sku": "B", "on_hand": "x"}, 5]
    )
    assert [(index, level.sku, level.reserved) for index, level in levels] == [(0, "A", None)]
    assert [(r.index, r.reason) for r in rejected] == [
        (1, "sku: repeats an earlier item with this SKU"),
        (2, "on_hand: A valid integer is required."),
        (3, "is not a JSON object"),
    ]
