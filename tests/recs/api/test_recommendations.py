"""GET /api/v1/recommendations: the render path over HTTP, with clear 4xx errors."""

import pytest

from aisle.conf import aisle_settings
from merch.models import Placement
from recs.api_keys import create_api_key
from tests.factories import PlacementFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/recommendations"


def test_answer_carries_items_and_what_served_them(client, shop):
    response = client.get(URL, {"placement": "home", "session_id": "s-1", "country": "Germany"})
    assert response.status_code == 200
    body = response.json()
    assert [item["sku"] for item in body["items"]][:3] == ["K4", "K5", "K6"]
    assert body["items"][0]["reason"] == "popular in Germany"
    assert body["items"][0]["title"] == "Baking 4" and body["items"][0]["price"] == "4.95"
    assert body["tier"] == "anonymous" and body["variant"] == "default"
    assert body["source"] == "segment_popular" and body["model_version"] == "popularity#3"
    assert len(body["rec_id"]) == 32 and body["age_s"] >= 0


def test_product_and_limit_parameters(client, shop):
    body = client.get(URL, {"placement": "product_detail", "product_id": "C1", "limit": 2}).json()
    assert len(body["items"]) == 2 and "C1" not in [i["sku"] for i in body["items"]]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({}, "placement", "required"),
        ({"placement": "nowhere"}, "placement", "Unknown placement 'nowhere'"),
        ({"placement": "home", "limit": "0"}, "limit", "greater than or equal to 1"),
        ({"placement": "home", "limit": "500"}, "limit", "less than or equal to 50"),
        ({"placement": "home", "limit": "ten"}, "limit", "valid integer"),
        ({"placement": "home", "limit": ""}, "limit", "valid integer"),
        ({"placement": "home", "product_id": "NOPE"}, "product_id", "unknown product 'NOPE'"),
    ],
)
def test_bad_parameters_are_a_400_that_says_what_is_wrong(client, shop, params, field, message):
    response = client.get(URL, params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["details"][0]["field"] == field and message in error["details"][0]["message"]


def test_a_key_must_have_the_read_scope(client, shop):
    _, write_only = create_api_key("shop", "secret", ["write"])
    _, reader = create_api_key("shop", "secret", ["read"])
    params = {"placement": "home"}
    assert client.get(URL, params, HTTP_AUTHORIZATION=f"Bearer {write_only}").status_code == 403
    assert client.get(URL, params, HTTP_AUTHORIZATION=f"Bearer {reader}").status_code == 200
    assert client.get(URL, params, HTTP_AUTHORIZATION="Bearer ak_wrong").status_code == 401


def test_anonymous_callers_are_throttled_per_address(client, shop, settings):
    settings.AISLE = {**settings.AISLE, "RECOMMENDATIONS_THROTTLE_RATE": "2/min"}
    codes = [client.get(URL, {"placement": "home"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_redis_down_is_still_a_200_from_the_fallback(client, shop, doomed_redis, settings):
    from recs.serving import fallback

    fallback.remember_global_popular(["B1", "K1"])
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": aisle_settings.REDIS_URL}
    }
    doomed_redis.terminate()
    doomed_redis.wait()
    response = client.get(URL, {"placement": "home", "session_id": "s-1"})
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "fallback" and body["fallbacks"] == ["redis_down"]
    assert [item["sku"] for item in body["items"]][:2] == ["B1", "K1"], "the in-process copy first"
    assert {item["reason"] for item in body["items"][2:]} == {"new in"}, "then the newest in stock"


def test_schema_documents_the_endpoint(admin_client):
    schema = admin_client.get("/api/v1/schema/").content.decode()
    assert "/api/v1/recommendations" in schema and "recommendations_list" in schema


@pytest.mark.django_db(transaction=True)
def test_the_schema_answers_threads_asking_at_once():
    """gthread workers serve requests on threads; drf-spectacular's generator is not safe to
    run twice at once, so the view lets one generation run at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from django.test import Client

    def fetch(_):
        return Client().get("/api/v1/schema/", {"format": "json"}).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(fetch, range(24)))
    assert statuses == [200] * 24


def test_the_schema_enumerates_the_placements_and_states_the_limits(client, shop):
    PlacementFactory(key="gift_guide")  # one a merchandiser added: read when the schema is made
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/recommendations"]["get"]
    parameters = {p["name"]: p["schema"] for p in operation["parameters"]}
    placement = next(p for p in operation["parameters"] if p["name"] == "placement")
    assert parameters["placement"]["enum"] == sorted(
        Placement.objects.values_list("key", flat=True)
    )
    assert "gift_guide" in parameters["placement"]["enum"]
    assert "hard-coding" in placement["description"], "clients are told the set changes"
    assert parameters["limit"]["minimum"] == 1 and parameters["limit"]["maximum"] == 50
    assert parameters["user_id"]["maxLength"] == 64
