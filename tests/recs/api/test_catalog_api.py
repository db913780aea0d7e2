"""The catalog and stock API: partial acceptance, idempotency, auth, commit-time availability,
new products reaching serving without a restart or a retraining."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from aisle.conf import aisle_settings
from merch.models import Product, Stock
from recs import redis_keys
from recs.api_keys import create_api_key
from recs.candidates import store
from recs.candidates.tasks import similar_for_changed_products_task
from recs.serving import catalog
from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext
from recs.training.pipeline import train_models
from tests.factories import ProductFactory, StockFactory
from tests.recs.conftest import skus

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products"
STOCK = "/api/v1/stock"


def client_with(kind: str | None, scopes: list[str] | None = None) -> APIClient:
    client = APIClient()
    if kind is not None:
        _, plaintext = create_api_key("erp", kind, scopes)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def api() -> APIClient:
    return client_with("secret", ["catalog"])


def product(sku: str, **fields) -> dict:
    return {"sku": sku, "title": f"Product {sku}", "price": "4.95", **fields}


def ask(placement="home", **fields):
    return recommend(RecommendationContext(placement=placement, **fields))


# --- upsert


def test_a_thousand_products_with_three_bad_ones_keep_997_and_say_why(api):
    batch = [product(f"P{n:04d}", category_path=["Home", "Candles"]) for n in range(1000)]
    batch[10]["price"] = "-1"
    batch[500]["sku"] = "has space"
    batch[999]["title"] = ""
    response = api.post(PRODUCTS, {"products": batch}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (997, 0, 0)
    reasons = {item["index"]: (item["sku"], item["reason"]) for item in body["rejected"]}
    assert set(reasons) == {10, 500, 999}
    assert reasons[10][0] == "P0010" and reasons[10][1].startswith("price: must be a decimal")
    assert reasons[500] == ("has space", "sku: may not contain spaces or slashes")
    assert reasons[999][1].startswith("title:")
    assert Product.objects.count() == 997

    again = api.post(PRODUCTS, {"products": batch}, format="json").json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 997)
    assert len(again["rejected"]) == 3


def test_a_product_page_url_is_kept_and_a_url_that_could_run_script_is_refused(api):
    batch = [
        product("PAGE1", url="/shop/lantern-12/"),
        product("PAGE2", url="javascript:alert(1)"),
        product("PAGE3"),
    ]
    body = api.post(PRODUCTS, {"products": batch}, format="json").json()
    assert body["created"] == 2
    assert [(r["sku"], r["reason"]) for r in body["rejected"]] == [
        ("PAGE2", "url: must be a path starting with / or an http or https URL")
    ]
    assert Product.objects.get(sku="PAGE1").url == "/shop/lantern-12/"
    api.post(PRODUCTS, {"products": [product("PAGE1", title="Renamed")]}, format="json")
    assert Product.objects.get(sku="PAGE1").url == "/shop/lantern-12/", "missing url: kept"


def test_a_changed_product_is_updated_and_only_it(api):
    api.post(PRODUCTS, {"products": [product("A"), product("B")]}, format="json")
    before = dict(Product.objects.values_list("sku", "updated_at"))
    body = api.post(
        PRODUCTS, {"products": [product("A"), product("B", price="5.25")]}, format="json"
    ).json()
    assert (body["updated"], body["unchanged"]) == (1, 1)
    after = dict(Product.objects.values_list("sku", "updated_at"))
    assert after["A"] == before["A"] and after["B"] > before["B"]


def test_a_batch_with_nothing_valid_is_a_400_listing_each_reason(api):
    response = api.post(
        PRODUCTS, {"products": [product("A", price="x"), "nope", {}]}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "no_valid_products"
    assert [d["index"] for d in error["details"]] == [0, 1, 2]
    assert "sku: This field is required." in error["details"][2]["reason"]


@pytest.mark.parametrize(
    ("body", "code"),
    [({"products": []}, "empty_batch"), ({"items": []}, "invalid_shape"), ([], "invalid_shape")],
)
def test_wrong_shapes_are_400(api, body, code):
    response = api.post(PRODUCTS, body, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_malformed_json_is_400_and_a_form_is_415(api):
    response = api.post(PRODUCTS, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert api.post(PRODUCTS, {"products": "x"}).status_code == 415


def test_a_body_over_the_limit_is_413_before_it_is_read(api, settings):
    settings.AISLE = {**settings.AISLE, "CATALOG_MAX_BODY_BYTES": 200}
    response = api.post(PRODUCTS, {"products": [product(f"S{n}") for n in range(5)]}, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert not Product.objects.exists()


def test_a_body_over_djangos_upload_limit_but_within_the_catalogs_is_read(api, settings):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE < 3_500_000 < aisle_settings.CATALOG_MAX_BODY_BYTES
    batch = [product(f"P{n}", description="word " * 700) for n in range(1000)]
    response = api.post(PRODUCTS, {"products": batch}, format="json")
    assert response.status_code == 200 and response.json()["created"] == 1000


def test_more_than_the_batch_limit_is_413(api):
    response = api.post(PRODUCTS, {"products": [product("S")] * 1001}, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "batch_too_large"
    stock = api.post(STOCK, {"stock": [{"sku": "S", "on_hand": 1}] * 1001}, format="json")
    assert stock.status_code == 413


# --- who may call it


@pytest.mark.parametrize(
    ("kind", "scopes", "status"),
    [
        (None, None, 401),
        ("publishable", ["write"], 403),
        ("secret", ["read"], 403),
        ("secret", ["read", "write"], 403),
        ("secret", ["catalog"], 200),
    ],
)
def test_only_a_secret_key_with_the_catalog_scope_may_write(kind, scopes, status):
    client = client_with(kind, scopes)
    ProductFactory(sku="K")
    assert client.post(PRODUCTS, {"products": [product("A")]}, format="json").status_code == status
    assert (
        client.post(STOCK, {"stock": [{"sku": "K", "on_hand": 1}]}, format="json").status_code
        == status
    )
    assert client.get(f"{PRODUCTS}/K").status_code == status
    assert client.delete(f"{PRODUCTS}/K").status_code == status
    if status != 200:
        assert Product.objects.get(sku="K").is_active and not Product.objects.filter(sku="A")


def test_an_unknown_key_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer sk_not-a-key")
    assert client.post(PRODUCTS, {"products": [product("A")]}, format="json").status_code == 401


def test_a_staff_login_may_use_it():
    staff = get_user_model().objects.create_user("merch", password="x", is_staff=True)
    client = APIClient()
    client.force_authenticate(staff)
    assert client.post(PRODUCTS, {"products": [product("A")]}, format="json").status_code == 200


# --- read and deactivate


def test_a_product_reads_back_as_stored_with_its_stock(api):
    api.post(
        PRODUCTS,
        {"products": [product("85123A", category_path="Home > Candles", attributes={"c": "red"},
                              image_url="https://cdn.example.com/a.jpg")]},
        format="json",
    )  # fmt: skip
    api.post(STOCK, {"stock": [{"sku": "85123A", "on_hand": 7, "reserved": 2}]}, format="json")
    body = api.get(f"{PRODUCTS}/85123A").json()
    assert body["category_path"] == ["Home", "Candles"] and body["price"] == "4.95"
    assert body["attributes"] == {"c": "red"} and body["active"] is True
    assert body["stock"] == {"on_hand": 7, "reserved": 2, "available": 5}
    assert api.get(f"{PRODUCTS}/NOPE").status_code == 404
    assert api.delete(f"{PRODUCTS}/NOPE").json()["error"]["code"] == "not_found"


def test_a_sku_with_url_characters_is_found(api):
    api.post(PRODUCTS, {"products": [product("A%B?#1")]}, format="json")
    assert api.get(f"{PRODUCTS}/A%25B%3F%231").json()["sku"] == "A%B?#1"


@pytest.mark.django_db(transaction=True)
def test_a_deactivated_product_is_never_served_after_the_delete_returns(api, shop):
    assert "K4" in skus(ask(session_id="new", country="Germany"))
    response = api.delete(f"{PRODUCTS}/K4")
    assert response.status_code == 200 and response.json()["active"] is False
    assert "K4" not in skus(ask(session_id="new", country="Germany"))
    assert api.delete(f"{PRODUCTS}/K4").status_code == 200, "idempotent"
    body = api.post(
        PRODUCTS, {"products": [product("K4", title=shop["K4"].title, active=True)]}, format="json"
    ).json()
    assert body["updated"] == 1
    assert "K4" in skus(ask(session_id="new", country="Germany")), "an upsert brings it back"


# --- stock


@pytest.mark.django_db(transaction=True)
def test_stock_set_to_zero_through_the_api_is_never_served_after_the_commit(api, shop):
    assert "K4" in skus(ask(session_id="new", country="Germany"))
    response = api.post(STOCK, {"stock": [{"sku": "K4", "on_hand": 0}]}, format="json")
    assert response.json() == {"updated": 1, "unchanged": 0, "rejected": []}
    assert "K4" not in skus(ask(session_id="new", country="Germany"))
    api.post(STOCK, {"stock": [{"sku": "K4", "on_hand": 3}]}, format="json")
    assert "K4" in skus(ask(session_id="new", country="Germany")), "back in stock re-enters"
    api.post(STOCK, {"stock": [{"sku": "K4", "on_hand": 3, "reserved": 3}]}, format="json")
    assert "K4" not in skus(ask(session_id="new", country="Germany")), "all of it reserved"


def test_stock_levels_are_checked_one_by_one(api):
    StockFactory(product=ProductFactory(sku="A"), on_hand=5, reserved=2)
    ProductFactory(sku="B")
    levels = [
        {"sku": "A", "on_hand": 5, "reserved": 2},
        {"sku": "B", "on_hand": 4},
        {"sku": "NOPE", "on_hand": 1},
        {"sku": "A", "on_hand": -1},
        {"sku": "B", "on_hand": 9},
        {"on_hand": 1},
        7,
    ]
    body = api.post(STOCK, {"stock": levels}, format="json").json()
    assert (body["updated"], body["unchanged"]) == (1, 1)
    reasons = {item["index"]: item["reason"] for item in body["rejected"]}
    assert reasons == {
        2: "sku: unknown product 'NOPE'",
        3: "on_hand: Ensure this value is greater than or equal to 0.",
        4: "sku: repeats an earlier item with this SKU",
        5: "sku: This field is required.",
        6: "is not a JSON object",
    }
    assert Stock.objects.get(product__sku="B").on_hand == 4


def test_a_level_without_reserved_keeps_the_stored_reservation(api):
    StockFactory(product=ProductFactory(sku="A"), on_hand=5, reserved=5)
    api.post(STOCK, {"stock": [{"sku": "A", "on_hand": 8}]}, format="json")
    stock = Stock.objects.get(product__sku="A")
    assert (stock.on_hand, stock.reserved) == (8, 5)


# --- new products reach serving without a restart or a retraining


@pytest.mark.django_db(transaction=True)
def test_a_new_product_gets_similar_items_and_its_card_without_training(
    api, shop_history, default_placements
):
    train_models(["content"])
    catalog.cards(None)  # a web process that loaded its cards before the product existed
    queued = store.writer_client().llen("scoring")
    new = product("LANTERN2", title="Lantern Thing Glass", category_path="Home")
    assert api.post(PRODUCTS, {"products": [new]}, format="json").json()["created"] == 1
    assert store.writer_client().llen("scoring") == queued + 1, "the commit queued the lists"
    assert store.read_list(redis_keys.similar_content_list("LANTERN2")) == []

    assert similar_for_changed_products_task.apply(args=[["LANTERN2"]]).get() == 1
    similar = [sku for sku, _ in store.read_list(redis_keys.similar_content_list("LANTERN2"))]
    assert similar[0] == "LANTERN" and "LANTERN2" not in similar

    result = ask("product_detail", product_sku="LANTERN2", limit=3)
    assert skus(result)[0] == "LANTERN"
    version = store.writer_client().get(redis_keys.CATALOG_VERSION).decode()
    assert catalog.cards(version)["LANTERN2"].title == "Lantern Thing Glass"


@pytest.mark.django_db(transaction=True)
def test_a_new_product_without_stock_is_not_served_until_stock_arrives(api, shop):
    from recs import redis_keys

    api.post(PRODUCTS, {"products": [product("FRESH")]}, format="json")
    assert store.writer_client().sismember(redis_keys.UNAVAILABLE, "FRESH")
    api.post(STOCK, {"stock": [{"sku": "FRESH", "on_hand": 2}]}, format="json")
    assert not store.writer_client().sismember(redis_keys.UNAVAILABLE, "FRESH")


@pytest.mark.django_db(transaction=True)
def test_a_catalog_write_still_answers_when_redis_is_down(api, settings):
    from tests.private_redis import _free_port

    settings.AISLE = {
        **settings.AISLE,
        "REDIS_URL": f"redis://127.0.0.1:{_free_port()}/0",
    }  # nothing listens there
    response = api.post(PRODUCTS, {"products": [product("A")]}, format="json")
    assert response.status_code == 200 and Product.objects.filter(sku="A").exists()
