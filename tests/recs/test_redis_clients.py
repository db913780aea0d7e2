"""recs.redis_clients and the engine on a real 3-node Redis Cluster (REDIS_CLUSTER=true).

The cluster tests start one local cluster for the module (loopback ports, no persistence) and
point the engine's clients at it; Django's cache and the broker stay on the private plain Redis,
as a cluster deployment keeps them (CACHE_URL, CELERY_BROKER_URL).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from merch.models import Placement
from merch.services.catalog import set_stock
from merch.services.experiments import VariantSpec, create_experiment, start_experiment
from recs import features, redis_clients, redis_keys
from recs.api_keys import create_api_key
from recs.candidates import store
from recs.candidates.availability import sync_unavailable
from recs.candidates.refresh import refresh_lists_holding
from recs.events import services
from recs.events.records import EventRecord
from recs.experiments.served import drain_served_log
from recs.experiments.tasks import queue_shadow_scoring
from recs.features import online
from recs.features.enrich import enrich
from recs.features.rebuild import clear_online_store
from recs.models import ServedList
from recs.serving import redis as serving_redis
from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext
from tests.private_redis import _free_port
from tests.recs.conftest import ranked, skus, touch

# --- without a cluster


def test_slot_tags_put_a_key_in_the_slot_they_name():
    for slot in (0, 1, 777, 16383):
        tag = redis_clients.slot_tag(slot)
        assert key_slot(f"ev:{{{tag}}}:event-{{with}}-braces:user".encode()) == slot


def test_one_server_keeps_a_plain_client(settings):
    settings.AISLE = {**settings.AISLE, "REDIS_CLUSTER": False}
    client = redis_clients.make_client(socket_timeout=1, connect_timeout=1)
    assert not redis_clients.is_cluster(client)


# --- on a cluster


def nodes_holding(client: RedisCluster, keys) -> set[str]:
    return {client.get_node_from_key(key).name for key in keys}


def event(event_id, event_type="view", user_id="", session_id="s-1", sku="P1", minutes_ago=1):
    return EventRecord(
        event_id=event_id,
        event_type=event_type,
        occurred_at=datetime.now(tz=UTC) - timedelta(minutes=minutes_ago),
        user_id=user_id,
        session_id=session_id,
        product_sku=sku,
        price=Decimal("3.50") if event_type == "purchase" else None,
        quantity=1 if event_type == "purchase" else None,
        country="Germany",
        device="mobile",
    )


def interactions(entity, entity_id):
    return features.get_online(entity, entity_id, ["interaction_count"])["interaction_count"]


@pytest.mark.cluster
@pytest.mark.django_db
def test_an_event_applied_twice_on_a_cluster_counts_once(on_cluster):
    records = [event("e1", user_id="u-1"), event("e2", "purchase", user_id="u-1", sku="P2")]
    assert features.apply_events(enrich(records)) == 2
    assert features.apply_events(enrich(records)) == 0, "a redelivered batch changes nothing"
    assert interactions("user", "u-1") == 2 and interactions("session", "s-1") == 2
    product = features.get_online("product", "P2", ["purchases_24h", "trending_score"])
    assert product["purchases_24h"] == 1.0 and product["trending_score"] > 0
    markers = list(on_cluster.scan_iter(match=redis_keys.EVENT_MARKER_PREFIX + "*"))
    feature_keys = list(on_cluster.scan_iter(match=redis_keys.FEATURE_PREFIX + "*"))
    assert len(nodes_holding(on_cluster, feature_keys)) == 3, "the updates span every node"
    for marker in markers:
        assert marker.startswith(b"ev:{"), "a marker is hash-tagged into its slot group"


@pytest.mark.cluster
@pytest.mark.django_db
def test_a_batch_cut_short_between_slot_groups_completes_once_on_redelivery(
    on_cluster, monkeypatch
):
    """A worker that dies after some nodes applied their share: the redelivery applies the
    rest and nothing twice."""
    records = [event(f"e{n}", "add_to_cart", user_id="u-1", sku=f"P{n}") for n in range(5)]
    real_run = online._run

    def crash_after_half(client, calls):
        real_run(client, calls[: len(calls) // 2])
        raise ConnectionError("worker lost")

    monkeypatch.setattr(online, "_run", crash_after_half)
    with pytest.raises(ConnectionError):
        features.apply_events(enrich(records))
    monkeypatch.setattr(online, "_run", real_run)
    applied_before = len(list(on_cluster.scan_iter(match=redis_keys.EVENT_MARKER_PREFIX + "*")))
    assert features.apply_events(enrich(records)) == 5, "each event had a share still to apply"
    assert (
        0
        < applied_before
        < len(list(on_cluster.scan_iter(match=redis_keys.EVENT_MARKER_PREFIX + "*")))
    )
    assert features.apply_events(enrich(records)) == 0
    user = features.get_online("user", "u-1", ["interaction_count", "cart"])
    assert user == {"interaction_count": 5.0, "cart": {f"P{n}": 1 for n in range(5)}}
    segment = features.get_online("segment", "country:Germany", ["popularity"])["popularity"]
    assert set(segment) == {f"P{n}" for n in range(5)}
    # Equal weights at nearly the same instant: a double count would show as twice the score.
    # (Rounding to 9 digits was flaky: the events' decay differs in the 9th digit.)
    top = max(segment.values())
    assert all(score == pytest.approx(top, rel=1e-6) for score in segment.values()), (
        "each counted once"
    )


@pytest.mark.cluster
@pytest.mark.django_db
def test_login_replay_on_a_cluster_counts_the_session_history_once(on_cluster):
    services.apply_event_batch("b1", [event("a1"), event("a2"), event("a3", session_id="x")])
    services.apply_event_batch("b2", [event("l1", user_id="u-9")])  # logged in on session s-1
    assert interactions("user", "u-9") == 3
    services.replay_session_history({"s-1": "u-9"})
    assert interactions("user", "u-9") == 3
    many = features.get_online_many("session", ["s-1", "x"], ["interaction_count"])
    assert many == {"s-1": {"interaction_count": 3.0}, "x": {"interaction_count": 1.0}}


@pytest.mark.cluster
@pytest.mark.django_db
def test_write_lists_on_a_cluster_keeps_the_previous_list_as_last_known_good(on_cluster):
    store.write_lists(
        [(redis_keys.user_list("u1"), ranked("A", "B")), (redis_keys.POPULAR_ALL, ranked("P"))]
    )
    assert store.read_list(redis_keys.last_known_good_list("u1")) == []
    store.write_lists(
        [(redis_keys.user_list("u1"), ranked("C")), (redis_keys.user_list("u2"), ranked("D"))]
    )
    assert [sku for sku, _ in store.read_list(redis_keys.last_known_good_list("u1"))] == ["A", "B"]
    assert [sku for sku, _ in store.read_list(redis_keys.user_list("u1"))] == ["C"]
    store.write_lists(
        [(redis_keys.user_list("u1"), ranked("E")), (redis_keys.user_list("u1"), ranked("F"))]
    )
    assert [sku for sku, _ in store.read_list(redis_keys.last_known_good_list("u1"))] == ["E"], (
        "as COPY would"
    )
    assert key_slot(b"c:user:u1") != key_slot(b"c:lkg:user:u1"), "so COPY could not work"


@pytest.mark.cluster
@pytest.mark.django_db
def test_recommend_serves_from_a_cluster_with_availability_and_fallbacks(
    on_cluster, shop, django_capture_on_commit_callbacks
):
    touch("C1", session_id="s-1")
    result = recommend(RecommendationContext(placement="home", session_id="s-1"))
    assert result.tier == "content" and result.source == "content", result.fallbacks
    assert set(skus(result)[:2]) == {"C2", "C4"}, "neighbours read in the second round trip"
    with django_capture_on_commit_callbacks(execute=True):
        set_stock(shop["C4"], on_hand=0)  # the sell-out receiver writes to the cluster
    assert on_cluster.sismember(redis_keys.UNAVAILABLE, "C4")
    after = recommend(RecommendationContext(placement="home", session_id="s-1"))
    assert "C4" not in skus(after) and after.source == "content"
    assert sync_unavailable() == 1
    store.write_lists(
        [(redis_keys.user_list("loyal"), ranked("K1"))]
    )  # the old list becomes last-known-good
    on_cluster.delete(redis_keys.user_list("loyal"))  # ...and the new one was lost
    touch(*["B1"] * 10, user_id="loyal", session_id="s-2")
    loyal = recommend(RecommendationContext(placement="home", user_id="loyal"))
    assert loyal.tier == "collaborative" and loyal.source == "last_known_good"
    assert skus(loyal)[:2] == ["K2", "K3"]


@pytest.mark.cluster
@pytest.mark.django_db
def test_api_and_experiment_logging_on_a_cluster(
    on_cluster, shop, client, django_capture_on_commit_callbacks, settings
):
    settings.AISLE = {**settings.AISLE, "SHADOW_SAMPLE_RATE": 0.0}
    with django_capture_on_commit_callbacks(execute=True):
        experiment = create_experiment(
            "Trending on home", Placement.objects.get(key="home"),
            [VariantSpec("control", "popular", 0, is_control=True),
             VariantSpec("trending", "trending", 50)],
        )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        start_experiment(experiment)
    _, read_key = create_api_key("shop server", "secret", ["read"])
    answers = [
        client.get("/api/v1/recommendations", {"placement": "home", "session_id": f"s-{n}"},
                   HTTP_AUTHORIZATION=f"Bearer {read_key}")
        for n in range(10)
    ]  # fmt: skip
    assert all(response.status_code == 200 for response in answers)
    assert all(response.json()["source"] != "fallback" for response in answers)
    assert on_cluster.xlen(redis_keys.SERVED_LOG) == 10, (
        "served lists logged to the cluster's stream"
    )
    assert drain_served_log(queue_shadow_scoring) == 10
    assert ServedList.objects.filter(experiment_id=experiment.pk).count() == 10
    assert any(key.startswith(b"throttle:") for key in on_cluster.scan_iter(match="throttle:*"))


@pytest.mark.cluster
@pytest.mark.django_db
def test_sell_out_refresh_and_rebuild_scan_every_node(on_cluster, shop):
    class Learner:
        def similar_items(self, sku, depth):
            return ranked("K1", "K2", "K3", "K4", "K5")[:depth]

        def popular(self, segment, depth):
            return ranked("K1", "K2", "K3", "K4", "K5")[:depth]

    keys = [redis_keys.similar_content_list(f"X{n}") for n in range(30)]
    store.write_lists([(key, ranked("K1", "K2")) for key in keys])
    assert len(nodes_holding(on_cluster, keys)) == 3
    on_cluster.sadd(redis_keys.UNAVAILABLE, "K1")
    rewritten = refresh_lists_holding(
        ["K1"], lambda role: Learner() if role == "similar_content" else None
    )
    assert rewritten == len(keys)
    for key in keys:
        assert [sku for sku, _ in store.read_list(key)][:3] == ["K1", "K2", "K3"]
    touch("C1", "C2")
    assert clear_online_store() > 0
    assert not list(on_cluster.scan_iter(match=redis_keys.FEATURE_PREFIX + "*"))


@pytest.mark.cluster
@pytest.mark.django_db
def test_an_unreachable_cluster_serves_the_fallback(shop, settings):
    from recs.serving import fallback

    settings.AISLE = {**settings.AISLE, "REDIS_CLUSTER": True}
    settings.AISLE = {**settings.AISLE, "REDIS_URL": f"redis://127.0.0.1:{_free_port()}/0"}
    serving_redis.reset()
    fallback.remember_global_popular(["B1", "K1"])
    result = recommend(RecommendationContext(placement="home", session_id="s-1", limit=2))
    assert result.source == "fallback" and skus(result) == ["B1", "K1"]
    assert not serving_redis.available()
