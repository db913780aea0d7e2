"""recs.features.online: incremental, idempotent updates and one-round-trip reads."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from aisle.conf import aisle_settings
from recs import features
from recs.events.records import EventRecord
from recs.features.enrich import enrich
from tests.factories import CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db

# Half past an hour, so "0.1 h ago" is always inside the current UTC hour.
NOW = (time.time() // 3600) * 3600 + 1800


def event(event_id, event_type="view", hours_ago=0.0, **fields):
    defaults = {"user_id": "u-1", "session_id": "s-1", "product_sku": "P1"}
    defaults.update(fields)
    return EventRecord(
        event_id=event_id,
        event_type=event_type,
        occurred_at=datetime.fromtimestamp(NOW - hours_ago * 3600, tz=UTC),
        **defaults,
    )


def apply(*records):
    return features.apply_events(enrich(list(records)), now_s=NOW)


def test_an_event_applied_twice_counts_once():
    first = event("e1")
    assert apply(first) == 1
    assert apply(first) == 0
    assert features.get_online("user", "u-1", ["interaction_count"], now_s=NOW) == {
        "interaction_count": 1.0
    }


def test_windowed_counts_forget_events_older_than_the_window():
    apply(event("e1", hours_ago=0.1), event("e2", hours_ago=2), event("e3", hours_ago=30))
    values = features.get_online("product", "P1", ["views_1h", "views_24h"], now_s=NOW)
    assert values == {"views_1h": 1.0, "views_24h": 2.0}


def test_window_is_whole_utc_hours():
    hour_start = (NOW // 3600) * 3600
    apply(event("e1", hours_ago=(NOW - hour_start + 1) / 3600))  # one second before this hour
    assert features.get_online("product", "P1", ["views_1h"], now_s=NOW)["views_1h"] == 0.0
    assert features.get_online("product", "P1", ["views_24h"], now_s=NOW)["views_24h"] == 1.0


def test_distinct_sessions_over_168_hours():
    apply(
        event("e1", session_id="a", hours_ago=1),
        event("e2", session_id="a", hours_ago=2),
        event("e3", session_id="b", hours_ago=100),
        event("e4", session_id="c", hours_ago=200),
    )
    values = features.get_online("user", "u-1", ["session_count_168h"], now_s=NOW)
    assert values == {"session_count_168h": 2.0}


def test_recently_viewed_is_newest_first_and_distinct():
    apply(
        event("e1", product_sku="A", hours_ago=3),
        event("e2", product_sku="B", hours_ago=2),
        event("e3", product_sku="A", hours_ago=1),
    )
    assert features.get_online("session", "s-1", ["recently_viewed"], now_s=NOW) == {
        "recently_viewed": ["A", "B"]
    }


def test_cart_follows_the_latest_event_per_product_even_out_of_order():
    apply(
        event("e2", "remove_from_cart", product_sku="A", hours_ago=1),
        event("e1", "add_to_cart", product_sku="A", hours_ago=2, quantity=2),
        event("e3", "add_to_cart", product_sku="B", hours_ago=1, quantity=3),
    )
    assert features.get_online("user", "u-1", ["cart"], now_s=NOW) == {"cart": {"B": 3}}
    apply(event("e4", "purchase", product_sku="B", price=Decimal("2.50"), quantity=3))
    assert features.get_online("user", "u-1", ["cart"], now_s=NOW) == {"cart": {}}


def test_trending_score_halves_every_half_life(settings):
    half_life = aisle_settings.TRENDING_HALF_LIFE_HOURS
    apply(event("e1", hours_ago=0), event("e2", hours_ago=half_life))
    score = features.get_online("product", "P1", ["trending_score"], now_s=NOW)["trending_score"]
    view_weight = aisle_settings.EVENT_WEIGHTS["view"]
    assert score == pytest.approx(view_weight * 1.5, rel=1e-9)


def test_category_affinity_uses_the_products_category():
    candles = CategoryFactory(path="home/candles", slug="candles")
    ProductFactory(sku="C1", category=candles)
    apply(event("e1", "purchase", product_sku="C1", price=Decimal("1.00")))
    affinity = features.get_online("user", "u-1", ["category_affinity"], now_s=NOW)
    assert list(affinity["category_affinity"]) == ["home/candles"]


def test_average_cart_value_is_revenue_per_order():
    apply(
        event("e1", "purchase", order_id="o1", price=Decimal("2.00"), quantity=2),
        event("e2", "purchase", order_id="o1", price=Decimal("1.00"), product_sku="P2"),
        event("e3", "purchase", order_id="o2", price=Decimal("3.00"), product_sku="P3"),
    )
    values = features.get_online("user", "u-1", ["avg_cart_value_2160h"], now_s=NOW)
    assert values["avg_cart_value_2160h"] == pytest.approx(4.0)


def test_segment_popularity_per_country_and_device():
    apply(
        event("e1", country="Germany", device="mobile", product_sku="A"),
        event("e2", country="France", product_sku="B"),
    )
    germany = features.get_online("segment", "country:Germany", ["popularity"], now_s=NOW)
    assert list(germany["popularity"]) == ["A"]
    everywhere = features.get_online("segment", "all", ["popularity"], now_s=NOW)
    assert set(everywhere["popularity"]) == {"A", "B"}


def test_unknown_feature_names_are_refused():
    with pytest.raises(KeyError, match="nonsense"):
        features.get_online("user", "u-1", ["nonsense"])


def test_old_history_does_not_count_in_windows_but_counts_in_totals():
    apply(event("e1", hours_ago=24 * 400))
    values = features.get_online(
        "user", "u-1", ["interaction_count", "session_count_168h"], now_s=NOW
    )
    assert values == {"interaction_count": 1.0, "session_count_168h": 0.0}


def test_reading_many_entities_takes_one_round_trip(django_assert_num_queries):
    apply(event("e1", user_id="a"), event("e2", user_id="b"), event("e3", user_id="b"))
    with django_assert_num_queries(0):
        values = features.get_online_many("user", ["a", "b", "c"], ["interaction_count"], now_s=NOW)
    assert {k: v["interaction_count"] for k, v in values.items()} == {"a": 1.0, "b": 2.0, "c": 0.0}


def test_future_events_within_the_allowed_skew_are_kept_but_not_counted_before_their_hour():
    apply(event("e1", hours_ago=-2))
    assert features.get_online("product", "P1", ["views_24h"], now_s=NOW)["views_24h"] == 0.0
    later = NOW + timedelta(hours=3).total_seconds()
    assert features.get_online("product", "P1", ["views_24h"], now_s=later)["views_24h"] == 1.0


def test_an_event_naming_its_user_has_one_marker_a_linked_anonymous_one_two():
    from recs import redis_clients, redis_keys

    client = redis_clients.worker_client()
    own = event("e-own")
    anonymous = event("e-anon", user_id="")
    linked = enrich([event("e-linked", user_id="")], links={"s-1": "u-1"})
    assert features.apply_events(enrich([own, anonymous]) + linked, now_s=NOW) == 3
    markers = sorted(k.decode() for k in client.keys(f"{redis_keys.event_marker('e-')}*"))
    assert markers == [
        redis_keys.event_marker("e-anon"),
        redis_keys.event_marker("e-linked"),
        redis_keys.event_marker("e-linked", ":user"),
        redis_keys.event_marker("e-own"),
    ]
    # The linked event's user share counted for the user, and the replay's marker is the one
    # it set: replaying it again counts nothing.
    assert features.get_online("user", "u-1", ["interaction_count"], now_s=NOW) == {
        "interaction_count": 2.0
    }
    assert features.apply_events(linked, entities=("user",), now_s=NOW) == 0
