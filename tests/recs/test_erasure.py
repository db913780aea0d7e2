"""recs.erasure and its surfaces (API, command, admin): an erased shopper leaves no trace in the
database or Redis, stays erased through queued events, training and feature rebuilds, and
nobody else's data or the aggregates change."""

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.db import connection, models
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from redis.cluster import RedisCluster
from rest_framework.test import APIClient

from aisle.conf import aisle_settings
from merch.models import Placement
from merch.services.experiments import VariantSpec, create_experiment, start_experiment
from recs import erasure, features, redis_clients, redis_keys
from recs.api_keys import ApiKey, create_api_key
from recs.candidates import store
from recs.erasure import erase_shopper, subject_digest, without_erased_shoppers
from recs.events import services
from recs.events.records import EventRecord
from recs.experiments.served import drain_served_log
from recs.experiments.tasks import queue_shadow_scoring
from recs.features.rebuild import rebuild_online_store
from recs.models import ErasureRecord, Event, ServedList, SessionLink, VariantHourlyStats
from recs.training.data import interactions_from_event_log
from recs.training.pipeline import train_models
from recs.training.precompute import precompute_candidates
from tests.private_redis import _free_port
from tests.recs.conftest import ranked

pytestmark = pytest.mark.django_db

USER = "cust-4711-erase"
SESSION_ANON = "sessA4711anon"  # browsed anonymously, then logged in (linked)
SESSION_APP = "sessB4711app"  # the user's own events name it
SESSION_WEB = "sessC4711web"  # known only from served lists still in the Redis stream
SESSIONS = (SESSION_ANON, SESSION_APP, SESSION_WEB)
# The erased events' ids: their applied-once markers (`ev:<id>...`) must go too.
ERASED_EVENTS = ("e-anon-1", "e-anon-2", "e-cart", "e-buy")
TRACES = (USER, *SESSIONS, *ERASED_EVENTS)
OTHER = "cust-0042-keep"
OTHER_SESSION = "sessZ0042"
URL = f"/api/v1/shoppers/{USER}"
# Celery's broker shares the private Redis in tests; its queues carry task messages, not the
# engine's data (a queued event batch is covered by the guard, see the queued-event tests).
BROKER_KEYS = {"events", "scoring", "training", "default", "unacked", "unacked_index"}


def record(event_id, event_type="view", user_id="", session_id="", sku="C1", minutes_ago=5):
    return EventRecord(
        event_id=event_id,
        event_type=event_type,
        occurred_at=datetime.now(tz=UTC) - timedelta(minutes=minutes_ago),
        user_id=user_id,
        session_id=session_id,
        product_sku=sku,
        price=Decimal("9.50") if event_type == "purchase" else None,
        quantity=1 if event_type == "purchase" else None,
        order_id="ord-4711" if event_type == "purchase" and user_id == USER else "",
        country="Germany",
        device="mobile",
    )


