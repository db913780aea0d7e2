"""recs.features.rebuild: the online store is rebuilt exactly from the event log."""

import time

import pytest
from django.core.management import call_command

from recs import redis_keys
from recs.events.services import apply_event_batch
from recs.features import get_online
from recs.features.skew import check_skew, sample_entities
from tests.recs.features.test_skew import random_stream

pytestmark = pytest.mark.django_db


def test_after_redis_lost_everything_the_rebuild_restores_every_feature(clean_redis):
    apply_event_batch("b", random_stream(400))
    now_s = time.time()
    before = get_online("user", "u-3", now_s=now_s)
    clean_redis.flushdb()  # Redis restarted without persistence
    assert get_online("user", "u-3")["interaction_count"] == 0
    call_command("rebuild_online_features", "--chunk-size", "50")
    assert get_online("user", "u-3", now_s=now_s) == before
    assert check_skew(sample_entities(30)).mismatches == []


def test_rebuilding_twice_counts_nothing_twice():
    apply_event_batch("b", random_stream(200))
    call_command("rebuild_online_features")
    now_s = time.time()
    first = get_online("product", "P3", now_s=now_s)
    call_command("rebuild_online_features")
    assert get_online("product", "P3", now_s=now_s) == first


def test_rebuild_if_outdated_runs_only_for_an_empty_or_old_store(capsys):
    from django.core.management import call_command

    from recs.features.online import layout_is_current, redis_client
    from tests.factories import EventFactory

    EventFactory(event_id="r-1", user_id="u-1", product_sku="P1")
    assert not layout_is_current()
    call_command("rebuild_online_features", "--if-outdated")
    assert layout_is_current() and "Replayed 1 events" in capsys.readouterr().out
    call_command("rebuild_online_features", "--if-outdated")
    assert "nothing to rebuild" in capsys.readouterr().out
    redis_client().set(redis_keys.FEATURE_LAYOUT, "1")  # written by an older release
    call_command("rebuild_online_features", "--if-outdated")
    assert "Replayed 1 events" in capsys.readouterr().out
