"""One Redis round trip per request: the script's reads, its neighbour anchors, the sold-out set
held in process and kept current by its change log, the rate limit counted alongside."""

import pytest

from bench.serving import counting_redis_sends
from recs import redis_keys
from recs.candidates import store
from recs.candidates.availability import CHANGES_KEPT, set_unavailable, sync_unavailable
from recs.serving import availability
from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext, RequestCounter, RideAlong
from tests.recs.conftest import ranked, touch

URL = "/api/v1/recommendations"


def ask(placement="home", ride_along=None, **fields):
    return recommend(RecommendationContext(placement=placement, **fields), ride_along)


def skus(result):
    return [item.sku for item in result.items]


def round_trips(call):
    with counting_redis_sends() as count:
        result = call()
    return count.sends, result


@pytest.fixture
def warm(shop):
    """Configuration, cards and the sold-out set loaded once, as in a process that has served."""
    sync_unavailable()
    ask(session_id="warm-up")
    return shop


@pytest.mark.parametrize(
    "fields",
    [
        {"session_id": "new", "country": "Germany", "device": "mobile"},
        {"session_id": "s-1", "product_sku": "C1"},
        {"user_id": "loyal", "session_id": "s-9", "cart_skus": ("C1",)},
    ],
    ids=["anonymous", "product page", "signed-in with a cart"],
)
def test_a_cache_hit_is_one_round_trip(warm, fields):
    touch("C1", "K1", session_id=fields["session_id"], user_id=fields.get("user_id", ""))
    sends, result = round_trips(lambda: ask(**fields))
    assert result.items and result.source != "fallback"
    assert sends == 1


def test_the_script_brings_the_neighbours_of_what_the_shopper_viewed(warm):
    touch("K1", session_id="s-2")
    sends, result = round_trips(lambda: ask(session_id="s-2"))
    assert sends == 1
    assert {"K2", "K3", "K4"} & set(skus(result)), "content neighbours of the viewed K1"
    assert result.tier == "content"


def test_the_bought_together_lists_of_the_cart_come_in_the_same_trip(warm):
    touch("C1", event_type="add_to_cart", session_id="s-3")
    sends, result = round_trips(lambda: ask("cart", session_id="s-3"))
    assert sends == 1
    assert skus(result)[:2] == ["B4", "K6"], "bought together with the stored cart's C1"


def test_a_sell_out_reaches_the_held_set_through_the_change_log(warm):
    assert "B1" in skus(ask(session_id="new"))
    version = int(store.writer_client().hget(redis_keys.UNAVAILABLE_STATE, "version"))
    set_unavailable(["B1"])
    sends, result = round_trips(lambda: ask(session_id="new"))
    assert sends == 1 and "B1" not in skus(result)
    assert availability.held_version()[1] == str(version + 1)
    set_unavailable([], ["B1"])
    assert "B1" in skus(ask(session_id="new")), "back in stock, back on the page"


def test_a_process_far_behind_reloads_the_whole_set(warm):
    for n in range(availability.MAX_DELTA + 3):
        set_unavailable([f"GONE{n}"])
    set_unavailable(["K1"])
    result = ask(session_id="new", limit=20)
    assert "K1" not in skus(result)
    assert availability.held_version()[1] == str(
        store.writer_client().hget(redis_keys.UNAVAILABLE_STATE, "version").decode()
    )
    assert {"GONE0", "K1"} <= availability.read(store.writer_client())


def test_the_change_log_is_capped(warm):
    for n in range(0, CHANGES_KEPT + 200, 500):
        set_unavailable([f"X{i}" for i in range(n, n + 500)])
    assert store.writer_client().xlen(redis_keys.UNAVAILABLE_CHANGES) <= CHANGES_KEPT + 200


def test_periodic_sync_writes_only_the_difference_and_keeps_the_epoch(warm):
    client = store.writer_client()
    epoch = client.hget(redis_keys.UNAVAILABLE_STATE, "epoch")
    version = int(client.hget(redis_keys.UNAVAILABLE_STATE, "version"))
    warm["K2"].stock.on_hand = 0
    warm["K2"].stock.save()
    client.srem(redis_keys.UNAVAILABLE, "K2")  # the commit-time update was lost
    assert sync_unavailable() == 1
    assert client.hget(redis_keys.UNAVAILABLE_STATE, "epoch") == epoch
    assert int(client.hget(redis_keys.UNAVAILABLE_STATE, "version")) == version + 1
    assert "K2" not in skus(ask(session_id="new", limit=20))


def test_a_rebuilt_set_has_a_new_epoch_and_readers_reload_it(warm):
    client = store.writer_client()
    epoch = client.hget(redis_keys.UNAVAILABLE_STATE, "epoch")
    client.delete(redis_keys.UNAVAILABLE_STATE)
    warm["C1"].stock.on_hand = 0
    warm["C1"].stock.save()
    sync_unavailable()
    assert client.hget(redis_keys.UNAVAILABLE_STATE, "epoch") != epoch
    assert "C1" not in skus(ask(session_id="new", limit=20))
    assert (
        availability.held_version()[0]
        == client.hget(redis_keys.UNAVAILABLE_STATE, "epoch").decode()
    )