def bearer(plaintext: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


@pytest.fixture
def admin_key():
    _, plaintext = create_api_key("privacy desk", "secret", ["admin"])
    return plaintext


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def experiment(shop, django_capture_on_commit_callbacks, settings):
    """A live experiment on the home page, so recommendations are logged as served lists."""
    settings.AISLE = {**settings.AISLE, "SHADOW_SAMPLE_RATE": 0.0}
    with django_capture_on_commit_callbacks(execute=True):
        experiment = create_experiment(
            "Trending on home", Placement.objects.get(key="home"),
            [VariantSpec("control", "popular", 0, is_control=True),
             VariantSpec("trending", "trending", 50)],
        )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        start_experiment(experiment)
    return experiment


def serve(client: Client, read_key: str, user_id: str = "", session_id: str = "") -> None:
    response = client.get(
        "/api/v1/recommendations",
        {"placement": "home", "user_id": user_id, "session_id": session_id},
        **bearer(read_key),
    )
    assert response.status_code == 200


@pytest.fixture
def shoppers(experiment, client):
    """The shopper to erase and another one, through the real event path, candidate cache and
    served-list log (part drained into the table, part still in the Redis stream), plus an
    aggregate row. Returns the aggregate's values before any erasure."""
    services.apply_event_batch("b1", [
        record("e-anon-1", session_id=SESSION_ANON, sku="C1", minutes_ago=30),
        record("e-anon-2", session_id=SESSION_ANON, sku="C2", minutes_ago=29),
        record("e-other-1", user_id=OTHER, session_id=OTHER_SESSION, sku="C1", minutes_ago=28),
    ])  # fmt: skip
    services.apply_event_batch("b2", [  # logs in: the anonymous session is linked
        record("e-cart", "add_to_cart", USER, SESSION_ANON, sku="C3", minutes_ago=20),
        record("e-buy", "purchase", USER, SESSION_APP, sku="K1", minutes_ago=10),
        record("e-other-2", "purchase", OTHER, OTHER_SESSION, sku="K2", minutes_ago=9),
    ])  # fmt: skip
    assert SessionLink.objects.filter(session_id=SESSION_ANON, user_id=USER).exists()
    assert features.get_online("user", USER, ["interaction_count"])["interaction_count"] == 4
    store.write_lists(
        [
            (redis_keys.user_list(USER), ranked("K2", "K3")),
            (redis_keys.user_list(OTHER), ranked("C4")),
        ]
    )
    store.write_lists([(redis_keys.user_list(USER), ranked("K3", "K4"))])  # the first becomes lkg
    store.write_lists(
        [
            (redis_keys.model_user_list("als", USER), ranked("B1")),
            (redis_keys.model_user_list("als", OTHER), ranked("B2")),
        ]
    )
    _, read_key = create_api_key("storefront server", "secret", ["read"])
    serve(client, read_key, USER, SESSION_ANON)
    serve(client, read_key, session_id=SESSION_ANON)
    serve(client, read_key, OTHER, OTHER_SESSION)
    assert drain_served_log(queue_shadow_scoring) == 3
    serve(client, read_key, session_id=SESSION_WEB)  # before the entry that reveals the session
    serve(client, read_key, USER, SESSION_WEB)
    serve(client, read_key, USER, SESSION_APP)
    serve(client, read_key, OTHER, OTHER_SESSION)
    assert redis_clients.worker_client().xlen(redis_keys.SERVED_LOG) == 4
    stats = VariantHourlyStats.objects.create(
        experiment_id=experiment.pk, variant="trending",
        hour=timezone.now().replace(minute=0, second=0, microsecond=0),
        exposed_subjects=3, lists_served=7, clicks=2, converting_subjects=2, revenue=19.0,
    )  # fmt: skip
    return {f.name: getattr(stats, f.name) for f in VariantHourlyStats._meta.fields}


def db_mentions(needles) -> list[str]:
    """Every text and JSON value of every model that contains one of the needles."""
    found = []
    for model in apps.get_models():
        fields = [
            f.name
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField | models.JSONField)
        ]
        if not fields:
            continue
        for values in model._default_manager.values_list(*fields):
            text = " ".join(str(value) for value in values)
            found += [f"{model.__name__}: {n}" for n in needles if n in text]
    return found


def redis_values(client, key: bytes) -> list[bytes]:
    kind = client.type(key).decode()
    if kind == "string":
        return [client.get(key)]
    if kind == "hash":
        return [item for pair in client.hgetall(key).items() for item in pair]
    if kind == "zset":
        return client.zrange(key, 0, -1)
    if kind == "set":
        return list(client.smembers(key))
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "stream":
        return [value for _, fields in client.xrange(key) for value in fields.values()]
    return []


def redis_mentions(client, needles) -> list[str]:
    """Key names, on every node, that contain a needle; and values of the engine's structures."""
    if isinstance(client, RedisCluster):
        keys = list(client.scan_iter(count=1000, target_nodes=RedisCluster.PRIMARIES))
    else:
        keys = list(client.scan_iter(count=1000))
    found = []
    for key in keys:
        name = key.decode(errors="replace")
        found += [f"key {name}" for n in needles if n in name]
        if name in BROKER_KEYS or name.startswith("_kombu"):
            continue
        values = b" ".join(v for v in redis_values(client, key) if isinstance(v, bytes))
        found += [f"value of {name}: {n}" for n in needles if n.encode() in values]
    return found


