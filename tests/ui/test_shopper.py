"""The storefront in a real browser: tiers follow what the shopper does, and it survives outages."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django_redis import get_redis_connection

from recs import features, redis_keys
from recs.candidates import store
from recs.events.records import EventRecord
from recs.events.services import apply_event_batch
from recs.features.rebuild import rebuild_online_store
from recs.serving import fallback
from recs.serving import redis as serving_redis
from recs.shopper_tokens import read_shopper_token
from recs.training.pipeline import train_models
from tests.celery_worker import celery_worker, wait_for
from tests.private_redis import _free_port
from tests.ui.conftest import carousel, carousel_skus, is_events_post

pytestmark = pytest.mark.browser

CUSTOMER, CUSTOMER_PASSWORD = "u1", "shopper-ui-test"
ERROR_WORDS = ("error", "traceback", "exception", "went wrong", "unavailable", "loading")


@pytest.fixture
def customer(shop, shop_history) -> User:
    """Customer u1 of the shop's history (three purchases) with ten more views: thirteen
    interactions in the online store (the collaborative tier starts at ten) and a precomputed
    list from training."""
    now = datetime.now(tz=UTC)
    viewed = ["LANTERN", "CANDLE", "HOLDER", "TIN", "C1", "C3", "K1", "K2", "B1", "B2"]
    views = [
        EventRecord(
            event_id=f"{CUSTOMER}-earlier-{n}",
            event_type="view",
            user_id=CUSTOMER,
            session_id=f"{CUSTOMER}-earlier",
            product_sku=sku,
            occurred_at=now - timedelta(hours=2, minutes=n),
        )
        for n, sku in enumerate(viewed)
    ]
    apply_event_batch(f"{CUSTOMER}-earlier", views, rescore=False)
    rebuild_online_store()  # the history was only logged: replay it all into the online store
    assert features.get_online("user", CUSTOMER, ["interaction_count"])["interaction_count"] == 13
    train_models()
    assert store.read_list(redis_keys.user_list(CUSTOMER)), (
        "training precomputed the customer's list"
    )
    return User.objects.create_user(CUSTOMER, password=CUSTOMER_PASSWORD)


@pytest.mark.worker
def test_tiers_follow_the_shopper_from_anonymous_to_content_to_collaborative(
    browsing, customer, storefront_key
):
    with celery_worker(queues="events"):  # applies the events the pages' JS sends
        shopper = browsing.new_page()
        shopper.goto("/")
        assert carousel(shopper, "home").get_attribute("data-aisle-tier") == "anonymous"
        token = shopper.locator("meta[name='aisle-shopper-token']").get_attribute("content")
        session_id = read_shopper_token(token).session_id
        browsing.screenshot(shopper, "home-anonymous")

        visited: list[str] = []
        for placement in ("home", "product_detail", "product_detail"):
            sku = next(s for s in carousel_skus(shopper, placement) if s not in visited)
            card = carousel(shopper, placement).locator(f"[data-aisle-sku='{sku}'] a")
            with shopper.expect_response(is_events_post) as posted:
                card.click()  # the JS sends the click (and what the page queued) as it leaves
            shopper.wait_for_url(f"**/p/{sku}/")
            assert posted.value.status == 202
            visited.append(sku)

        def viewed_in_session() -> bool:
            online = features.get_online("session", session_id, ["recently_viewed"])
            return set(visited) <= set(online["recently_viewed"])

        wait_for(viewed_in_session, timeout_s=30)  # the worker applied the page views

        first_timer = browsing.new_page()  # the same page for a visitor with no history
        first_timer.goto(f"/p/{visited[0]}/")
        assert carousel(first_timer, "product_detail").get_attribute("data-aisle-tier") == (
            "anonymous"
        )
        shopper.goto(f"/p/{visited[0]}/")
        section = carousel(shopper, "product_detail")
        assert section.get_attribute("data-aisle-tier") == "content"
        shown = carousel_skus(shopper, "product_detail")
        assert shown and shown != carousel_skus(first_timer, "product_detail"), (
            "You might also like follows what this shopper viewed"
        )
        browsing.screenshot(shopper, "product-content-tier")

        shopper.get_by_role("link", name="Sign in").click()
        shopper.get_by_label("Customer number").fill(CUSTOMER)
        shopper.get_by_label("Password").fill(CUSTOMER_PASSWORD)
        shopper.get_by_role("button", name="Sign in").click()
        shopper.wait_for_url(f"**/p/{visited[0]}/")
        assert f"Customer {CUSTOMER}" in shopper.locator(".site-nav").inner_text()

        shopper.goto("/")
        section = carousel(shopper, "home")
        assert section.get_attribute("data-aisle-tier") == "collaborative"
        # Collaborative filtering: the customer's own list, re-ranked with what they viewed.
        assert section.get_attribute("data-aisle-source") in ("user_list", "viewed_neighbours")
        own_list = {sku for sku, _ in store.read_list(redis_keys.user_list(CUSTOMER))}
        shown = carousel_skus(shopper, "home")
        assert own_list & set(shown), "products of the customer's precomputed list"
        assert not {"LANTERN", "CANDLE", "HOLDER"} & set(shown), "what they bought is not shown"
        browsing.screenshot(shopper, "home-collaborative")


def test_with_no_worker_and_redis_unreachable_the_storefront_still_recommends(
    browsing, shop, storefront_key, settings
):
    shopper = browsing.new_page()
    shopper.goto("/")  # Redis answers: the render path keeps a copy of global popularity
    assert fallback.global_popular()[:3] == ["B1", "K1", "C1"]
    # No worker runs in this test: what the page's JS sent waits in the queue, unapplied.
    wait_for(lambda: get_redis_connection().llen("events") > 0, timeout_s=10)

    settings.AISLE = {
        **settings.AISLE,
        "REDIS_URL": f"redis://127.0.0.1:{_free_port()}/0",
    }  # nothing listens there
    serving_redis.reset()
    for path, placement in (("/p/C1/", "product_detail"), ("/c/home/candles/", "category"),
                            ("/", "home")):  # fmt: skip
        response = shopper.goto(path)
        assert response.status == 200, path
        section = carousel(shopper, placement)
        assert section.get_attribute("data-aisle-source") == "fallback", path
        skus = carousel_skus(shopper, placement)
        assert skus and set(skus) <= set(fallback.global_popular()), path
        text = shopper.locator("main").inner_text().lower()
        assert not [word for word in ERROR_WORDS if word in text], path
        assert shopper.locator("[aria-busy='true'], .spinner, .loading").count() == 0, path
    assert carousel_skus(shopper, "home")[0] == "B1", "the most popular product leads"
    browsing.screenshot(shopper, "home-redis-unreachable")
