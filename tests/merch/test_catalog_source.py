"""merch.catalog_source: Aisle's catalog following a shop's own product model (tests/host_shop)."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from aisle.conf import aisle_settings
from merch import catalog_source
from merch.catalog_source import load_source, sync_catalog, sync_products
from merch.models import Product, Stock
from merch.selectors.catalog import catalog_cards
from recs.serving import catalog
from recs.serving.types import Recommendations, RecommendedItem
from tests.host_shop.models import Category, ShopProduct

pytestmark = pytest.mark.django_db

SOURCE = {
    "model": "host_shop.ShopProduct",
    "fields": {
        "sku": "sku",
        "title": "name",
        "price": "price",
        "category_path": "category.slug_path",
        "brand": "brand",
        "image_url": "image_url",
        "description": "description",
        "is_active": "is_public",
        "url": "get_absolute_url",
    },
    "stock": "stock_on_hand",
}


def use_source(settings, **changes) -> None:
    settings.AISLE = {**settings.AISLE, "CATALOG_SOURCE": {**SOURCE, **changes}}


@pytest.fixture
def source(settings):
    """CATALOG_SOURCE set as the shop would, with its receivers connected as at startup."""
    use_source(settings)
    assert catalog_source.connect_receivers()
    yield
    catalog_source.disconnect_receivers()


@pytest.fixture
def host_products(source) -> list[ShopProduct]:
    """50 products in two departments; every fifth is not public, stock varies."""
    candles = Category.objects.create(name="Candles", slug_path="home/candles")
    baking = Category.objects.create(name="Baking", slug_path="kitchen/baking")
    catalog_source.disconnect_receivers()  # created as a fixture would load them: no signals
    products = ShopProduct.objects.bulk_create(
        ShopProduct(
            sku=f"HS{n:03}",
            name=f"Lantern {n}",
            price=Decimal(f"{n}.50"),
            category=candles if n % 2 else baking,
            brand="Aisle Home" if n % 3 else "",
            image_url=f"https://cdn.example.com/hs{n:03}.jpg",
            description=f"A lantern, number {n}",
            is_public=n % 5 != 0,
            stock_on_hand=n % 7,
        )
        for n in range(50)
    )
    catalog_source.connect_receivers()
    return products


def aisle_copy(sku: str) -> Product:
    return Product.objects.select_related("category", "stock").get(sku=sku)


def test_a_sync_creates_each_host_product_with_its_fields_category_stock_and_url(host_products):
    assert Product.objects.count() == 0, "bulk_create sent no signal: nothing synced yet"
    result = sync_catalog()
    assert (result.created, result.updated, result.unchanged, result.rejected) == (50, 0, 0, [])
    assert result.stock_updated == 50
    assert Product.objects.count() == 50 and Stock.objects.count() == 50
    for host in ShopProduct.objects.select_related("category"):
        product = aisle_copy(host.sku)
        assert (product.title, product.price, product.brand) == (host.name, host.price, host.brand)
        assert (product.image_url, product.description) == (host.image_url, host.description)
        assert product.category.path == host.category.slug_path
        assert product.is_active == host.is_public
        assert product.url == host.get_absolute_url()
        assert (product.stock.on_hand, product.stock.reserved) == (host.stock_on_hand, 0)
    assert aisle_copy("HS005").is_active is False
    assert aisle_copy("HS017").url == f"/shop/lantern-17-{host_products[17].pk}/"


def test_a_second_sync_changes_nothing(host_products):
    sync_catalog()
    stored = dict(Product.objects.values_list("sku", "updated_at"))
    stock = dict(Stock.objects.values_list("product__sku", "updated_at"))
    result = sync_catalog(batch_size=7)
    assert (result.created, result.updated, result.unchanged) == (0, 0, 50)
    assert (result.stock_updated, result.deactivated, result.rejected) == (0, 0, [])
    assert dict(Product.objects.values_list("sku", "updated_at")) == stored
    assert dict(Stock.objects.values_list("product__sku", "updated_at")) == stock


def test_the_host_catalog_is_read_a_page_at_a_time(host_products, monkeypatch):
    pages = []
    real = catalog_source._sync_batch
    monkeypatch.setattr(
        catalog_source,
        "_sync_batch",
        lambda source, page, *args: pages.append(len(page)) or real(source, page, *args),
    )
    assert sync_catalog(batch_size=7).created == 50
    assert pages == [7] * 7 + [1]


def first_sync_queries() -> int:
    """How many queries a first sync takes (rolled back afterwards)."""
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            sync_catalog()
        transaction.set_rollback(True)
    return len(queries)


def test_relations_of_the_field_map_are_selected_with_the_rows(host_products):
    assert load_source().related == ("category",)
    many = first_sync_queries()
    ShopProduct.objects.filter(pk__in=[p.pk for p in host_products[10:]]).delete()
    assert first_sync_queries() == many, "queries per batch, not per product (category.slug_path)"


def test_saving_a_host_product_updates_aisles_copy_on_commit(
    host_products, django_capture_on_commit_callbacks
):
    sync_catalog()
    host = ShopProduct.objects.get(sku="HS011")
    with django_capture_on_commit_callbacks(execute=True):
        host.name, host.price, host.stock_on_hand = "Tall lantern", Decimal("19.99"), 40
        host.save()
        assert aisle_copy("HS011").title == "Lantern 11", "not before the commit"
    product = aisle_copy("HS011")
    assert (product.title, product.price, product.stock.on_hand) == (
        "Tall lantern", Decimal("19.99"), 40,
    )  # fmt: skip
    assert product.url == f"/shop/tall-lantern-{host.pk}/"
    with django_capture_on_commit_callbacks(execute=True):
        new = ShopProduct.objects.create(sku="NEW1", name="New lamp", price=Decimal("5"))
    assert aisle_copy("NEW1").url == f"/shop/new-lamp-{new.pk}/"
    assert aisle_copy("NEW1").category is None


def test_connecting_again_does_not_sync_twice(host_products, django_capture_on_commit_callbacks):
    catalog_source.connect_receivers()
    with django_capture_on_commit_callbacks() as callbacks:
        ShopProduct.objects.get(sku="HS001").save()
    assert len(callbacks) == 1


def test_deleting_a_host_product_deactivates_aisles_copy(
    host_products, django_capture_on_commit_callbacks
):
    sync_catalog()
    with django_capture_on_commit_callbacks(execute=True):
        ShopProduct.objects.get(sku="HS012").delete()
        assert aisle_copy("HS012").is_active, "not before the commit"
    assert aisle_copy("HS012").is_active is False, "deactivated, and kept for its history"
    assert Product.objects.filter(is_active=True).count() == 39


def test_a_queryset_update_is_not_seen_until_synced(host_products):
    sync_catalog()
    ShopProduct.objects.filter(sku__in=["HS001", "HS002"]).update(price=Decimal("1.00"))
    assert aisle_copy("HS001").price == Decimal("1.50"), "update() sends no signal"
    result = sync_products(ShopProduct.objects.filter(sku__in=["HS001", "HS002"]))
    assert (result.created, result.updated, result.unchanged) == (0, 2, 0)
    assert aisle_copy("HS001").price == aisle_copy("HS002").price == Decimal("1.00")
    ShopProduct.objects.filter(sku="HS003").update(is_public=False, stock_on_hand=0)
    assert aisle_copy("HS003").is_active
    result = sync_catalog()
    assert (result.updated, result.unchanged, result.stock_updated) == (1, 49, 1)
    product = aisle_copy("HS003")
    assert product.is_active is False and product.stock.on_hand == 0


def test_prune_deactivates_products_the_host_no_longer_has(host_products):
    sync_catalog()
    catalog_source.disconnect_receivers()  # gone without a signal, like a raw DELETE
    ShopProduct.objects.filter(sku__in=["HS001", "HS002", "HS003"]).delete()
    ShopProduct.objects.filter(sku="HS004").update(price=Decimal("-1"))  # rejected, not gone
    assert sync_catalog().deactivated == 0, "without --prune nothing is deactivated"
    assert Product.objects.filter(sku__in=["HS001", "HS002", "HS003"], is_active=True).count() == 3
    result = sync_catalog(prune=True)
    assert result.deactivated == 3
    assert not Product.objects.filter(sku__in=["HS001", "HS002", "HS003"], is_active=True).exists()
    assert aisle_copy("HS004").is_active, "a host product that failed validation is still there"
    assert Product.objects.filter(is_active=True).count() == 40 - 3
    assert sync_catalog(prune=True).deactivated == 0


def test_prune_follows_the_shops_queryset(host_products, settings):
    sync_catalog()
    use_source(settings, queryset="tests.host_shop.aisle.home_products")
    result = sync_catalog(prune=True)
    assert (result.unchanged, result.deactivated) == (25, 20), "the public baking products"
    assert set(Product.objects.filter(is_active=True).values_list("category__path", flat=True)) == {
        "home/candles"
    }


def test_a_bad_row_is_rejected_with_a_reason_and_the_others_are_kept(host_products):
    sync_catalog()
    ShopProduct.objects.filter(sku="HS007").update(price=Decimal("-4.00"), name="Renamed")
    ShopProduct.objects.filter(sku="HS008").update(stock_on_hand=-2)
    ShopProduct.objects.create(sku="BAD SKU", name="Spaced", price=Decimal("1"))
    ShopProduct.objects.create(sku="X" * 40, name="Long", price=Decimal("1"))
    ShopProduct.objects.create(sku="NOURL", name="Bad link", price=Decimal("1"))
    ShopProduct.objects.filter(sku="HS009").update(image_url="/media/hs009.jpg")
    result = sync_catalog()
    reasons = {rejection.sku: rejection.reason for rejection in result.rejected}
    assert reasons["HS007"].startswith("price: must be a decimal from 0 to 99999999.99")
    assert reasons["HS008"] == "stock: Ensure this value is greater than or equal to 0."
    assert reasons["BAD SKU"] == "sku: may not contain spaces or slashes"
    assert reasons["X" * 40] == "sku: Ensure this field has no more than 32 characters."
    assert reasons["HS009"] == "image_url: must be an http or https URL"
    assert "NOURL" not in reasons
    assert len(result.rejected) == 5 and result.created == 1 and result.unchanged == 47
    kept = aisle_copy("HS007")
    assert (kept.title, kept.price) == ("Lantern 7", Decimal("7.50")), "the stored copy stays"


def test_a_failing_host_callable_rejects_only_its_product(host_products, settings):
    fields = {**SOURCE["fields"], "brand": "tests.host_shop.aisle.broken"}
    use_source(settings, fields=fields)
    result = sync_catalog()
    assert [(r.sku, r.reason) for r in result.rejected] == [
        ("HS013", "brand: could not be read (ValueError: the brand service is down)")
    ]
    assert result.created == 49 and aisle_copy("HS012").brand == "Aisle Home"


def test_a_callable_may_give_category_names(host_products, settings):
    fields = {**SOURCE["fields"], "category_path": "tests.host_shop.aisle.category_names"}
    use_source(settings, fields=fields)
    sync_catalog()
    category = aisle_copy("HS001").category
    assert (category.path, category.name, category.parent.name) == (
        "home/candles", "Candles", "Home",
    )  # fmt: skip


def test_a_url_must_be_a_path_or_an_http_url(host_products, monkeypatch):
    monkeypatch.setattr(
        ShopProduct, "get_absolute_url", lambda self: f"javascript:alert({self.pk})"
    )
    result = sync_catalog()
    assert result.created == 0 and len(result.rejected) == 50
    assert (
        result.rejected[0].reason == "url: must be a path starting with / or an http or https URL"
    )


# --- configuration


def catalog_errors() -> list[tuple[str, str]]:
    return [(e.id, e.msg) for e in run_checks() if e.id.startswith("merch.")]


def test_a_valid_source_passes_the_system_check(settings):
    use_source(settings)
    assert catalog_errors() == []
    settings.AISLE = {**settings.AISLE, "CATALOG_SOURCE": None}
    assert catalog_errors() == []


def test_an_unknown_model_fails_the_system_check(settings):
    use_source(settings, model="host_shop.Produce")
    assert catalog_errors() == [
        (
            "merch.E001",
            "CATALOG_SOURCE['model']: 'host_shop.Produce' is not an installed model "
            "(app_label.Model)",
        )
    ]
    with pytest.raises(ImproperlyConfigured, match=r"CATALOG_SOURCE\['model'\]"):
        load_source()


def test_unknown_fields_fail_the_system_check_naming_each_key(settings):
    fields = {
        **SOURCE["fields"],
        "title": "nme",
        "category_path": "category.slug_pth",
        "colour": "colour",
    }
    use_source(settings, fields=fields, stock="units")
    errors = catalog_errors()
    assert {check_id for check_id, _ in errors} == {"merch.E002"}
    messages = "\n".join(message for _, message in errors)
    assert (
        "CATALOG_SOURCE['fields']['title']: 'nme' is neither an attribute of "
        "host_shop.ShopProduct nor an importable callable"
    ) in messages
    assert (
        "CATALOG_SOURCE['fields']['category_path']: host_shop.Category has no attribute "
        "'slug_pth' (category.slug_pth)"
    ) in messages
    assert "CATALOG_SOURCE['fields']['colour']: Aisle has no product field 'colour'" in messages
    assert "CATALOG_SOURCE['stock']: 'units' is neither an attribute" in messages
    assert len(errors) == 4


def test_required_fields_and_unknown_keys_are_reported(settings):
    settings.AISLE = {
        **settings.AISLE,
        "CATALOG_SOURCE": {"model": "host_shop.ShopProduct", "fields": {"sku": "sku"}, "stok": 1},
    }
    messages = [message for _, message in catalog_errors()]
    assert "CATALOG_SOURCE['stok'] is not a key of CATALOG_SOURCE" in messages[0]
    assert any(m.startswith("CATALOG_SOURCE['fields']['title'] is missing") for m in messages)
    assert any(m.startswith("CATALOG_SOURCE['fields']['price'] is missing") for m in messages)


def test_sync_needs_the_setting(settings):
    settings.AISLE = {**settings.AISLE, "CATALOG_SOURCE": None}
    assert not catalog_source.connect_receivers()
    with pytest.raises(ImproperlyConfigured, match="CATALOG_SOURCE"):
        sync_catalog()
    with pytest.raises(CommandError, match=r"AISLE\['CATALOG_SOURCE'\] is not set"):
        call_command("sync_catalog")


# --- the command


def test_the_command_prints_counts_and_the_first_rejections(host_products):
    ShopProduct.objects.filter(sku__in=["HS020", "HS021"]).update(price=Decimal("-1"))
    out = StringIO()
    call_command("sync_catalog", "--batch-size", "9", "--show-rejected", "1", stdout=out)
    text = out.getvalue()
    assert "rejected pk " in text and "(sku 'HS020'): price: must be a decimal" in text
    assert "... and 1 more rejected products" in text
    assert "created 48, updated 0, unchanged 0, deactivated 0, stock updated 48, rejected 2" in text
    catalog_source.disconnect_receivers()
    ShopProduct.objects.filter(sku="HS031").delete()
    out = StringIO()
    call_command("sync_catalog", "--prune", stdout=out)
    assert "created 0, updated 0, unchanged 47, deactivated 1" in out.getvalue()


def test_the_command_turns_a_bad_setting_into_an_error(settings):
    use_source(settings, model="nowhere.Product")
    with pytest.raises(CommandError, match=r"CATALOG_SOURCE\['model'\]"):
        call_command("sync_catalog")


# --- the product's own URL on cards and in the carousel


@pytest.fixture
def fresh_cards():
    catalog.clear()
    yield
    catalog.clear()


def test_the_card_and_the_carousel_link_to_the_hosts_product_page(host_products, fresh_cards):
    sync_catalog()
    Product.objects.create(sku="OWN1", title="Aisle's own", price=Decimal("3"))
    host = ShopProduct.objects.get(sku="HS021")
    cards = {card.sku: card for card in catalog_cards()}
    assert cards["HS021"].url == f"/shop/lantern-21-{host.pk}/"
    assert cards["OWN1"].url == ""
    served = Recommendations(
        placement="home",
        items=[
            RecommendedItem(
                sku="HS021", score=1.0, reason="popular", title="Lantern 21", url=cards["HS021"].url
            ),
            RecommendedItem(sku="OWN1", score=0.5, reason="popular", title="Aisle's own"),
        ],
        tier="anonymous",
        source="popular",
        variant="control",
        model_version="",
        rec_id="r1",
        generated_at=1.0,
    )
    html = Template("{% load recs %}{% recommendation_carousel recs %}").render(
        Context({"recs": served})
    )
    assert f'href="/shop/lantern-21-{host.pk}/"' in html
    own = reverse(aisle_settings.RECS_PRODUCT_URL_NAME, args=["OWN1"])
    assert f'href="{own}"' in html, "no URL of its own: the storefront's page"
