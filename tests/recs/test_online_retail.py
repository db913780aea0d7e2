"""recs.datasets.online_retail and the import_online_retail command."""

import gzip
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command

from merch.models import Category, Product, Stock
from merch.selectors.catalog import unavailable_skus
from recs.datasets.online_retail import (
    attributes_for,
    category_for,
    non_merchandise_reason,
    parse_online_retail,
    stock_level_for,
    title_case,
)
from recs.features import get_online
from recs.models import DatasetImport, Event
from tests.factories import ProductFactory

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
ROWS = [
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
    "536366,85123a,WHITE HANGING HEART T-LIGHT HOLDER,2,2011-07-01 10:00:00,2.95,13047.0,Germany",
    "536367,85123A,WHITE HANGING HEART T-LIGHT HOLDER,1,2011-07-02 10:00:00,2.55,,United Kingdom",
    "C536379,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-1,2010-12-01 09:41:00,2.55,14527.0,United Kingdom",
    "536370,POST,POSTAGE,3,2010-12-01 08:45:00,18.00,12583.0,France",
    "536371,GIFT_0001_20,Dotcomgiftshop Gift Voucher £20.00,1,2010-12-01 09:00:00,17.02,,United Kingdom",
    "536372,22423,REGENCY CAKESTAND 3 TIER,0,2010-12-01 09:00:00,12.75,17850.0,United Kingdom",
    "536373,22423,REGENCY CAKESTAND 3 TIER,2,2010-12-01 09:01:00,0.00,17850.0,United Kingdom",
    "536374,21730,,5,2010-12-01 09:02:00,4.25,17850.0,United Kingdom",
    "536375,22633,HAND WARMER UNION JACK SET OF 6,6,2010-12-01 09:03:00,1.85,17850.0,United Kingdom",
]  # fmt: skip


@pytest.fixture
def retail_file(tmp_path):
    path = tmp_path / "retail.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(HEADER + "\n".join(ROWS) + "\n")
    return path


def test_every_row_is_counted_under_exactly_one_rule(retail_file):
    summary = parse_online_retail(retail_file).summary
    assert summary.rows_read == 10
    assert dict(summary.skipped) == {
        "cancellation": 1,
        "non_product_code": 2,
        "non_positive_quantity": 1,
        "non_positive_price": 1,
        "sale_without_customer_no_event": 1,
        "product_without_description": 1,
    }
    assert summary.sales == 5
    assert summary.products == 2 and summary.purchase_events == 3


def test_products_take_the_most_frequent_title_and_price_and_first_sale(retail_file):
    products = {p.sku: p for p in parse_online_retail(retail_file).products}
    assert set(products) == {"85123A", "22633"}
    holder = products["85123A"]
    assert holder.title == "White Hanging Heart T-Light Holder"
    assert holder.price == Decimal("2.55")
    assert holder.category_path == ("Home", "Candles & Lights")
    assert holder.launched_at == datetime(2010, 12, 1, 8, 26, tzinfo=UTC)
    assert products["22633"].attributes == {"pack_size": 6}


def test_uk_local_time_becomes_utc_in_summer_and_winter(retail_file):
    events = {e.event_id: e for e in parse_online_retail(retail_file).events}
    assert events["uci-536365-2"].occurred_at == datetime(2010, 12, 1, 8, 26, tzinfo=UTC)
    assert events["uci-536366-3"].occurred_at == datetime(2011, 7, 1, 9, 0, tzinfo=UTC)  # BST


def test_purchase_events_carry_customer_order_country_and_price(retail_file):
    event = next(e for e in parse_online_retail(retail_file).events if e.user_id == "13047")
    assert (event.event_type, event.product_sku, event.order_id, event.session_id) == (
        "purchase", "85123A", "536366", "uci-536366",
    )  # fmt: skip
    assert (event.country, event.quantity, event.price) == ("Germany", 2, Decimal("2.95"))


@pytest.mark.parametrize(
    ("description", "category"),
    [
        ("CHRISTMAS CANDLE HEART", ("Seasonal", "Christmas")),
        ("REGENCY CAKESTAND 3 TIER", ("Kitchen & Dining", "Baking")),
        ("JUMBO BAG RED RETROSPOT", ("Bags & Storage", "Bags")),
        ("PACK OF 72 RETROSPOT CAKE CASES", ("Kitchen & Dining", "Baking")),
        ("WHITE METAL LANTERN", ("Home", "Candles & Lights")),
        ("ASSORTED COLOUR BIRD ORNAMENT", ("Home", "Decorations")),
        ("LUNCH BOX I LOVE LONDON", ("Bags & Storage", "Lunch Boxes & Bottles")),
        ("ZZZ NOTHING MATCHES", ("Other", "Other")),
    ],
)
def test_category_rules_on_real_titles(description, category):
    assert category_for(description) == category


def test_attributes_from_description_words():
    assert attributes_for("SET OF 3 RED WOODEN HEARTS") == {
        "colour": "red", "material": "wood", "pack_size": 3,
    }  # fmt: skip


def test_title_case_keeps_hyphenated_words_and_codes():
    assert title_case("3D SHEET OF DOG STICKERS") == "3D Sheet Of Dog Stickers"


def test_stock_levels_are_deterministic_and_sometimes_sold_out():
    levels = [stock_level_for(f"{n:05d}") for n in range(2000)]
    assert levels == [stock_level_for(f"{n:05d}") for n in range(2000)]
    sold_out = sum(level.on_hand == 0 for level in levels) / len(levels)
    assert 0.02 < sold_out < 0.08
    assert all(level.reserved < max(level.on_hand, 1) for level in levels)


