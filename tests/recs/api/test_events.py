"""POST /api/v1/events: per-item validation, whole-request errors, auth, throttling, queueing."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from aisle.conf import aisle_cache
from recs.api_keys import create_api_key, revoke_keys
from recs.events.records import EventRecord
from recs.events.services import apply_event_batch
from recs.events.tasks import QueueUnavailable
from recs.models import Event
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


@pytest.fixture
def products():
    return [ProductFactory(sku="85123A"), ProductFactory(sku="22423")]


@pytest.fixture
def write_key():
    _, plaintext = create_api_key("shop", "secret", ["write"])
    return plaintext


@pytest.fixture
def api(write_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {write_key}")
    return client


def view(event_id="e-1", **fields):
    return {
        "event_id": event_id,
        "type": "view",
        "session_id": "s-1",
        "product_id": "85123A",
        **fields,
    }


def queued_events() -> list[EventRecord]:
    """The events waiting in the real `events` queue of the private Redis."""
    records = []
    for raw in get_redis_connection().lrange("events", 0, -1):
        message = json.loads(raw)
        body = json.loads(__import__("base64").b64decode(message["body"]))
        records += [EventRecord.from_message(m) for m in body[0][1]]
    return records


def test_a_valid_batch_is_accepted_and_queued_durably(api, products):
    response = api.post(URL, {"events": [view("e-1"), view("e-2", type="click")]}, format="json")
    assert response.status_code == 202
    assert response.json()["accepted"] == 2 and response.json()["rejected"] == []
    assert [r.event_id for r in queued_events()] == ["e-1", "e-2"]


def test_a_bare_list_is_accepted(api, products):
    assert api.post(URL, [view()], format="json").status_code == 202


def test_a_mixed_batch_keeps_the_valid_events_and_says_why_others_failed(api, products):
    now = datetime.now(tz=UTC)
    batch = [
        view("ok-1"),
        view("bad-type", type="teleport"),
        view("no-who", session_id=""),
        view("no-product", product_id=""),
        view("unknown-product", product_id="NOPE"),
        view("future", ts=(now + timedelta(hours=1)).isoformat()),
        view("ancient", ts=(now - timedelta(days=400)).isoformat()),
        {"event_id": "no-price", "type": "purchase", "user_id": "u", "product_id": "85123A"},
        view("ok-1"),
        "not an object",
        view("bad-dwell", context={"dwell_ms": -5}),
        {"event_id": "search-ok", "type": "search", "session_id": "s-1", "query": "lantern"},
        {"event_id": "buy-ok", "type": "purchase", "user_id": "u", "product_id": "22423",
         "price": "12.75", "quantity": 2, "order_id": "o-1"},
    ]  # fmt: skip
    response = api.post(URL, {"events": batch}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 3
    reasons = {item["index"]: item["reason"] for item in body["rejected"]}
    assert set(reasons) == {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
    assert "not a valid choice" in reasons[1]
    assert "user_id or a session_id" in reasons[2]
    assert "needs a product_id" in reasons[3]
    assert "unknown product 'NOPE'" in reasons[4]
    assert "future" in reasons[5] and "past" in reasons[6]
    assert "needs a price" in reasons[7]
    assert "repeats an earlier event" in reasons[8]
    assert "not a JSON object" in reasons[9]
    assert "context.dwell_ms" in reasons[10]
    queued = {r.event_id: r for r in queued_events()}
    assert set(queued) == {"ok-1", "search-ok", "buy-ok"}
    assert queued["search-ok"].context == {"query": "lantern"}
    assert (queued["buy-ok"].quantity, str(queued["buy-ok"].price)) == (2, "12.75")


def test_context_country_and_device_reach_the_event_record(api, products):
    api.post(
        URL, [view(context={"country": "Germany", "device": "mobile", "extra": "x"})], format="json"
    )
    [record] = queued_events()
    assert (record.country, record.device) == ("Germany", "mobile")
    assert "extra" not in record.context


def test_a_batch_with_no_valid_event_is_a_400_listing_each_reason(api, products):
    response = api.post(URL, {"events": [view(type="nope")]}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "no_valid_events"
    assert error["details"][0]["index"] == 0


def test_malformed_json_is_a_clear_400(api):
    response = api.post(URL, data='{"events": [', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_the_wrong_shape_is_a_400(api):
    response = api.post(URL, {"events": "many"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_shape"


def test_too_many_events_is_a_413(api, products, settings):
    settings.AISLE = {**settings.AISLE, "EVENTS_MAX_BATCH": 3}
    response = api.post(URL, [view(f"e{n}") for n in range(4)], format="json")
    assert response.status_code == 413
    assert "at most 3" in response.json()["error"]["message"]


def test_an_oversize_body_is_a_413(api, settings):
    settings.AISLE = {**settings.AISLE, "EVENTS_MAX_BODY_BYTES": 100}
    response = api.post(URL, [view(f"e{n}") for n in range(10)], format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_a_form_post_is_a_415(api):
    response = api.post(URL, {"events": "x"})  # multipart
    assert response.status_code == 415
    assert "error" in response.json()


def test_without_a_key_the_request_is_refused():
    response = APIClient().post(URL, [view()], format="json")
    assert response.status_code in (401, 403)
    assert "error" in response.json()


def test_a_revoked_key_is_refused_at_once(products):
    key, plaintext = create_api_key("shop", "secret", ["write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert client.post(URL, [view()], format="json").status_code == 202
    revoke_keys([key])
    response = client.post(URL, [view("e-2")], format="json")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_a_read_only_key_cannot_write(products):
    _, plaintext = create_api_key("shop", "secret", ["read"])
    client = APIClient()
    client.credentials(HTTP_X_AISLE_KEY=plaintext)
    response = client.post(URL, [view()], format="json")
    assert response.status_code == 403
    assert "'write' scope" in response.json()["error"]["message"]


def test_a_staff_session_may_send_events(admin_client, products):
    response = admin_client.post(URL, json.dumps([view()]), content_type="application/json")
    assert response.status_code == 202


def test_a_secret_key_over_its_rate_is_throttled(api, products, settings):
    settings.AISLE = {**settings.AISLE, "SERVER_KEY_THROTTLE_RATE": "2/min"}
    cache.clear()
    statuses = [api.post(URL, [view(f"e{n}")], format="json").status_code for n in range(3)]
    assert statuses == [202, 202, 429]
    response = api.post(URL, [view("e9")], format="json")
    assert response.json()["error"]["code"] == "throttled" and "Retry-After" in response


def test_a_slow_throttle_cache_lets_the_batch_in_rather_than_failing(api, products, monkeypatch):
    from redis.exceptions import TimeoutError as RedisTimeoutError

    def slow_get(*args, **kwargs):
        raise RedisTimeoutError("Timeout reading from socket")

    monkeypatch.setattr(aisle_cache(), "get", slow_get)
    response = api.post(URL, [view("e-slow")], format="json")
    assert response.status_code == 202
    assert response.json()["accepted"] == 1


def test_when_the_queue_is_down_nothing_is_accepted_and_the_client_may_retry(
    api, products, monkeypatch
):
    def broker_down(records):
        raise QueueUnavailable("connection refused")

    monkeypatch.setattr("recs.api.events.enqueue_events", broker_down)
    response = api.post(URL, [view()], format="json")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "queue_unavailable"


def test_a_repeated_event_id_across_requests_is_applied_once(api, products):
    api.post(URL, [view("same", user_id="u-1")], format="json")
    api.post(URL, [view("same", user_id="u-1")], format="json")
    queued = queued_events()
    assert len(queued) == 2  # both requests were accepted while the first was in flight...
    apply_event_batch("b1", queued[:1])
    apply_event_batch("b2", queued[1:])
    assert Event.objects.filter(event_id="same").count() == 1  # ...and applied once


def test_an_event_id_already_in_the_log_is_reported_as_a_duplicate(api, products):
    api.post(URL, [view("stored", user_id="u-1")], format="json")
    apply_event_batch("b1", queued_events())
    get_redis_connection().delete("events")
    response = api.post(URL, [view("stored", user_id="u-1"), view("new")], format="json")
    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert response.json()["duplicates"] == [{"index": 0, "event_id": "stored"}]
    assert [r.event_id for r in queued_events()] == ["new"]
    only_old = api.post(URL, [view("stored", user_id="u-1")], format="json")
    assert only_old.status_code == 200
    assert only_old.json()["accepted"] == 0 and only_old.json()["batch_id"] is None


def test_the_schema_documents_the_events_endpoint(client):
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/events"]["post"]
    assert "202" in operation["responses"] and "413" in operation["responses"]
    assert "apiKey" in schema["components"]["securitySchemes"]
