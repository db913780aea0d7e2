"""manage.py import_catalog: CSV and JSON Lines, column maps, per-row reasons, idempotent reruns."""

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from merch.models import Product

pytestmark = pytest.mark.django_db

CSV = """code,name,cost,dept,colour,active,notes
85123A,White Hanging Heart T-Light Holder,2.55,Home > Candles,white,true,ignored
22423,Regency Cakestand 3 Tier,12.75,Kitchen > Baking,,yes,
BAD 1,Spaced SKU,1.00,Home,,true,
84029E,Red Woolly Hottie White Heart,-4,Home,red,true,
21730,Glass Star Frosted T-Light Holder,4.25,,,false,
"""
CSV_MAP = ["--map", "code=sku", "--map", "name=title", "--map", "cost=price",
           "--map", "dept=category_path", "--map", "colour=attributes.colour"]  # fmt: skip


def run(*args) -> str:
    out = StringIO()
    call_command("import_catalog", *map(str, args), stdout=out)
    return out.getvalue()


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text(CSV)
    return path


def test_csv_with_a_column_map_imports_the_valid_rows_and_says_why_others_failed(csv_file):
    out = run(csv_file, *CSV_MAP)
    assert "5 rows; created 3, updated 0, unchanged 0, rejected 2" in out
    assert "rejected line 4 (sku 'BAD 1'): sku: may not contain spaces or slashes" in out
    assert "rejected line 5 (sku '84029E'): price: must be a decimal" in out
    holder = Product.objects.select_related("category").get(sku="85123A")
    assert (holder.title, holder.price) == ("White Hanging Heart T-Light Holder", Decimal("2.55"))
    assert holder.category.path == "home/candles" and holder.attributes == {"colour": "white"}
    assert Product.objects.get(sku="22423").attributes == {}, "an empty cell is not given"
    star = Product.objects.get(sku="21730")
    assert not star.is_active and star.category is None


def test_rerunning_a_file_is_idempotent(csv_file):
    run(csv_file, *CSV_MAP)
    updated_at = dict(Product.objects.values_list("sku", "updated_at"))
    out = run(csv_file, *CSV_MAP)
    assert "created 0, updated 0, unchanged 3, rejected 2" in out
    assert dict(Product.objects.values_list("sku", "updated_at")) == updated_at
    csv_file.write_text(CSV.replace("12.75", "13.00"))
    assert "created 0, updated 1, unchanged 2" in run(csv_file, *CSV_MAP)


def test_json_lines_with_a_map_and_unreadable_lines(tmp_path):
    path = tmp_path / "feed.jsonl"
    rows = [
        {"id": "J1", "name": "Lantern", "price": 3.5, "category_path": ["Home", "Lights"],
         "attributes": {"material": "glass"}, "launched_at": "2024-01-01T00:00:00Z"},
        {"id": "J2", "name": "Tin", "price": "1.20", "currency": "EUR", "active": False},
    ]  # fmt: skip
    lines = [json.dumps(rows[0]), "", "{not json", "[1, 2]", json.dumps(rows[1])]
    path.write_text("\n".join(lines) + "\n")
    out = run(path, "--map", "id=sku", "--map", "name=title")
    assert "4 rows; created 2, updated 0, unchanged 0, rejected 2" in out
    assert "rejected line 3: is not valid JSON" in out
    assert "rejected line 4: is not a JSON object" in out
    lantern = Product.objects.get(sku="J1")
    assert lantern.attributes == {"material": "glass"} and lantern.launched_at.year == 2024
    tin = Product.objects.get(sku="J2")
    assert (tin.currency, tin.is_active) == ("EUR", False)
    assert "created 0, updated 0, unchanged 2" in run(
        path, "--map", "id=sku", "--map", "name=title"
    )


def test_a_sku_repeated_across_batches_is_rejected_and_reasons_are_capped(tmp_path):
    path = tmp_path / "dupes.csv"
    path.write_text("sku,title,price\n" + "".join(f"D{n % 3},Thing {n},1.00\n" for n in range(8)))
    out = run(path, "--batch-size", 2, "--show-rejected", 2)
    assert "created 3, updated 0, unchanged 0, rejected 5" in out
    assert out.count("repeats an earlier item") == 2
    assert "... and 3 more rejected rows" in out
    assert Product.objects.get(sku="D0").title == "Thing 0", "the first row wins"


def test_a_csv_without_a_required_column_is_refused_before_anything_is_written(csv_file):
    with pytest.raises(CommandError, match="no column for sku, title, price"):
        run(csv_file)
    assert not Product.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--map", "code=colour"], "Unknown field 'colour'"),
        (["--map", "code"], "--map takes COLUMN=FIELD"),
        (["--map", "code=sku", "--map", "name=sku"], "Two columns are mapped to 'sku'"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_bad_options_are_refused(csv_file, args, message):
    with pytest.raises(CommandError, match=message):
        run(csv_file, *args)


def test_the_format_comes_from_the_extension_or_the_option(tmp_path):
    path = tmp_path / "feed.txt"
    path.write_text('{"sku": "T1", "title": "T", "price": "1"}\n')
    with pytest.raises(CommandError, match="pass --format"):
        run(path)
    assert "created 1" in run(path, "--format", "jsonl")
