"""recs.serving.listing: a shop's listings ordered by popularity, or for one shopper through the
render path's reads, in one or two Redis round trips, and the popular order (saying why) when
there is nothing personal to go by."""

import pytest

from bench.serving import counting_redis_sends
from recs import redis_keys
from recs.candidates import store
from recs.candidates.availability import sync_unavailable
from recs.serving import fallback, listing
from recs.serving import redis as serving_redis
from recs.serving.types import RecommendationContext
from tests.recs.conftest import ranked, touch

CANDLES = ["C1", "C2", "C3", "C4", "C5", "C6"]
EVERYTHING = [*CANDLES, "K1", "K2", "K3", "K4", "K5", "K6", "B1", "B2", "B3", "B4"]


def shopper(category_path="home/candles", **ids) -> RecommendationContext:
    return RecommendationContext(placement="category", category_path=category_path, **ids)


@pytest.fixture
def warm(shop):
    """Connections open, the script loaded, cards and the sold-out set held: a process that has
    served before, so that round trips are counted as a request pays them."""
    sync_unavailable()
    listing.order_for_shopper(shopper(session_id="warm-up"), CANDLES)
    listing.popularity_ranks()
    return shop


def test_ranks_follow_the_lists_in_turn_and_the_unranked_keep_their_order():
    ranks = listing.ranks_of(["C6", "C5"], ["B1", "C6", "K1"])
    assert ranks == {"C6": 0, "C5": 1, "B1": 2, "K1": 3}
    ordered = listing.by_popularity(["A", "K1", "Z", "C5", "C6"], ranks)
    assert ordered == ["C6", "C5", "K1", "A", "Z"]


def test_popularity_is_the_category_list_then_the_global_one(shop):
    ranks = listing.popularity_ranks("home/candles")
    assert listing.by_popularity(CANDLES, ranks) == ["C6", "C5", "C4", "C3", "C1", "C2"]
    everything = listing.by_popularity(EVERYTHING, listing.popularity_ranks())
    assert everything[:4] == ["B1", "K1", "C1", "B2"], "the global best sellers"


def test_popularity_is_one_round_trip_and_survives_redis_going_away(warm):
    with counting_redis_sends() as count:
        listing.popularity_ranks("home/candles")
    assert count.sends == 1
    serving_redis.trip()  # as after a timeout: Redis is skipped for a moment
    ranks = listing.popularity_ranks("home/candles")
    assert list(ranks)[:3] == ["B1", "K1", "C1"], "the global list this process holds"


def test_a_shopper_without_history_gets_the_popular_order_and_is_told_why(shop):
    order = listing.order_for_shopper(shopper(session_id="first-visit"), CANDLES)
    assert (order.personal, order.why_popular, order.tier) == (False, "no_history", "anonymous")
    assert order.skus == ["C6", "C5", "C4", "C3", "C1", "C2"]


def test_what_a_shopper_viewed_reorders_the_category_for_them(warm):
    touch("C1", session_id="viewed-c1")  # content neighbours C4 C5 C2; collaborative C2 C3 K1
    with counting_redis_sends() as count:
        order = listing.order_for_shopper(shopper(session_id="viewed-c1"), CANDLES)
    assert count.sends == 1, "a one-category page: the render path's one round trip"
    assert order.personal and order.tier == "content"
    assert set(order.skus[:3]) == {"C4", "C2", "C5"}, "the neighbours of C1 lead"
    assert sorted(order.skus) == CANDLES, "every product of the listing, once"
    popular = listing.order_for_shopper(shopper(session_id="first-visit"), CANDLES).skus
    assert order.skus != popular


def test_two_shoppers_with_different_histories_get_different_orders(shop):
    store.write_lists([(redis_keys.similar_content_list("C6"), ranked("C3", "C1"))])
    touch("C1", session_id="a")
    touch("C6", session_id="b")
    first = listing.order_for_shopper(shopper(session_id="a"), CANDLES)
    second = listing.order_for_shopper(shopper(session_id="b"), CANDLES)
    assert first.personal and second.personal
    assert first.skus[0] in {"C4", "C2", "C5"} and second.skus[0] == "C3"


def test_a_customers_own_list_leads_for_them(shop):
    touch("B1", user_id="loyal", session_id="loyal-s")
    touch(*["B1"] * 11, user_id="loyal", session_id="loyal-s")  # collaborative tier: 10+
    order = listing.order_for_shopper(
        shopper("kitchen/baking", user_id="loyal", session_id="loyal-s"),
        ["K1", "K2", "K3", "K4", "K5", "K6"],
    )
    assert order.personal and order.tier == "collaborative"
    assert order.skus[:2] == ["K2", "K3"], "the two baking products of loyal's own list"


def test_history_that_names_nothing_here_falls_back_to_popular(shop):
    touch("K1", session_id="baker")  # K1's neighbours are all baking
    order = listing.order_for_shopper(shopper(session_id="baker"), CANDLES)
    assert (order.personal, order.why_popular) == (False, "nothing_related")
    assert order.skus == listing.order_for_shopper(shopper(session_id="new"), CANDLES).skus


def test_category_affinity_lifts_the_categories_a_shopper_likes_on_a_wide_page(warm):
    touch("K5", "K6", session_id="baking-fan")  # no neighbour lists: only their categories
    with counting_redis_sends() as count:
        order = listing.order_for_shopper(shopper("", session_id="baking-fan"), EVERYTHING)
    assert count.sends == 2, "the render path's read, then the affinity"
    assert order.personal
    assert set(order.skus[:6]) == {"K1", "K2", "K3", "K4", "K5", "K6"}
    assert order.skus[:3] == ["K1", "K2", "K3"], "best sellers first within the category"


def test_with_redis_down_the_order_is_popular_from_memory(shop):
    fallback.remember_global_popular(["C2", "C1"])
    serving_redis.trip()
    order = listing.order_for_shopper(shopper(session_id="anyone"), CANDLES)
    assert (order.personal, order.why_popular) == (False, "redis_down")
    assert order.skus == ["C2", "C1", "C3", "C4", "C5", "C6"]
