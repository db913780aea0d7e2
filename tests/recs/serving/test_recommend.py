"""recs.serving.recommend: tiers, filters, rules, diversity and the fallback chain."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from merch.models import MerchandisingRule, Placement
from merch.services.catalog import set_products_active, set_stock
from merch.services.merchandising import save_merchandising_rule, save_placement
from recs import redis_keys
from recs.candidates import store
from recs.candidates.availability import sync_unavailable
from recs.serving import redis as serving_redis
from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext
from tests.factories import CategoryFactory
from tests.recs.conftest import ranked, skus, touch

pytestmark = pytest.mark.django_db


def ask(placement="home", **fields):
    return recommend(RecommendationContext(placement=placement, **fields))


@pytest.fixture
def rule(shop, django_capture_on_commit_callbacks):
    """Save a rule as the admin does; its commit tells readers to reload the rules."""

    def save(action, sku, placement="product_detail", **fields):
        with django_capture_on_commit_callbacks(execute=True):
            return save_merchandising_rule(
                MerchandisingRule(
                    placement=Placement.objects.get(key=placement), product=shop[sku],
                    action=action, **fields,
                )
            )  # fmt: skip

    return save


@pytest.fixture
def placement_setting(django_capture_on_commit_callbacks):
    def change(key, **fields):
        placement = Placement.objects.get(key=key)
        for name, value in fields.items():
            setattr(placement, name, value)
        with django_capture_on_commit_callbacks(execute=True):
            save_placement(placement)

    return change


# --- tiers


def test_anonymous_visitor_gets_their_country_popularity(shop):
    result = ask(session_id="new", country="Germany")
    assert result.tier == "anonymous"
    assert skus(result)[:3] == ["K4", "K5", "K6"]
    assert result.items[0].reason == "popular in Germany"
    assert result.source == "segment_popular" and result.rec_id


def test_a_few_views_switch_to_content_neighbours_of_what_was_viewed(shop):
    touch("C1", "K9-unknown")
    result = ask(session_id="s-1")
    assert result.tier == "content"
    assert set(skus(result)[:2]) == {"C2", "C4"}, "content neighbours, C2 also a CF neighbour"
    assert result.items[0].reason == "similar to Candles 1 you viewed"
    assert result.source == "content"


def test_ten_interactions_switch_to_the_users_collaborative_list(shop):
    touch(*["B1"] * 10, user_id="loyal", session_id="s-9")
    result = ask(user_id="loyal", session_id="s-9")
    assert result.tier == "collaborative"
    assert skus(result)[:2] == ["K2", "K3"]
    assert result.source == "user_list" and result.model_version == "hybrid#7"
    assert result.items[0].reason == "recommended for you"


def test_tier_thresholds_are_settings(shop, settings):
    settings.AISLE = {**settings.AISLE, "TIER_CONTENT_MIN_INTERACTIONS": 3}
    touch("C1", "C2")
    assert ask(session_id="s-1").tier == "anonymous"


def test_product_page_shows_neighbours_of_the_product_but_never_the_product(shop):
    result = ask("product_detail", session_id="new", product_sku="C1")
    assert "C1" not in skus(result)
    assert set(skus(result)[:3]) <= {"C2", "C3", "C4", "C5", "K1"}
    assert result.source in {"similar", "content"}


def test_cart_placement_shows_what_is_bought_together_and_not_what_is_in_the_cart(shop):
    result = ask("cart", session_id="new", cart_skus=("C1", "B4"))
    assert skus(result)[0] == "K6"
    assert result.items[0].reason == "bought together with Candles 1"
    assert "B4" not in skus(result) and "C1" not in skus(result)


def test_already_bought_products_are_hidden_where_the_placement_says_so(shop, placement_setting):
    touch("C2", event_type="purchase", user_id="buyer", session_id="s-2")
    assert "C2" not in skus(ask("product_detail", user_id="buyer", product_sku="C1", limit=20))
    placement_setting("product_detail", exclude_purchased=False)
    served = skus(ask("product_detail", user_id="buyer", product_sku="C1", limit=20))
    assert "C2" in served, "shown again, but demoted below what they do not own"
    assert served.index("C2") > served.index("C3")


def test_limit_and_placement_size(shop):
    assert len(ask(session_id="new", limit=3).items) == 3
    assert len(ask(session_id="new").items) == Placement.objects.get(key="home").size


def test_unknown_placement_is_a_value_error(shop):
    with pytest.raises(ValueError, match="Unknown placement 'nowhere'"):
        ask("nowhere")


def test_switched_off_placement_serves_nothing(shop, placement_setting):
    ask(session_id="new")
    placement_setting("home", is_active=False)
    result = ask(session_id="new")
    assert result.items == [] and result.fallbacks == ["placement_inactive"]


# --- stock and activation


@pytest.mark.django_db(transaction=True)
def test_sold_out_product_is_never_served_after_commit(shop):
    assert "K4" in skus(ask(session_id="new", country="Germany"))
    set_stock(shop["K4"], on_hand=0)
    assert "K4" not in skus(ask(session_id="new", country="Germany"))
    set_stock(shop["K4"], on_hand=3)
    assert "K4" in skus(ask(session_id="new", country="Germany")), "back in stock re-enters"


@pytest.mark.django_db(transaction=True)
def test_concurrent_reader_never_sees_a_product_after_its_sell_out_commits(shop):
    """A reader thread serves continuously while the product sells out; every answer computed
    after set_stock returned must be without it."""
    answers: list[tuple[float, list[str]]] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            started = time.monotonic()
            answers.append((started, skus(ask(session_id="new", country="Germany"))))

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.2)
    set_stock(shop["K5"], on_hand=0)
    committed = time.monotonic()
    time.sleep(0.2)
    stop.set()
    thread.join()
    before = [served for started, served in answers if started < committed]
    after = [served for started, served in answers if started > committed]
    assert before and after
    assert any("K5" in served for served in before)
    assert not any("K5" in served for served in after)


@pytest.mark.django_db(transaction=True)
def test_deactivated_product_is_not_served_and_stock_alone_does_not_revive_it(shop):
    set_products_active([shop["K4"].pk], is_active=False)
    assert "K4" not in skus(ask(session_id="new", country="Germany"))
    set_stock(shop["K4"], on_hand=50)
    assert "K4" not in skus(ask(session_id="new", country="Germany"))
    set_products_active([shop["K4"].pk], is_active=True)
    assert "K4" in skus(ask(session_id="new", country="Germany"))


def test_availability_set_is_rebuilt_from_the_catalog(shop):
    sync_unavailable()
    shop["B1"].stock.on_hand = 0
    shop["B1"].stock.save()  # behind the services' back, as a lost update would be
    assert "B1" in skus(ask(session_id="new"))
    sync_unavailable()
    assert "B1" not in skus(ask(session_id="new"))


# --- merchandising rules


def test_exclude_rule_removes_the_product(shop, rule):
    rule("exclude", "C2")
    assert "C2" not in skus(ask("product_detail", session_id="new", product_sku="C1"))
    assert "C2" in skus(ask("home", session_id="new")), "only on its placement"


def test_pin_rule_puts_the_product_in_its_slot(shop, rule):
    rule("pin", "B3", position=2)
    result = ask("product_detail", session_id="new", product_sku="C1")
    assert skus(result)[1] == "B3" and result.items[1].pinned
    assert result.items[1].reason == "featured"


@pytest.mark.django_db(transaction=True)
def test_pinned_product_that_sold_out_is_not_served(shop, rule):
    rule("pin", "B3", position=1)
    set_stock(shop["B3"], on_hand=0)
    assert "B3" not in skus(ask("product_detail", session_id="new", product_sku="C1"))


def test_boost_and_bury_move_products(shop, rule):
    before = skus(ask("home", session_id="new"))
    rule("boost", before[-1], placement="home", multiplier=50.0)
    rule("bury", before[0], placement="home", multiplier=0.01)
    after = skus(ask("home", session_id="new", limit=20))
    assert after[0] == before[-1]
    assert after.index(before[0]) > before.index(before[0])


def test_rule_outside_its_schedule_does_nothing(shop, rule):
    rule("exclude", "C2", starts_at=timezone.now() + timedelta(hours=1))
    assert "C2" in skus(ask("product_detail", session_id="new", product_sku="C1"))
    rule("exclude", "C3", ends_at=timezone.now() - timedelta(minutes=1),
         starts_at=timezone.now() - timedelta(hours=1))  # fmt: skip
    assert "C3" in skus(ask("product_detail", session_id="new", product_sku="C1"))


def test_category_rule_applies_only_within_its_category(shop, rule):
    from merch.models import Category

    rule("exclude", "C3", category=Category.objects.get(path="kitchen/baking"))
    assert "C3" in skus(ask("product_detail", session_id="new", product_sku="C1"))
    rule("exclude", "C2", category=Category.objects.get(path="home/candles"))
    assert "C2" not in skus(ask("product_detail", session_id="new", product_sku="C1"))


# --- diversity


def test_no_more_than_max_per_category_while_others_are_available(shop, placement_setting):
    placement_setting("category", max_per_category=2)
    result = ask("category", session_id="new", category_path="home/candles", limit=6)
    categories = [item.category_path for item in result.items]
    assert categories.count("home/candles") == 2
    assert len(result.items) == 6


# --- fallbacks


def test_collaborative_user_without_a_list_gets_the_last_known_good_one(shop):
    store.write_lists([(redis_keys.user_list("regular"), ranked("B2", "B3"))])
    store.write_lists([(redis_keys.user_list("regular"), ranked("K1"))])  # a newer list...
    store.writer_client().delete(redis_keys.user_list("regular"))  # ...that was lost
    touch(*["C1"] * 10, user_id="regular", session_id="s-3")
    result = ask(user_id="regular")
    assert skus(result)[:2] == ["B2", "B3"]
    assert result.source == "last_known_good" and "no_user_list" in result.fallbacks


def test_when_the_strategy_has_nothing_servable_the_chain_fills_the_list(shop, placement_setting):
    placement_setting("home", default_strategy="trending")  # nothing is trending yet
    store.write_lists([(redis_keys.country_popular_list("Germany"), ranked("K4"))])
    shop["K4"].stock.on_hand = 0
    shop["K4"].stock.save()
    sync_unavailable()
    result = ask(session_id="new", country="Germany", category_path="home/candles", limit=6)
    assert skus(result)[:3] == ["C6", "C5", "C4"] and "K4" not in skus(result)
    assert len(result.items) == 6
    assert result.source == "category_popular"
    assert result.fallbacks == ["category_popular", "global_popular"]


def test_empty_cache_still_serves_global_popularity_from_redis(shop):
    store.writer_client().delete(
        redis_keys.country_popular_list("Germany"), redis_keys.similar_cf_list("C1")
    )
    result = ask("product_detail", session_id="new", product_sku="C1", country="Germany")
    assert result.items


def test_fallbacks_are_counted_by_reason(shop):
    from recs.serving import counters

    touch(*["C1"] * 10, user_id="nobody", session_id="s-4")
    ask(user_id="nobody")
    assert counters.totals["fallback:no_user_list"] == 1
    assert counters.totals["tier:collaborative"] == 1


def test_redis_down_serves_in_process_popularity_with_source_fallback(shop, doomed_redis):
    from recs.serving import fallback

    fallback.remember_global_popular(["B1", "K1", "C1", "B2"])
    shop["K1"].stock.on_hand = 0
    shop["K1"].stock.save()
    doomed_redis.terminate()
    doomed_redis.wait()
    started = time.monotonic()
    result = ask(session_id="new", limit=3)
    assert time.monotonic() - started < 1.0
    assert result.source == "fallback" and result.fallbacks == ["redis_down"]
    assert skus(result) == ["B1", "C1", "B2"], "the sold-out K1 is checked in the catalog"
    assert not serving_redis.available(), "later requests skip Redis for a moment"
    assert ask(session_id="new", limit=3).source == "fallback"


def test_admin_preview_shows_the_rules_effect_side_by_side(shop, rule, admin_client):
    rule("pin", "B3", position=1)
    rule("exclude", "C2")
    response = admin_client.get(
        "/admin/recs/preview/", {"placement": "product_detail", "product_sku": "C1", "limit": 8}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Without rules" in page and "With the live rules" in page
    assert 'class="move-pinned">pinned' in page and 'class="move-removed">removed by a rule' in page


def test_admin_preview_opened_without_a_limit_previews_the_placements_size(shop, admin_client):
    """The rules list links to `?placement=product_detail`: that must preview, not complain."""
    response = admin_client.get("/admin/recs/preview/", {"placement": "product_detail"})
    page = response.content.decode()
    assert response.status_code == 200 and "This field is required" not in page
    assert "With the live rules" in page
    assert page.count("<td>B1</td>") == 2, "served before and after the rules"


def test_admin_preview_summary_ends_its_sentence_without_a_stray_space(shop, admin_client):
    page = admin_client.get("/admin/recs/preview/", {"placement": "home"}).content.decode()
    assert "model popularity#3." in page


def test_admin_preview_hint_names_a_category_path_the_shop_has(default_placements, admin_client):
    page = admin_client.get("/admin/recs/preview/").content.decode()
    assert "the catalog has no categories yet" in page
    home = CategoryFactory(name="Home", slug="home", path="home")
    CategoryFactory(name="Candles & lights", slug="candles-lights", path="home/candles-lights",
                    parent=home)  # fmt: skip
    page = admin_client.get("/admin/recs/preview/").content.decode()
    assert "e.g. home/candles-lights" in page


def test_admin_preview_needs_staff(shop, client):
    response = client.get("/admin/recs/preview/", {"placement": "home"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_rules_list_links_to_the_preview(shop, admin_client):
    page = admin_client.get("/admin/merch/merchandisingrule/").content.decode()
    assert "/admin/recs/preview/?placement=product_detail" in page


def test_a_list_thinned_out_by_many_sold_out_products_is_still_filled(shop, placement_setting):
    from tests.factories import ProductFactory, StockFactory

    placement_setting("home", default_strategy="popular", max_per_category=0)
    many = [StockFactory(product=ProductFactory(sku=f"S{n:02d}"), on_hand=0).product.sku
            for n in range(60)]  # fmt: skip
    store.write_lists([(redis_keys.POPULAR_ALL, ranked(*many, "B1", "B2", "B3"))])
    sync_unavailable()
    assert skus(ask(session_id="new", limit=3)) == ["B1", "B2", "B3"]


@pytest.mark.django_db(transaction=True)
def test_a_flash_sale_of_500_skus_is_one_bulk_write_and_one_refresh(
    shop, django_assert_max_num_queries
):
    from merch.services.catalog import mark_out_of_stock
    from recs import redis_keys
    from tests.factories import ProductFactory, StockFactory

    skus_on_sale = [
        StockFactory(product=ProductFactory(sku=f"F{n:03d}"), on_hand=3).product for n in range(500)
    ]
    client = store.writer_client()
    queued = client.llen("scoring")
    with django_assert_max_num_queries(12):
        mark_out_of_stock([product.pk for product in skus_on_sale])
    flags = client.smismember(redis_keys.UNAVAILABLE, [product.sku for product in skus_on_sale])
    assert all(flags), "every one unavailable once the call returned"
    assert client.llen("scoring") == queued + 1, "one refresh task for the whole sale"


def test_a_redis_that_lost_its_data_never_serves_a_sold_out_product(shop):
    from recs import redis_keys

    sync_unavailable()
    shop["B1"].stock.on_hand = 0
    shop["B1"].stock.save()
    sync_unavailable()
    assert "B1" not in skus(ask(session_id="new"))
    client = store.writer_client()
    client.delete(  # a restart without persistence
        redis_keys.UNAVAILABLE, redis_keys.UNAVAILABLE_STATE, redis_keys.UNAVAILABLE_CHANGES
    )
    assert "B1" not in skus(ask(session_id="new")), "the set is rebuilt before answering"
    assert client.sismember(redis_keys.UNAVAILABLE, "B1")
    assert client.hget(redis_keys.UNAVAILABLE_STATE, "epoch")


# --- cold start: a shop with a catalog and no history yet


@pytest.fixture
def new_shop(default_placements):
    """Products with stock and launch dates, and not one list or event: the first hour."""
    from tests.factories import CategoryFactory, ProductFactory, StockFactory

    lamps = CategoryFactory(name="Lamps", slug="lamps", path="home/lamps")
    mugs = CategoryFactory(name="Mugs", slug="mugs", path="kitchen/mugs")
    now = timezone.now()
    for sku, category, days_old, on_hand in [
        ("L1", lamps, 30, 3), ("L2", lamps, 2, 3), ("L3", lamps, 1, 0), ("M1", mugs, 5, 3),
        ("M2", mugs, 0.5, 3), ("M3", mugs, 60, 3),
    ]:  # fmt: skip
        launched_at = now - timedelta(days=days_old)
        product = ProductFactory(sku=sku, category=category, launched_at=launched_at)
        StockFactory(product=product, on_hand=on_hand)
    sync_unavailable()


def test_a_shop_without_history_shows_its_newest_products_in_stock(new_shop):
    result = ask(session_id="first-visitor", limit=4)
    assert skus(result) == ["M2", "L2", "M1", "L1"], "newest first; the sold-out L3 left out"
    assert result.source == "newest" and "newest" in result.fallbacks
    assert result.model_version == "catalog"
    assert all(item.reason == "new in" for item in result.items)


def test_a_category_page_without_history_leads_with_that_categorys_newest(new_shop):
    result = ask("category", session_id="first-visitor", category_path="home/lamps", limit=3)
    assert skus(result) == ["L2", "L1", "M2"], "the category's own in-stock products first"
    assert result.items[0].reason == "new in Lamps"


def test_with_redis_down_and_no_snapshot_a_new_shop_still_shows_its_newest(new_shop, doomed_redis):
    doomed_redis.terminate()
    doomed_redis.wait()
    result = ask(session_id="first-visitor", limit=3)
    assert result.source == "fallback" and skus(result) == ["M2", "L2", "M1"]
