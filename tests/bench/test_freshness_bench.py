"""The pure helpers behind bench_freshness (no timings are asserted)."""

from datetime import UTC, datetime
from decimal import Decimal

from bench.flash_sale import (
    ListWatch,
    RefillTracker,
    WaveResult,
    available_count,
    lists_to_refill,
    needs_refill,
    servings_after_stockout,
    servings_before,
    servings_in_flight,
    split_waves,
)
from bench.freshness import TrialPlan, count_fallbacks, plan_trials, reflects, viewed_reasons
from bench.freshness_report import without_double_blanks
from bench.stream import answer_skus, purchase_payload, rank_in, replay_offsets
from bench.trending import click_burst, first_time_within
from recs import redis_keys
from recs.candidates import store
from recs.events.records import EventRecord


def test_replay_runs_history_faster_and_cuts_quiet_spells():
    # Events at 0 s, 100 s, 100 s and, after a night, 50,000 s of history.
    offsets = replay_offsets([0.0, 100.0, 100.0, 50_100.0], speed=100, max_gap_s=300)

    assert offsets == [0.0, 1.0, 1.0, 4.0]


def test_a_historic_purchase_is_posted_as_new_with_a_fresh_event_id():
    record = EventRecord(
        event_id="uci-536365-2", event_type="purchase", user_id="17850", session_id="536365",
        product_sku="85123A", quantity=6, price=Decimal("2.55"), order_id="536365",
        country="United Kingdom", occurred_at=datetime(2010, 12, 1, 8, 26, tzinfo=UTC),
    )  # fmt: skip

    event = purchase_payload(record, "replay-r0-")

    assert event["event_id"] == "replay-r0-uci-536365-2"
    assert "ts" not in event  # the API stamps it now: history this old would be rejected
    assert event["price"] == "2.55" and event["quantity"] == 6
    assert event["context"] == {"country": "United Kingdom"}


def test_answer_helpers_read_skus_and_positions():
    answer = {"items": [{"sku": "A"}, {"sku": "B"}]}

    assert answer_skus(answer) == ["A", "B"]
    assert rank_in(answer, "B") == 1
    assert rank_in(answer, "C") is None
    assert answer_skus({"error": {"code": "throttled"}}) == []
    assert answer_skus(None) == []


def test_an_answer_reflects_a_click_only_with_the_tier_and_a_viewed_reason():
    plan = TrialPlan("content", "s-1", "", "85123A", "Heart Holder")
    similar, popular_with = viewed_reasons("Heart Holder")

    assert reflects({"tier": "content", "items": [{"sku": "X", "reason": similar}]}, plan)
    assert reflects({"tier": "content", "items": [{"sku": "X", "reason": popular_with}]}, plan)
    assert not reflects({"tier": "anonymous", "items": [{"sku": "X", "reason": similar}]}, plan)
    other = viewed_reasons("Other Product")[0]
    assert not reflects({"tier": "content", "items": [{"sku": "X", "reason": other}]}, plan)
    assert not reflects(None, plan)


def test_trials_alternate_kinds_and_give_each_customer_one_trial():
    plans = plan_trials(
        6, heavy_users=["u1", "u2", "u3"], content_products=["A", "B"], cf_products=["C"],
        titles={"A": "Title A", "C": "Title C"},
    )  # fmt: skip

    assert [p.kind for p in plans] == ["content", "collaborative"] * 3
    assert sorted(p.user_id for p in plans if p.kind == "collaborative") == ["u1", "u2", "u3"]
    assert all(p.user_id == "" for p in plans if p.kind == "content")
    assert len({p.session_id for p in plans}) == 6
    assert {p.sku for p in plans if p.kind == "collaborative"} == {"C"}


def test_trials_fall_back_to_content_when_no_customer_is_left():
    plans = plan_trials(4, heavy_users=["u1"], content_products=["A"], cf_products=["C"],
                        titles={})  # fmt: skip

    assert [p.kind for p in plans] == ["content", "collaborative", "content", "content"]


def test_fallback_answers_are_counted_for_the_load_report():
    assert count_fallbacks(200, b'{"source":"fallback","items":[]}') == {"fallback": 1}
    assert count_fallbacks(200, b'{"source":"user_list","items":[]}') == {}


def test_waves_take_the_ranking_in_order():
    assert split_waves(list("ABCDEFG"), 3) == [["A", "B", "C"], ["D", "E"], ["F", "G"]]
    assert split_waves(["A"], 3) == [["A"]]