def test_the_rate_limit_counter_rides_along(warm):
    counter = RequestCounter(redis_keys.throttle_count("TEST", "ip-1", 1), 60)
    store.writer_client().set("aisle-test:version", "7")
    ride_along = RideAlong(counter, read_keys=("aisle-test:version", "aisle-test:none"))
    sends, _ = round_trips(lambda: ask(session_id="new", ride_along=ride_along))
    assert sends == 1 and counter.value == 1
    assert ride_along.values == {"aisle-test:version": b"7", "aisle-test:none": None}
    ask(session_id="new", ride_along=RideAlong(counter))
    assert counter.value == 2
    assert 0 < store.writer_client().ttl(counter.key) <= 60


def test_the_api_is_one_round_trip_and_refuses_over_the_limit_without_redis(warm, client, settings):
    settings.AISLE = {**settings.AISLE, "RECOMMENDATIONS_THROTTLE_RATE": "3/min"}
    statuses = []
    for _ in range(3):
        sends, response = round_trips(lambda: client.get(URL, {"placement": "home"}))
        statuses.append(response.status_code)
        assert sends == 1, "the throttle counts in the render path's round trip"
    sends, over = round_trips(lambda: client.get(URL, {"placement": "home"}))
    assert statuses == [200, 200, 200] and over.status_code == 429
    sends, again = round_trips(lambda: client.get(URL, {"placement": "home"}))
    assert again.status_code == 429 and sends == 0, "refused from memory for the window"


def test_a_rejected_query_still_counts_against_the_limit(warm, client, settings):
    settings.AISLE = {**settings.AISLE, "RECOMMENDATIONS_THROTTLE_RATE": "2/min"}
    assert client.get(URL, {"placement": "nowhere"}).status_code == 400
    assert client.get(URL, {"placement": "home", "limit": "0"}).status_code == 400
    assert client.get(URL, {"placement": "home"}).status_code == 429


def test_lists_written_as_json_before_the_new_format_still_serve(warm):
    legacy = b'[["K5",2.0],["K4",1.0]]'
    store.writer_client().set(redis_keys.similar_cf_list("C2"), legacy)
    assert store.decode_list(legacy) == [("K5", 2.0), ("K4", 1.0)]
    result = ask("product_detail", session_id="new", product_sku="C2")
    assert skus(result)[:2] == ["K5", "K4"]


def test_stored_lists_are_skus_then_scores():
    value = store.encode_list(ranked("A", "B", "C"))
    assert value == "\x1eA\x1fB\x1fC\x1e3.0\x1f2.0\x1f1.0"
    assert store.decode_skus(value.encode()) == ["A", "B", "C"]
    assert store.decode_list(value) == [("A", 3.0), ("B", 2.0), ("C", 1.0)]
    assert store.decode_skus(store.encode_list([]).encode()) == []
    assert store.encode_list([("BAD\x1fSKU", 1.0), ("OK", 0.5)]) == "\x1eOK\x1e0.5"


def test_a_secret_key_is_held_in_process_and_costs_no_round_trip_of_its_own(warm, client):
    from recs.api_keys import create_api_key

    _, reader = create_api_key("shop server", "secret", ["read"])
    query = {"placement": "home", "user_id": "loyal"}
    first = client.get(URL, query, HTTP_AUTHORIZATION=f"Bearer {reader}")
    assert first.status_code == 200 and first.json()["items"]
    sends, again = round_trips(
        lambda: client.get(URL, query, HTTP_AUTHORIZATION=f"Bearer {reader}")
    )
    assert again.status_code == 200 and sends == 1


def test_a_revoked_key_held_in_process_is_refused_on_its_next_request(warm, client):
    from recs.api_keys import create_api_key, revoke_keys

    key, reader = create_api_key("shop server", "secret", ["read"])
    query = {"placement": "home", "user_id": "loyal"}
    assert client.get(URL, query, HTTP_AUTHORIZATION=f"Bearer {reader}").status_code == 200
    revoke_keys([key])
    assert client.get(URL, query, HTTP_AUTHORIZATION=f"Bearer {reader}").status_code == 401


def test_a_key_whose_read_scope_was_removed_is_checked_again(warm, client):
    from recs.api_keys import announce_key_change, create_api_key

    key, reader = create_api_key("shop server", "secret", ["read", "write"])
    query = {"placement": "home", "user_id": "loyal"}
    assert client.get(URL, query, HTTP_AUTHORIZATION=f"Bearer {reader}").status_code == 200
    key.scopes = ["write"]
    key.save()
    announce_key_change()  # as the admin's save does
    assert client.get(URL, query, HTTP_AUTHORIZATION=f"Bearer {reader}").status_code == 403


def test_replies_applied_out_of_order_never_take_the_held_set_back():
    availability.clear()
    old, new = b"00000000000000000001-a", b"00000000000000000002-b"
    assert availability.apply([new, b"3", b"full", [b"A", b"B"]]) == {"A", "B"}
    assert availability.apply([old, b"9", b"full", [b"Z"]]) == {"A", "B"}, "an older epoch"
    stale_delta = [old, b"10", b"delta", [[b"10-0", [b"out", b"Y", b"in", b""]]]]
    assert availability.apply(stale_delta) == {"A", "B"}
    delta = [new, b"5", b"delta", [[b"4-0", [b"out", b"C", b"in", b"A"]],
                                   [b"5-0", [b"out", b"", b"in", b"B"]]]]  # fmt: skip
    assert availability.apply(delta) == {"C"}
    assert availability.held_version() == (new.decode(), "5")
    replayed = [new, b"5", b"delta", [[b"5-0", [b"out", b"B", b"in", b""]]]]
    assert availability.apply(replayed) == {"C"}, "another thread applied it already"
    assert availability.apply([b""]) is None
    availability.clear()
