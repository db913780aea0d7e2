"""recs.candidates.refresh: lists regain their length after a sell-out; restocks re-enter."""

import pytest

from merch.services.catalog import set_stock
from recs import redis_keys
from recs.candidates import store
from recs.candidates.refresh import fill_past_unavailable, refresh_lists_holding
from recs.candidates.tasks import refresh_lists_task
from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext
from recs.training.pipeline import train_models
from recs.training.registry import serving_learner

pytestmark = pytest.mark.django_db(transaction=True)


def available_length(key, unavailable=frozenset()):
    return sum(1 for sku, _ in store.read_list(key) if sku not in unavailable)


def test_fill_past_unavailable_keeps_walking_until_size_products_are_available():
    ranked = [("A", 5.0), ("B", 4.0), ("C", 3.0), ("D", 2.0), ("E", 1.0)]
    assert fill_past_unavailable(ranked, 2, {"A", "C"}) == ranked[:4]
    assert fill_past_unavailable(ranked, 9, set()) == ranked


def test_a_sell_out_refills_every_list_that_held_the_product(shop_history, settings):
    from merch.models import Product

    settings.AISLE = {**settings.AISLE, "SIMILAR_ITEMS_SIZE": 2}
    settings.AISLE = {**settings.AISLE, "POPULAR_LIST_SIZE": 2}
    train_models(["content", "popularity"])
    client = store.writer_client()
    holding = [
        key.decode()
        for pattern in (redis_keys.similar_content_list("*"), redis_keys.POPULAR_PREFIX + "*")
        for key in client.scan_iter(pattern)
        if "CANDLE" in dict(store.read_list(key.decode()))
    ]
    assert holding, "some lists hold CANDLE"
    queued_before = client.llen("scoring")
    set_stock(Product.objects.get(sku="CANDLE"), on_hand=0)
    assert client.llen("scoring") == queued_before + 1, "the commit queued a refresh"
    assert refresh_lists_task(["CANDLE"]) >= len(holding)  # what the worker runs
    for key in holding:
        assert "CANDLE" in dict(store.read_list(key)), "kept in place for a restock"
        assert available_length(key, {"CANDLE"}) == 2, f"{key} holds 2 available again"
    assert refresh_lists_task(["CANDLE"]) == 0, "idempotent: nothing left to refill"


def test_restocked_product_is_served_again_without_retraining(shop_history, default_placements):
    from merch.models import Product

    train_models(["hybrid", "content", "bought_together", "popularity"])
    context = RecommendationContext(placement="product_detail", product_sku="LANTERN", limit=5)
    assert "CANDLE" in [item.sku for item in recommend(context).items]
    candle = Product.objects.get(sku="CANDLE")
    set_stock(candle, on_hand=0)
    assert "CANDLE" not in [item.sku for item in recommend(context).items]
    refresh_lists_holding(["CANDLE"], serving_learner)
    set_stock(candle, on_hand=4)
    assert "CANDLE" in [item.sku for item in recommend(context).items]


def test_the_periodic_repair_queues_what_a_redis_without_persistence_lost(shop_history):
    from recs.candidates.tasks import heal_lost_redis_data, sync_availability_task
    from recs.features.online import mark_layout_current

    train_models(["popularity"])
    mark_layout_current()
    assert heal_lost_redis_data() == [], "nothing lost"
    store.writer_client().flushdb()  # restarted, empty
    sync_availability_task()
    assert store.writer_client().llen("training") == 2, "lists refill and feature rebuild queued"
    assert heal_lost_redis_data() == [], "queued once, not at every beat"