def test_a_list_needs_a_refill_when_the_sale_leaves_it_short():
    ranked = [("A", 3.0), ("B", 2.0), ("OUT", 1.5), ("C", 1.0)]

    watch = needs_refill(ranked, size=3, unavailable_before={"OUT"}, sold={"B"})
    assert watch == ListWatch("", target=3, length_before=4)
    assert available_count(ranked, {"OUT", "B"}) == 2
    # A list shorter than its size must get back to what it held, not to its size.
    short = needs_refill([("A", 1.0), ("B", 0.5)], size=50, unavailable_before=set(), sold={"A"})
    assert short == ListWatch("", target=2, length_before=2)
    assert needs_refill(ranked, size=3, unavailable_before=set(), sold={"Z"}) is None


def test_servings_count_only_requests_sent_after_the_commit():
    # (sent, answered, status, skus, page)
    served = [
        (10.0, 10.1, 200, ("A", "B"), 0),  # before the wave: fine
        (19.9, 20.2, 200, ("A",), 1),  # raced the commit: allowed
        (20.5, 20.6, 200, ("B", "C"), 2),  # after, without A
        (21.0, 21.1, 200, ("A",), 3),  # after, with A: a violation
    ]
    wave = WaveResult(1, ["A"], called_at=20.0, committed_at=20.1)

    assert servings_after_stockout(served, {"A": 20.1}) == [(21.0, "A", 20.1)]
    assert servings_in_flight(served, wave) == 1
    assert servings_before(served, wave) == 1


def test_refill_is_the_write_after_which_a_list_holds_its_length_again():
    class Watcher:
        writes: list[tuple[float, str]] = []

    watcher = Watcher()
    tracker = RefillTracker(watcher)
    wave = WaveResult(1, ["B"], called_at=100.0, committed_at=100.5)
    tracker.add_wave(
        wave,
        [
            ListWatch(redis_keys.POPULAR_ALL, 2, 3),
            ListWatch(redis_keys.bought_together_list("X"), 2, 2),
        ],
        {"B"},
    )
    store.write_lists([(redis_keys.POPULAR_ALL, [("A", 3.0), ("B", 2.0), ("C", 1.0)])])
    store.write_lists([(redis_keys.bought_together_list("X"), [("A", 1.0), ("B", 0.5)])])
    watcher.writes += [
        (100.2, redis_keys.POPULAR_ALL),
        (101.5, redis_keys.POPULAR_ALL),
        (102.0, redis_keys.bought_together_list("X")),
    ]

    tracker.process()
    tracker.close()

    assert wave.refilled_s == [1.0]  # A and C are available: full again at the write after
    assert wave.short_s == [1.5]  # rewritten no longer than before: nothing more to add
    assert wave.not_rewritten == 0 and wave.all_done_s == 1.5


def test_the_lists_a_sale_leaves_short_are_found_in_the_stored_format(settings):
    settings.AISLE = {**settings.AISLE, "SIMILAR_ITEMS_SIZE": 2}
    store.write_lists([
        (redis_keys.similar_cf_list("X"), [("A", 3.0), ("B", 2.0)]),
        (redis_keys.similar_cf_list("Y"), [("C", 3.0), ("D", 2.0)]),
        (redis_keys.similar_cf_list("Z"), [("AB", 3.0), ("D", 2.0)]),
    ])  # fmt: skip
    keys = {watch.key for watch in lists_to_refill(["B"], set())}
    assert redis_keys.similar_cf_list("X") in keys
    assert not keys & {redis_keys.similar_cf_list("Y"), redis_keys.similar_cf_list("Z")}


def test_a_list_never_rewritten_is_reported():
    class Watcher:
        writes: list[tuple[float, str]] = []

    tracker = RefillTracker(Watcher())
    wave = WaveResult(1, ["B"], called_at=1.0, committed_at=1.1)
    tracker.add_wave(wave, [ListWatch(redis_keys.user_list("1"), 2, 3)], {"B"})
    tracker.process()
    tracker.close()

    assert wave.not_rewritten == 1 and wave.all_done_s is None


def test_a_burst_is_one_click_per_new_shopper():
    events = click_burst(3, "16052", "t")

    assert [e["product_id"] for e in events] == ["16052"] * 3
    assert len({e["session_id"] for e in events}) == 3
    assert len({e["event_id"] for e in events}) == 3


def test_time_to_a_rank_is_the_first_sample_inside_it():
    samples = [(0.1, None), (0.2, 60), (0.3, 12), (0.4, 4)]

    assert first_time_within(samples, 50) == 0.3
    assert first_time_within(samples, 10) == 0.4
    assert first_time_within(samples, 3) is None


def test_report_lines_lose_doubled_blanks():
    assert without_double_blanks(["a", "", "", "b", ""]) == ["a", "", "b", ""]
