"""recs.events services and tasks: durable enqueue, exactly-once apply of batches, session linking."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django_redis import get_redis_connection

from recs import features
from recs.events import services
from recs.events.records import EventRecord
from recs.events.tasks import enqueue_events
from recs.models import Event, SessionLink
from tests.celery_worker import celery_worker, kill_worker, wait_for

pytestmark = pytest.mark.django_db


def record(event_id, event_type="view", user_id="", session_id="s-1", sku="P1", minutes_ago=1):
    return EventRecord(
        event_id=event_id,
        event_type=event_type,
        occurred_at=datetime.now(tz=UTC) - timedelta(minutes=minutes_ago),
        user_id=user_id,
        session_id=session_id,
        product_sku=sku,
        price=Decimal("3.50") if event_type == "purchase" else None,
        quantity=1 if event_type == "purchase" else None,
    )


def interactions(entity, entity_id):
    return features.get_online(entity, entity_id, ["interaction_count"])["interaction_count"]


def test_enqueue_puts_one_message_per_batch_on_the_events_queue():
    batch_id = enqueue_events([record("e1"), record("e2")])
    assert len(batch_id) == 32
    assert get_redis_connection().llen("events") == 1


def test_a_redelivered_batch_changes_nothing():
    batch = [record("e1", user_id="u-1"), record("e2", user_id="u-1")]
    assert services.apply_event_batch("b1", batch) == 2
    assert services.apply_event_batch("b1", batch) == 0
    assert Event.objects.count() == 2
    assert interactions("user", "u-1") == 2


def test_a_copy_of_an_event_in_another_batch_is_applied_once():
    services.apply_event_batch("b1", [record("e1", user_id="u-1")])
    assert (
        services.apply_event_batch(
            "b2", [record("e1", user_id="u-1"), record("e2", session_id="s-2")]
        )
        == 1
    )
    assert Event.objects.count() == 2
    assert Event.objects.get(event_id="e1").ingest_batch_id == "b1"
    assert interactions("user", "u-1") == 1


def test_a_batch_half_applied_before_a_crash_completes_on_redelivery():
    batch = [record("e1", user_id="u-1"), record("e2", user_id="u-1")]
    services.persist_events(batch, batch_id="b1")  # the crash came after the log write
    assert interactions("user", "u-1") == 0
    assert services.apply_event_batch("b1", batch) == 2
    assert interactions("user", "u-1") == 2


def test_login_carries_the_anonymous_session_history_over_to_the_user():
    services.apply_event_batch("b1", [record("a1"), record("a2"), record("a3", session_id="other")])
    assert interactions("session", "s-1") == 2
    services.apply_event_batch("b2", [record("l1", user_id="u-9")])  # logged in on session s-1
    assert SessionLink.objects.get(session_id="s-1").user_id == "u-9"
    assert interactions("user", "u-9") == 3
    services.apply_event_batch("b3", [record("a4")])  # later anonymous event on the same session
    assert interactions("user", "u-9") == 4
    services.replay_session_history({"s-1": "u-9"})  # replay again: nothing counted twice
    assert interactions("user", "u-9") == 4


def test_anonymous_events_in_the_login_batch_count_once_for_the_user():
    services.apply_event_batch("b1", [record("a1"), record("l1", user_id="u-9"), record("a2")])
    assert interactions("user", "u-9") == 3


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_killing_a_worker_mid_batch_loses_no_event_and_double_counts_none():
    batches = [
        [record(f"k{b}-{n}", user_id=f"u-{n % 7}", sku=f"P{n % 5}") for n in range(100)]
        for b in range(3)
    ]
    for batch in batches:
        enqueue_events(batch)
    # A slow apply and a short visibility timeout, so the kill lands between the log write and
    # the online update, and the unacknowledged batch is redelivered within seconds.
    redelivery_env = {"CELERY_VISIBILITY_TIMEOUT_S": "3", "CELERY_UNACKED_RESTORE_INTERVAL_S": "1"}
    fault_env = {"EVENTS_APPLY_DELAY_S": "5", **redelivery_env}
    with celery_worker(queues="events", extra_env=fault_env) as worker:
        wait_for(lambda: Event.objects.count() >= 100, timeout_s=60)
        assert sum(interactions("user", f"u-{n}") for n in range(7)) == 0  # logged, not applied
        kill_worker(worker)
    assert Event.objects.count() < 300
    with celery_worker(queues="events", concurrency=2, extra_env=redelivery_env):
        wait_for(lambda: sum(interactions("user", f"u-{n}") for n in range(7)) >= 300, timeout_s=90)
    assert Event.objects.count() == 300
    assert sum(interactions("user", f"u-{n}") for n in range(7)) == 300
    views = features.get_online_many("product", [f"P{n}" for n in range(5)], ["views_24h"])
    assert sum(v["views_24h"] for v in views.values()) == 300
    from recs.features.skew import check_skew

    report = check_skew({"user": [f"u-{n}" for n in range(7)], "product": ["P0", "P1"]})
    assert report.mismatches == []