@pytest.mark.django_db
def test_the_command_imports_catalog_stock_and_events_through_the_stream(retail_file, capsys):
    call_command("import_online_retail", "--file", str(retail_file))
    out = capsys.readouterr().out
    assert "purchase events" in out and "POST (1)" in out
    assert set(Product.objects.values_list("sku", flat=True)) == {"85123A", "22633"}
    assert Category.objects.get(path="home/candles-lights").parent.path == "home"
    assert Stock.objects.count() == 2
    assert Event.objects.filter(event_type="purchase").count() == 3
    assert get_online("user", "17850", ["interaction_count"])["interaction_count"] == 2.0


@pytest.mark.django_db
def test_rerunning_is_skipped_and_forcing_creates_no_duplicates(retail_file, capsys):
    call_command("import_online_retail", "--file", str(retail_file))
    capsys.readouterr()
    call_command("import_online_retail", "--file", str(retail_file))
    rerun = capsys.readouterr().out
    assert rerun.startswith(f"Nothing imported: {retail_file.name} was already imported on ")
    summary = rerun.index("Summary of that earlier import:")
    assert summary < rerun.index("purchase events"), "the table is labelled as the earlier one"
    call_command("import_online_retail", "--file", str(retail_file), "--force")
    assert Event.objects.count() == 3 and Product.objects.count() == 2
    assert DatasetImport.objects.count() == 1
    assert get_online("user", "17850", ["interaction_count"])["interaction_count"] == 2.0


@pytest.mark.parametrize(
    ("title", "reason"),
    [
        ("3", "no_letters"),
        ("4", "no_letters"),
        ("?", "no_letters"),
        ("*usb Office Mirror Ball", "marked_not_a_product"),
        ("*Boombox Ipod Classic", "marked_not_a_product"),
        ("Next Day Carriage", "charge_or_service"),
        ("POSTAGE", "charge_or_service"),
        ("Dotcom  Postage", "charge_or_service"),
        ("Manual", "charge_or_service"),
        ("Discount", "charge_or_service"),
        ("SAMPLES", "charge_or_service"),
        ("Adjust bad debt", "charge_or_service"),
        ("Bank Charges", "charge_or_service"),
        ("AMAZON FEE", "charge_or_service"),
        ("CRUK Commission", "charge_or_service"),
        ("Dotcomgiftshop Gift Voucher £100.00", "charge_or_service"),
        # Products that merely hold such a word, or start with a digit, stay on sale.
        ("French Carriage Lantern", ""),
        ("Bank Account Greeting Card", ""),
        ("Piggy Bank Retrospot", ""),
        ("3 Traditional Biscuit Cutters Set", ""),
        ("4 Purple Flock Dinner Candles", ""),
        ("White Hanging Heart T-Light Holder", ""),
    ],
)
def test_non_merchandise_titles_are_told_apart_from_products(title, reason):
    assert non_merchandise_reason(title) == reason


NON_MERCHANDISE_ROWS = [
    "536380,20954,*USB Office Mirror Ball,1,2010-12-17 14:54:00,8.47,17850.0,United Kingdom",
    "536381,23444,Next Day Carriage,1,2011-06-01 10:00:00,15.00,13047.0,United Kingdom",
]


@pytest.fixture
def retail_file_with_charges(tmp_path):
    path = tmp_path / "retail-charges.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(HEADER + "\n".join([*ROWS, *NON_MERCHANDISE_ROWS]) + "\n")
    return path


def test_non_merchandise_products_are_parsed_inactive_and_listed(retail_file_with_charges):
    parsed = parse_online_retail(retail_file_with_charges)
    active = {p.sku: p.is_active for p in parsed.products}
    assert active == {"85123A": True, "22633": True, "20954": False, "23444": False}
    assert parsed.summary.as_dict()["non_merchandise_products"] == {
        "20954": {"reason": "marked_not_a_product", "title": "*usb Office Mirror Ball"},
        "23444": {"reason": "charge_or_service", "title": "Next Day Carriage"},
    }
    assert {e.product_sku for e in parsed.events} >= {"20954", "23444"}, "history is kept"


@pytest.mark.django_db
def test_the_import_leaves_non_merchandise_off_sale_and_unserved(retail_file_with_charges, capsys):
    call_command("import_online_retail", "--file", str(retail_file_with_charges))
    assert "inactive, not merchandise: 20954 '*usb Office Mirror Ball'" in capsys.readouterr().out
    assert set(Product.objects.filter(is_active=False).values_list("sku", flat=True)) == {
        "20954", "23444",
    }  # fmt: skip
    assert {"20954", "23444"} <= unavailable_skus(), "the engine never serves them"


@pytest.mark.django_db
def test_a_catalog_imported_before_the_rule_is_corrected_by_a_rerun(retail_file, capsys):
    call_command("import_online_retail", "--file", str(retail_file))
    ProductFactory(sku="23444", title="Next Day Carriage")  # as an earlier import made it
    capsys.readouterr()
    call_command("import_online_retail", "--file", str(retail_file))
    assert "This run made 1 product(s) inactive (not merchandise): 23444 'Next Day Carriage'" in (
        capsys.readouterr().out
    )
    assert not Product.objects.get(sku="23444").is_active
    assert Product.objects.get(sku="85123A").is_active
