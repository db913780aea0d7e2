"""recs.candidates.rescore: a shopper's events re-score their list once per burst."""

from datetime import UTC, datetime

import pytest

from recs import redis_keys
from recs.candidates import store
from recs.candidates.rescore import rescore_user
from recs.candidates.tasks import RESCORE_USERS_PER_TASK, schedule_rescores
from recs.events.records import EventRecord
from recs.events.services import apply_event_batch
from recs.training.pipeline import train_models
from recs.training.registry import serving_learner
from tests.recs.conftest import touch

pytestmark = pytest.mark.django_db


def queued(queue="scoring") -> int:
    return store.writer_client().llen(queue)


def test_a_burst_of_events_schedules_one_rescore_per_user():
    assert schedule_rescores(["u1", "u2", ""]) == 2
    assert schedule_rescores(["u1"]) == 0, "u1 already waits for one"
    assert queued() == 1, "one message carries both users"


def test_many_users_go_in_a_few_messages_not_one_each():
    users = [f"u{n}" for n in range(RESCORE_USERS_PER_TASK * 2 + 1)]
    assert schedule_rescores(users) == len(users)
    assert queued() == 3
    assert schedule_rescores(users) == 0
    assert queued() == 3


def test_applied_events_schedule_rescores_but_historic_imports_do_not(shop_history):
    def batch(event_id, user):
        return [EventRecord(event_id=event_id, event_type="view", product_sku="BAG",
                            user_id=user, occurred_at=datetime.now(tz=UTC))]  # fmt: skip

    apply_event_batch("b-1", batch("x-1", "live-user"))
    assert queued() == 1
    apply_event_batch("b-2", batch("x-2", "imported-user"), rescore=False)
    assert queued() == 1


def test_rescore_puts_what_the_user_just_touched_to_work(shop_history):
    train_models(["hybrid"])
    before = [sku for sku, _ in store.read_list(redis_keys.user_list("u0"))]  # a bag buyer
    assert "LANTERN" in before
    touch(*["LANTERN"] * 10, user_id="u0", session_id="s-u0")
    assert rescore_user("u0", serving_learner) is True
    after = [sku for sku, _ in store.read_list(redis_keys.user_list("u0"))]
    assert "LANTERN" not in after, "the model now knows they have looked at it"
    assert set(after) == {"CANDLE", "HOLDER"}, "its neighbours stay"
    assert [sku for sku, _ in store.read_list(redis_keys.last_known_good_list("u0"))] == before


def test_users_below_the_collaborative_tier_are_not_rescored(shop_history):
    train_models(["hybrid"])
    touch("LANTERN", user_id="newbie", session_id="s-n")
    assert rescore_user("newbie", serving_learner) is False
    assert store.read_list(redis_keys.user_list("newbie")) == []