def assert_no_trace(client=None) -> None:
    client = client or redis_clients.worker_client()
    assert db_mentions(TRACES) == []
    assert redis_mentions(client, TRACES) == []


def assert_other_shopper_untouched(client=None) -> None:
    client = client or redis_clients.worker_client()
    assert set(Event.objects.values_list("event_id", flat=True)) == {"e-other-1", "e-other-2"}
    assert ServedList.objects.filter(user_id=OTHER).count() == 1
    online = features.get_online("user", OTHER, ["interaction_count", "purchased_products"])
    assert online == {"interaction_count": 2, "purchased_products": ["K2"]}
    assert features.get_online("session", OTHER_SESSION, ["interaction_count"]) == {
        "interaction_count": 2
    }
    assert store.read_list(redis_keys.user_list(OTHER)) and store.read_list(
        redis_keys.model_user_list("als", OTHER)
    )
    assert any(
        OTHER.encode() in value for value in redis_values(client, redis_keys.SERVED_LOG.encode())
    )


# --- the whole erasure


def test_erasure_through_the_api_leaves_no_trace_of_the_shopper_in_the_database_or_redis(
    shoppers, api, admin_key
):
    assert db_mentions(TRACES) and redis_mentions(redis_clients.worker_client(), TRACES)

    response = api.delete(URL, **bearer(admin_key))

    assert response.status_code == 200
    body = response.json()
    assert body["erased"] is True
    assert body["counts"] == {
        "sessions": 3, "events": 4, "session_links": 2, "served_lists": 2,
        "served_log_entries": 3, "online_features": body["counts"]["online_features"],
        # e-anon-1 and 2 were linked at the login: one marker for the event, one for its
        # user's share; e-cart and e-buy name the user: one marker each.
        "event_markers": 6, "candidate_lists": 3, "pending_rescores": 1, "archived_events": 0,
    }  # fmt: skip
    assert body["counts"]["online_features"] >= 8  # user and session features
    assert_no_trace()
    assert_other_shopper_untouched()
    stats = VariantHourlyStats.objects.get()
    assert {f.name: getattr(stats, f.name) for f in VariantHourlyStats._meta.fields} == shoppers
    # Product and segment aggregates keep the erased shopper's contributions; they name nobody.
    assert features.get_online("product", "K1", ["purchases_24h"])["purchases_24h"] == 1


def test_the_audit_record_says_who_when_and_how_much_without_the_id(shoppers, api, admin_key):
    api.delete(URL, **bearer(admin_key))
    record = ErasureRecord.objects.get()
    key_pk = ApiKey.objects.get(name="privacy desk").pk
    assert record.requested_by == f"key:privacy desk#{key_pk}"
    assert record.subject_digest == subject_digest(USER) and len(record.subject_digest) == 64
    assert record.counts["events"] == 4
    assert USER not in str(record.counts) and USER not in record.subject_digest
    assert timezone.now() - record.erased_at < timedelta(minutes=1)


def test_erasing_twice_removes_nothing_more_and_an_unknown_id_answers_the_same(
    shoppers, api, admin_key
):
    first = api.delete(URL, **bearer(admin_key)).json()
    again = api.delete(URL, **bearer(admin_key)).json()
    unknown = api.delete("/api/v1/shoppers/nobody-ever", **bearer(admin_key))
    assert first["counts"]["events"] == 4
    assert again["erased"] is True and set(again["counts"].values()) == {0}
    assert unknown.status_code == 200 and unknown.json()["counts"] == again["counts"]
    assert ErasureRecord.objects.count() == 3
    assert_no_trace()


