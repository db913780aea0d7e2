"""bench.serving: the pure helpers behind bench_serving and its Redis counting (no timings are
asserted)."""

import os
from collections import Counter

import redis

from aisle.conf import aisle_settings
from bench.harness import LatencySummary
from bench.serving import (
    PLACEMENTS,
    ContextPool,
    RedisServerStats,
    Samples,
    api_query,
    build_contexts,
    counting_redis,
    describe_commands,
    paired_differences,
    parse_redis_stats,
    ratio,
    redis_work_between,
    time_calls,
)
from recs.serving.blend_table import TIERS

POOL = ContextPool(
    heavy_users=["17841", "14911", "14606"],
    products=["85123A", "22423", "47566", "84879", "22720", "21212", "85099B"],
    categories=["home/candles-lights", "kitchen-dining/baking"],
    countries=["United Kingdom", "Germany", "France"],
)


def test_build_contexts_gives_each_tier_every_placement_with_its_history():
    contexts = build_contexts(POOL, per_tier=8)

    assert Counter(c.tier for c in contexts) == {tier: 8 for tier in TIERS}
    for tier in TIERS:
        placements = {c.context.placement for c in contexts if c.tier == tier}
        assert placements == set(PLACEMENTS)
    for bench in contexts:
        context = bench.context
        if bench.tier == "anonymous":
            assert not context.user_id and not bench.views
        elif bench.tier == "content":
            assert not context.user_id
            assert 1 <= len(bench.views) < aisle_settings.TIER_COLLABORATIVE_MIN_INTERACTIONS
        else:
            assert context.user_id in POOL.heavy_users
        assert (context.placement == "product_detail") == bool(context.product_sku)
        assert (context.placement == "category") == bool(context.category_path)
        assert (context.placement == "cart") == bool(context.cart_skus)
    assert len({c.client_ip for c in contexts}) == len(contexts)
    assert len({c.context.session_id for c in contexts}) == len(contexts)


def test_build_contexts_is_deterministic_for_a_seed():
    assert build_contexts(POOL, 5, seed=3) == build_contexts(POOL, 5, seed=3)


def test_percentiles_and_ratios():
    summary = LatencySummary.of([n / 1000 for n in range(1, 101)])  # 1..100 ms

    assert (summary.count, summary.p50_ms, summary.max_ms) == (100, 50.5, 100.0)
    assert summary.p95_ms == 95.0 and summary.p99_ms == 99.0
    assert LatencySummary.of([]).count == 0
    assert paired_differences([0.003, 0.002], [0.001, 0.0025]) == [0.002, -0.0005]
    assert ratio(3.0, 1.5) == 2.0 and ratio(1.0, 0.0) == float("inf")


def test_api_query_sends_only_what_the_page_knows():
    bench = next(c for c in build_contexts(POOL, 4) if c.context.placement == "cart")

    query = api_query(bench.context)

    assert query["placement"] == "cart" and query["cart"] == ",".join(bench.context.cart_skus)
    assert "product_id" not in query and "category" not in query
    assert query["limit"] == "8"


def test_redis_work_between_leaves_out_the_info_snapshots():
    before = parse_redis_stats({
        "redis_version": "7.0.15", "total_reads_processed": 10,
        "cmdstat_get": {"calls": 5, "usec": 9}, "cmdstat_info": {"calls": 2},
    })  # fmt: skip
    after = parse_redis_stats({
        "total_reads_processed": 15, "cmdstat_get": {"calls": 8}, "cmdstat_info": {"calls": 3},
        "cmdstat_evalsha": {"calls": 2}, "cmdstat_client|setinfo": {"calls": 1},
    })  # fmt: skip

    work = redis_work_between(before, after)

    assert before == RedisServerStats(Counter(get=5, info=2), 10)
    assert work.calls == {"get": 3, "evalsha": 2, "client|setinfo": 1}  # the first INFO is gone
    assert work.reads == 4  # the second INFO's own read is gone
    assert redis_work_between(after, after) == RedisServerStats(Counter(), 0)


def test_samples_give_round_trips_and_commands_per_request():
    samples = Samples(
        seconds=[0.001] * 4, outcomes=["a", "a", "b", "b"], redis_sends=[1, 1, 1, 2],
        redis_work=RedisServerStats(Counter(evalsha=4, hincrby=3, xadd=1), 5),
    )  # fmt: skip

    assert samples.round_trips() == 1.25
    assert samples.round_trips(lambda outcome: outcome == "a") == 1.0
    assert samples.max_round_trips == 2
    assert samples.commands_per_request == 2.0
    assert samples.top_commands(2) == [("evalsha", 1.0), ("hincrby", 0.75)]
    assert describe_commands(samples.top_commands(2)) == "evalsha 1.00, hincrby 0.75"
    assert Samples().commands_per_request is None and describe_commands([]) == "none"


def private_redis() -> redis.Redis:
    """A client of the test suite's private redis-server (tests.private_redis)."""
    return redis.Redis.from_url(os.environ["REDIS_URL"])


def test_counting_redis_counts_round_trips_here_and_commands_at_the_server():
    client, stats = private_redis(), private_redis()
    script = client.register_script("redis.call('incr', KEYS[1]) return redis.call('get', KEYS[1])")
    client.script_load(script.script)  # so the call below is one EVALSHA
    client.ping()  # connected before counting

    with counting_redis(stats) as count:
        client.set("bench:n", 1)
        pipe = client.pipeline(transaction=False)
        pipe.incr("bench:n")  # sent as INCRBY
        pipe.get("bench:n")
        pipe.execute()
        assert script(keys=["bench:n"]) == b"3"

    assert count.sends == 3  # a command, a pipeline, a script call
    # Redis 7 counts the script's own commands beside its EVALSHA.
    assert count.work.calls == {"set": 1, "incrby": 1, "incr": 1, "get": 2, "evalsha": 1}
    assert count.work.reads == 3
    client.get("bench:n")
    assert count.sends == 3  # counting ends with the block


def test_time_calls_counts_each_calls_round_trips():
    client = private_redis()
    client.ping()

    def call(i: int) -> int:
        for _ in range(i % 3):
            client.incr("bench:calls")
        return i

    samples = time_calls(call, requests=6, warmup=2, max_seconds=60, redis_stats=private_redis())

    assert samples.redis_sends == [2, 0, 1, 2, 0, 1]  # calls 2..7 after the warm-up
    assert samples.redis_work.calls == {"incrby": 6}  # redis-py sends INCR as INCRBY
    assert time_calls(call, requests=3, warmup=0, max_seconds=60).redis_work is None
