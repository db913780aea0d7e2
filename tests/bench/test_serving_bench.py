"""bench.serving: the pure helpers behind bench_serving (no timings are asserted)."""

from collections import Counter

from aisle.conf import aisle_settings
from bench.harness import LatencySummary
from bench.serving import (
    PLACEMENTS,
    ContextPool,
    api_query,
    build_contexts,
    paired_differences,
    ratio,
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