def test_the_command_erases_after_confirmation_and_prints_the_counts(shoppers, capsys):
    call_command("erase_shopper", USER, OTHER, "--yes")
    out = capsys.readouterr().out
    assert f"Erased {USER}" in out and "events 4" in out and "Erased 2 shopper(s)." in out
    assert Event.objects.count() == 0 and ServedList.objects.count() == 0
    assert_no_trace()
    assert ErasureRecord.objects.count() == 2
    assert all(r.requested_by.startswith("command") for r in ErasureRecord.objects.all())


def test_the_command_asks_first_and_a_no_erases_nothing(shoppers, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    with pytest.raises(CommandError, match="Nothing erased"):
        call_command("erase_shopper", USER)
    assert Event.objects.filter(user_id=USER).count() == 2
    assert not ErasureRecord.objects.exists()
    with pytest.raises(CommandError, match="1 to 64"):
        call_command("erase_shopper", "x" * 65, "--yes")


def test_with_redis_down_the_api_says_503_and_the_record_shows_the_erasure_incomplete(
    shoppers, api, admin_key, settings
):
    working_url = aisle_settings.REDIS_URL
    settings.AISLE = {
        **settings.AISLE,
        "REDIS_URL": f"redis://127.0.0.1:{_free_port()}/0",
    }  # nothing listens there
    response = api.delete(URL, **bearer(admin_key))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert ErasureRecord.objects.get().counts == {}, "incomplete, and says so"

    settings.AISLE = {**settings.AISLE, "REDIS_URL": working_url}
    assert api.delete(URL, **bearer(admin_key)).json()["counts"]["events"] == 4
    assert_no_trace()


# --- who may erase


@pytest.mark.parametrize(
    ("kind", "scopes", "status"),
    [
        (None, None, 401),
        ("publishable", ["write"], 403),
        ("secret", ["read", "write", "catalog"], 403),
    ],
)
def test_only_a_secret_admin_key_or_staff_may_erase(shoppers, api, kind, scopes, status):
    headers = bearer(create_api_key("someone", kind, scopes)[1]) if kind else {}
    response = api.delete(URL, **headers)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert Event.objects.filter(user_id=USER).exists() and not ErasureRecord.objects.exists()


def test_an_unknown_key_is_401_and_a_shopper_login_is_403(shoppers, api):
    assert api.delete(URL, **bearer("sk_not-a-key")).status_code == 401
    api.force_authenticate(User.objects.create_user("shopper"))
    assert api.delete(URL).status_code == 403
    assert not ErasureRecord.objects.exists()


def test_a_staff_login_with_the_erasure_permission_may_erase_and_is_named(shoppers, api):
    """The same rule as the admin's erasure screen: staff holding recs.add_erasurerecord."""
    clerk = User.objects.create_user("clerk", is_staff=True)
    api.force_authenticate(clerk)
    assert api.delete(URL).status_code == 403
    dpo = User.objects.create_user("dpo", is_staff=True)
    dpo.user_permissions.add(Permission.objects.get(codename="add_erasurerecord"))
    api.force_authenticate(User.objects.get(pk=dpo.pk))
    assert api.delete(URL).status_code == 200
    assert ErasureRecord.objects.get().requested_by == "staff:dpo"


def test_a_user_id_over_64_characters_is_a_400_in_the_house_error_shape(api, admin_key):
    response = api.delete(f"/api/v1/shoppers/{'x' * 65}", **bearer(admin_key))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["details"][0]["field"] == "user_id"
    assert not ErasureRecord.objects.exists()


def test_the_schema_documents_the_operation(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/shoppers/{user_id}"]["delete"]
    assert operation["operationId"] == "shoppers_erase"
    assert {"200", "400", "401", "403"} <= set(operation["responses"])


# --- staying erased


def test_a_queued_event_from_before_the_erasure_does_not_bring_the_shopper_back(
    shoppers, api, admin_key
):
    api.delete(URL, **bearer(admin_key))
    late = [
        record("e-late-1", "view", USER, SESSION_APP, sku="C5", minutes_ago=3),
        record("e-late-2", "purchase", USER, SESSION_WEB, sku="K3", minutes_ago=2),
        record("e-other-3", "view", OTHER, OTHER_SESSION, sku="C6", minutes_ago=2),
    ]
    assert services.apply_event_batch("queued-before", late) == 1
    assert not Event.objects.filter(user_id=USER).exists()
    assert Event.objects.filter(event_id="e-other-3").exists()
    assert_no_trace()


def test_events_after_the_erasure_are_new_activity_and_count(shoppers, api, admin_key):
    api.delete(URL, **bearer(admin_key))
    fresh = replace(
        record("e-back", user_id=USER, session_id="sessD-new"),
        occurred_at=timezone.now() + timedelta(seconds=1),
    )
    assert services.apply_event_batch("after", [fresh]) == 1
    assert Event.objects.filter(user_id=USER).count() == 1


def test_a_queued_anonymous_event_of_an_erased_session_does_not_come_back(shoppers, api, admin_key):
    """Session id only, no user id: the guard knows the shopper's sessions by digest."""
    api.delete(URL, **bearer(admin_key))
    late = [record("e-late-anon", "view", "", SESSION_ANON, sku="C4", minutes_ago=1),
            record("e-other-anon", "view", "", "sessZ-someone", sku="C4", minutes_ago=1)]  # fmt: skip
    assert services.apply_event_batch("queued-anon", late) == 1
    assert not Event.objects.filter(session_id=SESSION_ANON).exists()
    assert_no_trace()


def test_the_guard_costs_one_query_per_batch(shoppers):
    """The erased digests are held in process: a batch asks only whether they changed,
    whatever its size; an erasure meanwhile is seen by the next batch."""
    erase_shopper(USER, requested_by="test")
    batch = [record(f"e-{n}", user_id=f"u-{n % 3}", session_id=f"s-{n % 7}") for n in range(30)]
    services.apply_event_batch("warm", batch[:1])
    with CaptureQueriesContext(connection) as queries:
        services.apply_event_batch("guarded", batch)
    erasure_queries = [q for q in queries.captured_queries if "erasurerecord" in q["sql"]
                       or "erasedsession" in q["sql"]]  # fmt: skip
    assert len(erasure_queries) == 1
    erase_shopper("u-1", requested_by="test")
    queued_before = [record("late", user_id="u-1", session_id="s-x", minutes_ago=60)]
    assert without_erased_shoppers(queued_before) == []


def test_too_many_erasures_to_hold_are_queried_instead(shoppers, monkeypatch):
    erase_shopper(USER, requested_by="test")
    monkeypatch.setattr(erasure, "ERASURES_HELD_MAX", 0)
    assert erasure.held_erasures() is None
    queued_before = record("early", user_id=USER, session_id="s-y", minutes_ago=60)
    assert without_erased_shoppers([queued_before]) == []
    assert without_erased_shoppers([record("new", user_id=USER, minutes_ago=-1)]) != []


def test_training_and_a_feature_rebuild_after_erasure_do_not_bring_the_shopper_back(
    shoppers, shop_history, api, admin_key
):
    train_models(["popularity", "hybrid"])  # the serving artifacts know the shopper
    assert USER in set(interactions_from_event_log().users)
    assert store.read_list(redis_keys.user_list(USER))

    api.delete(URL, **bearer(admin_key))

    interactions = interactions_from_event_log()
    users = {str(user) for user in interactions.users}
    assert not any(trace in user for user in users for trace in TRACES)
    precompute_candidates()  # with the old artifacts, before any retraining
    assert_no_trace()
    train_models(["popularity", "hybrid"])
    rebuild_online_store()
    assert_no_trace()
    assert store.read_list(redis_keys.user_list(OTHER)) or store.read_list(
        redis_keys.user_list("u1")
    )


# --- digest


def test_the_digest_is_keyed_and_never_the_raw_id(settings):
    settings.AISLE = {**settings.AISLE, "ERASURE_DIGEST_KEY": ""}
    derived = subject_digest(USER)
    assert derived != hashlib.sha256(USER.encode()).hexdigest() and USER not in derived
    settings.AISLE = {**settings.AISLE, "ERASURE_DIGEST_KEY": "a-key-from-the-vault"}
    assert subject_digest(USER) != derived
    assert subject_digest(USER) == subject_digest(USER) and len(subject_digest(USER)) == 64


# --- admin


def test_the_admin_page_confirms_before_it_erases(shoppers, admin_client):
    changelist = admin_client.get("/admin/recs/erasurerecord/")
    assert b"Erase a shopper" in changelist.content
    assert admin_client.get("/admin/recs/erasurerecord/erase/").status_code == 200

    review = admin_client.post("/admin/recs/erasurerecord/erase/", {"user_id": USER})
    assert review.status_code == 200
    assert b"Yes, erase this shopper" in review.content and b"4 event(s)" in review.content
    assert Event.objects.filter(user_id=USER).exists(), "reviewing erases nothing"

    done = admin_client.post(
        "/admin/recs/erasurerecord/erase/", {"user_id": USER, "confirm": "yes"}
    )
    assert done.status_code == 302 and done.url == "/admin/recs/erasurerecord/"
    record = ErasureRecord.objects.get()
    assert record.requested_by == "staff:admin"
    assert_no_trace()
    listing = admin_client.get("/admin/recs/erasurerecord/").content.decode()
    assert record.subject_digest[:12] in listing and USER not in listing
    found = admin_client.get("/admin/recs/erasurerecord/", {"q": USER}).content.decode()
    assert record.subject_digest[:12] in found


def test_the_admin_erase_page_needs_csrf_and_the_erasure_permission(shoppers, admin_user):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    response = strict.post("/admin/recs/erasurerecord/erase/", {"user_id": USER, "confirm": "yes"})
    assert response.status_code == 403
    clerk = User.objects.create_user("clerk", password="x", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_erasurerecord"))
    plain = Client()
    plain.force_login(clerk)
    assert b"Erase a shopper" not in plain.get("/admin/recs/erasurerecord/").content
    assert plain.get("/admin/recs/erasurerecord/erase/").status_code == 403
    assert (
        plain.post(
            "/admin/recs/erasurerecord/erase/", {"user_id": USER, "confirm": "yes"}
        ).status_code
        == 403
    )
    assert not ErasureRecord.objects.exists()


def test_the_admin_action_erases_the_shoppers_of_selected_rows_after_confirmation(
    shoppers, admin_client
):
    anonymous_event = Event.objects.get(event_id="e-anon-1")  # counts for its linked user
    data = {"action": "erase_shoppers_of_selected", "_selected_action": [anonymous_event.pk]}
    confirm = admin_client.post("/admin/recs/event/", data)
    assert confirm.status_code == 200 and USER.encode() in confirm.content
    assert Event.objects.filter(user_id=USER).exists()

    done = admin_client.post("/admin/recs/event/", {**data, "post": "yes"})
    assert done.status_code == 302
    assert_no_trace()
    assert_other_shopper_untouched()

    link = SessionLink.objects.create(session_id="s-x", user_id=OTHER, linked_at=timezone.now())
    data = {"action": "erase_shoppers_of_selected", "_selected_action": [link.pk], "post": "yes"}
    assert admin_client.post("/admin/recs/sessionlink/", data).status_code == 302
    assert not Event.objects.filter(user_id=OTHER).exists()
    assert ErasureRecord.objects.count() == 2


# --- on a Redis Cluster


@pytest.mark.cluster
def test_erasure_on_a_cluster_leaves_no_trace_on_any_node(on_cluster, shoppers, api, admin_key):
    keys = list(on_cluster.scan_iter(target_nodes=RedisCluster.PRIMARIES))
    assert len({on_cluster.get_node_from_key(key).name for key in keys}) == 3
    assert any(key.startswith(b"ev:{") for key in keys), "slot-tagged markers"

    response = api.delete(URL, **bearer(admin_key))

    assert response.status_code == 200
    assert response.json()["counts"]["candidate_lists"] == 3
    assert response.json()["counts"]["event_markers"] >= 8
    assert_no_trace(on_cluster)
    assert_other_shopper_untouched(on_cluster)
