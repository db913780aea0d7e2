"""merch.admin.catalog: product and stock screens, filters, actions, list editing, CSV import."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from merch.models import Product, Stock
from merch.signals import products_activation_changed, stock_changed
from tests.factories import CategoryFactory, ProductFactory, StockFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def announced():
    """What merch announced (after commit) during the test."""
    received = {"stock": [], "activation": []}

    def on_stock(sender, changes, **kwargs):
        received["stock"].extend(changes)

    def on_activation(sender, skus, is_active, **kwargs):
        received["activation"].append((sorted(skus), is_active))

    stock_changed.connect(on_stock, weak=False)
    products_activation_changed.connect(on_activation, weak=False)
    yield received
    stock_changed.disconnect(on_stock)
    products_activation_changed.disconnect(on_activation)


def skus_listed(response) -> set[str]:
    return {obj.sku for obj in response.context["cl"].result_list}


def test_non_staff_users_are_sent_to_the_login_page(client, django_user_model):
    user = django_user_model.objects.create_user("shopper", password="pw-123456")
    client.force_login(user)
    response = client.get("/admin/merch/product/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_product_list_searches_by_sku_and_title(admin_client):
    ProductFactory(sku="85123A", title="White Hanging Heart")
    ProductFactory(sku="22423", title="Regency Cakestand")
    assert skus_listed(admin_client.get("/admin/merch/product/", {"q": "85123"})) == {"85123A"}
    assert skus_listed(admin_client.get("/admin/merch/product/", {"q": "cakestand"})) == {"22423"}


def test_category_filter_includes_descendants(admin_client):
    home = CategoryFactory(name="Home", slug="home", path="home")
    candles = CategoryFactory(name="Candles", slug="candles", path="home/candles", parent=home)
    garden = CategoryFactory(name="Garden", slug="garden", path="garden")
    ProductFactory(sku="C1", category=candles)
    ProductFactory(sku="G1", category=garden)
    response = admin_client.get("/admin/merch/product/", {"category": "home"})
    assert skus_listed(response) == {"C1"}


def test_stock_and_new_filters(admin_client):
    StockFactory(product=ProductFactory(sku="IN"), on_hand=5)
    StockFactory(product=ProductFactory(sku="OUT"), on_hand=2, reserved=2)
    ProductFactory(sku="NOROW")
    ProductFactory(sku="NEW", launched_at=timezone.now())
    assert skus_listed(admin_client.get("/admin/merch/product/", {"stock": "in"})) == {"IN"}
    assert skus_listed(admin_client.get("/admin/merch/product/", {"stock": "out"})) == {
        "OUT", "NOROW", "NEW",
    }  # fmt: skip
    assert skus_listed(admin_client.get("/admin/merch/product/", {"new": "yes"})) == {"NEW"}


def test_product_list_shows_available_quantity_without_a_query_per_row(
    admin_client, django_assert_max_num_queries
):
    for n in range(30):
        StockFactory(product=ProductFactory(sku=f"S{n}"), on_hand=n + 2, reserved=1)
    with django_assert_max_num_queries(12):
        response = admin_client.get("/admin/merch/product/")
    assert response.status_code == 200
    row = next(p for p in response.context["cl"].result_list if p.sku == "S3")
    assert row.available_quantity_db == 4


def test_deactivate_action_announces_the_change(
    admin_client, announced, django_capture_on_commit_callbacks
):
    products = [ProductFactory(), ProductFactory()]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/merch/product/",
            {"action": "deactivate", "_selected_action": [p.pk for p in products]},
            follow=True,
        )
    assert "Deactivated 2 product(s)" in response.content.decode()
    assert not Product.objects.filter(is_active=True).exists()
    assert announced["activation"] == [(sorted(p.sku for p in products), False)]


def test_mark_out_of_stock_action_announces_each_product(
    admin_client, announced, django_capture_on_commit_callbacks
):
    stocks = [StockFactory(on_hand=9), StockFactory(on_hand=4)]
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/merch/product/",
            {"action": "mark_out_of_stock", "_selected_action": [s.product_id for s in stocks]},
        )
    assert all(not s.is_available for s in Stock.objects.all())
    assert {c.sku for c in announced["stock"]} == {s.product.sku for s in stocks}


def test_stock_edited_from_the_inventory_list_announces_the_change(
    admin_client, announced, django_capture_on_commit_callbacks
):
    stock = StockFactory(on_hand=5)
    data = {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000", "form-0-id": str(stock.pk), "form-0-on_hand": "0",
        "form-0-reserved": "0", "_save": "Save",
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/merch/stock/", data)
    assert response.status_code == 302
    stock.refresh_from_db()
    assert stock.on_hand == 0
    [change] = announced["stock"]
    assert change.sku == stock.product.sku and change.availability_flipped


def test_stock_edited_on_the_product_page_goes_through_the_service(
    admin_client, announced, django_capture_on_commit_callbacks
):
    product = ProductFactory()
    stock = StockFactory(product=product, on_hand=3)
    data = {
        "sku": product.sku, "title": product.title, "description": "", "category": product.category_id,
        "brand": "", "price": "4.95", "currency": "GBP", "attributes": "{}", "image_url": "",
        "is_active": "on", "launched_at_0": "2025-01-01", "launched_at_1": "00:00:00",
        "stock-TOTAL_FORMS": "1", "stock-INITIAL_FORMS": "1", "stock-MIN_NUM_FORMS": "0",
        "stock-MAX_NUM_FORMS": "1", "stock-0-id": str(stock.pk), "stock-0-product": str(product.pk),
        "stock-0-on_hand": "12", "stock-0-reserved": "2",
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/merch/product/{product.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (12, 2)
    assert [c.available_quantity for c in announced["stock"]] == [10]


def test_stock_csv_import_through_the_admin_confirms_then_writes(
    admin_client, announced, django_capture_on_commit_callbacks
):
    stock = StockFactory(product=ProductFactory(sku="85123A"), on_hand=5)
    upload = SimpleUploadedFile("stock.csv", b"sku,on_hand,reserved\n85123A,0,0\n", "text/csv")
    response = admin_client.post(
        "/admin/merch/stock/import/", {"import_file": upload, "format": "0", "resource": "0"}
    )
    assert response.status_code == 200
    confirm = response.context["confirm_form"]
    stock.refresh_from_db()
    assert stock.on_hand == 5 and announced["stock"] == []  # the preview wrote nothing
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/merch/stock/process_import/", {**confirm.initial, "resource": "0"}
        )
    assert response.status_code == 302
    stock.refresh_from_db()
    assert stock.on_hand == 0
    assert [c.sku for c in announced["stock"]] == ["85123A"]


def test_stock_csv_export_lists_every_product(admin_client):
    StockFactory(product=ProductFactory(sku="85123A"), on_hand=7, reserved=2)
    response = admin_client.post("/admin/merch/stock/export/", {"format": "0", "resource": "0",
                                 "stockresource_sku": "on", "stockresource_on_hand": "on",
                                 "stockresource_reserved": "on", "stockresource_available": "on",
                                 "stockresource_title": "on"})  # fmt: skip
    assert response.status_code == 200
    body = response.content.decode()
    assert "85123A" in body and ",7,2,5" in body
