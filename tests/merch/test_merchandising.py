"""Placements and merchandising rules: validation, services, selectors, data migration, admin."""

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from merch.models import MerchandisingRule, Placement
from merch.selectors.catalog import CatalogCard, available_skus, catalog_cards
from merch.selectors.merchandising import PlacementConfig, RuleConfig, merchandising_config
from merch.services.merchandising import (
    delete_merchandising_rules,
    save_merchandising_rule,
    save_placement,
    set_rules_active,
)
from merch.signals import merchandising_changed
from tests.factories import (
    CategoryFactory,
    MerchandisingRuleFactory,
    PlacementFactory,
    ProductFactory,
    StockFactory,
)

pytestmark = pytest.mark.django_db

RULES_URL = "/admin/merch/merchandisingrule/"
PLACEMENTS_URL = "/admin/merch/placement/"


@pytest.fixture
def announced():
    """The senders of every merchandising_changed merch sent (after commit) during the test."""
    received = []

    def receiver(sender, **kwargs):
        received.append(sender)

    merchandising_changed.connect(receiver, weak=False)
    yield received
    merchandising_changed.disconnect(receiver)


@pytest.fixture
def home():
    return PlacementFactory(key="home")


def build_rule(**values) -> MerchandisingRule:
    """An unsaved rule on a saved placement and product, so that full_clean can check the FKs."""
    values.setdefault("placement", PlacementFactory(key="home"))
    values.setdefault("product", ProductFactory())
    return MerchandisingRuleFactory.build(**values)


def errors_of(rule: MerchandisingRule) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as raised:
        rule.full_clean()
    return raised.value.message_dict


# Validation


@pytest.mark.parametrize(
    "values",
    [
        {"action": "pin", "position": 1, "multiplier": 1.0},
        {"action": "pin", "position": 50, "multiplier": 1.0},
        {"action": "boost", "multiplier": 1.01},
        {"action": "bury", "multiplier": 0.5},
        {"action": "exclude", "multiplier": 1.0},
    ],
)
def test_well_formed_rule_of_each_action_passes_validation(values):
    build_rule(**values).full_clean()


def test_pin_rule_without_position_is_rejected_with_a_clear_message():
    errors = errors_of(build_rule(action="pin", position=None, multiplier=1.0))
    assert list(errors) == ["position"]
    assert "A pin needs a position" in errors["position"][0]


@pytest.mark.parametrize("position", [0, 51])
def test_pin_position_outside_the_slots_is_rejected(position):
    assert "position" in errors_of(build_rule(action="pin", position=position, multiplier=1.0))


def test_pin_rule_with_a_multiplier_is_rejected():
    errors = errors_of(build_rule(action="pin", position=2, multiplier=2.0))
    assert errors == {"multiplier": ["A pin takes a fixed slot; leave the multiplier at 1."]}


@pytest.mark.parametrize("multiplier", [1.0, 0.5, 0.0])
def test_boost_rule_needs_a_multiplier_above_one(multiplier):
    errors = errors_of(build_rule(action="boost", multiplier=multiplier))
    assert errors == {"multiplier": ["A boost needs a multiplier greater than 1 (e.g. 1.5)."]}


@pytest.mark.parametrize("multiplier", [0.0, -0.5, 1.0, 1.5])
def test_bury_rule_needs_a_multiplier_strictly_between_zero_and_one(multiplier):
    errors = errors_of(build_rule(action="bury", multiplier=multiplier))
    assert list(errors) == ["multiplier"]
    assert "between 0 and 1" in errors["multiplier"][0]


def test_exclude_rule_refuses_a_position_and_a_multiplier():
    errors = errors_of(build_rule(action="exclude", position=3, multiplier=0.5))
    assert errors["position"] == ["Only a pin takes a position; leave it empty."]
    assert "leave the multiplier at 1" in errors["multiplier"][0]


def test_position_on_a_boost_is_rejected_rather_than_ignored():
    errors = errors_of(build_rule(action="boost", position=1, multiplier=2.0))
    assert list(errors) == ["position"]


@pytest.mark.parametrize("multiplier", [float("inf"), float("nan")])
def test_non_finite_multiplier_is_rejected(multiplier):
    errors = errors_of(build_rule(action="boost", multiplier=multiplier))
    assert list(errors) == ["multiplier"]


@pytest.mark.parametrize("length", [timedelta(0), timedelta(hours=-1)])
def test_rule_that_ends_before_it_starts_is_rejected(length):
    starts_at = timezone.now()
    rule = build_rule(starts_at=starts_at, ends_at=starts_at + length)
    assert errors_of(rule) == {"ends_at": ["The end must be after the start."]}


@pytest.mark.parametrize("size", [0, 51])
def test_placement_size_outside_1_to_50_is_rejected(size):
    with pytest.raises(ValidationError) as raised:
        Placement(key="sidebar", name="Sidebar", size=size).full_clean()
    assert list(raised.value.message_dict) == ["size"]


def test_rule_is_live_only_while_active_and_inside_its_schedule():
    now = timezone.now()
    rule = build_rule(starts_at=now, ends_at=now + timedelta(days=1))
    assert not rule.is_live(now - timedelta(seconds=1))
    assert rule.is_live(now)
    assert not rule.is_live(now + timedelta(days=1))  # the end is exclusive
    rule.is_active = False
    assert not rule.is_live(now)
    assert build_rule().is_live()  # no schedule: live whenever active


# Services


def test_saved_rule_is_announced_only_after_commit(announced, django_capture_on_commit_callbacks):
    rule = build_rule(action="pin", position=1, multiplier=1.0)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        save_merchandising_rule(rule)
    assert rule.pk is not None
    assert announced == []
    for callback in callbacks:
        callback()
    assert announced == [MerchandisingRule]


@pytest.mark.django_db(transaction=True)
def test_rolled_back_rule_changes_are_never_announced(announced):
    rule = MerchandisingRuleFactory(placement=PlacementFactory(key="home"))
    with pytest.raises(RuntimeError), transaction.atomic():
        save_merchandising_rule(build_rule(placement=rule.placement))
        set_rules_active([rule.pk], is_active=False)
        delete_merchandising_rules([rule.pk])
        raise RuntimeError("the import failed half way")
    assert announced == []
    assert list(MerchandisingRule.objects.values_list("pk", "is_active")) == [(rule.pk, True)]


@pytest.mark.django_db(transaction=True)
def test_committed_rule_save_is_announced_once(announced):
    save_merchandising_rule(build_rule(placement=PlacementFactory(key="home")))
    assert announced == [MerchandisingRule]


def test_invalid_rule_is_refused_by_the_service_and_nothing_is_saved_or_announced(
    announced, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        save_merchandising_rule(build_rule(action="bury", multiplier=3.0))
    assert not MerchandisingRule.objects.exists()
    assert announced == []


def test_resaving_an_unchanged_rule_announces_nothing(
    announced, django_capture_on_commit_callbacks
):
    rule = MerchandisingRuleFactory()
    with django_capture_on_commit_callbacks(execute=True):
        save_merchandising_rule(MerchandisingRule.objects.get(pk=rule.pk))
    assert announced == []
    rule.multiplier = 3.0
    with django_capture_on_commit_callbacks(execute=True):
        save_merchandising_rule(rule)
    assert announced == [MerchandisingRule]
    assert MerchandisingRule.objects.get(pk=rule.pk).multiplier == 3.0


def test_changed_placement_is_announced_and_an_unchanged_one_is_not(
    announced, django_capture_on_commit_callbacks, home
):
    with django_capture_on_commit_callbacks(execute=True):
        save_placement(Placement.objects.get(pk=home.pk))
    assert announced == []
    home.size = 12
    with django_capture_on_commit_callbacks(execute=True):
        save_placement(home)
    assert announced == [Placement]
    assert Placement.objects.get(key="home").size == 12


def test_placement_with_a_taken_key_is_refused(home):
    with pytest.raises(ValidationError) as raised:
        save_placement(Placement(key="home", name="Another home"))
    assert "key" in raised.value.message_dict


def test_set_rules_active_counts_only_rules_that_changed_and_announces_once(
    announced, django_capture_on_commit_callbacks
):
    active = MerchandisingRuleFactory()
    inactive = MerchandisingRuleFactory(is_active=False)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        changed = set_rules_active([active.pk, inactive.pk], is_active=False)
    assert changed == 1
    assert len(callbacks) == 1 and announced == [MerchandisingRule]
    assert not MerchandisingRule.objects.filter(is_active=True).exists()


def test_set_rules_active_with_nothing_to_change_announces_nothing(
    announced, django_capture_on_commit_callbacks
):
    rule = MerchandisingRuleFactory(is_active=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert set_rules_active([rule.pk], is_active=True) == 0
        assert set_rules_active([], is_active=False) == 0
    assert announced == []


def test_delete_merchandising_rules_returns_how_many_and_announces(
    announced, django_capture_on_commit_callbacks
):
    doomed, kept = MerchandisingRuleFactory(), MerchandisingRuleFactory()
    with django_capture_on_commit_callbacks(execute=True):
        assert delete_merchandising_rules([doomed.pk, 999_999]) == 1
    assert list(MerchandisingRule.objects.all()) == [kept]
    assert announced == [MerchandisingRule]
    with django_capture_on_commit_callbacks(execute=True):
        assert delete_merchandising_rules([999_999]) == 0
    assert announced == [MerchandisingRule]


def test_rule_ids_that_are_not_integers_are_refused():
    with pytest.raises(ValidationError, match="integers"):
        delete_merchandising_rules(["1", "one"])
    with pytest.raises(ValidationError, match="True or False"):
        set_rules_active([1], is_active="no")


# Data migration


def test_data_migration_creates_the_five_default_placements():
    placements = {
        p.key: (p.default_strategy, p.size, p.exclude_purchased, p.max_per_category, p.is_active)
        for p in Placement.objects.filter(
            key__in=["home", "product_detail", "cart", "category", "post_purchase"]
        )
    }
    assert placements == {
        "home": ("auto", 8, True, 3, True),
        "product_detail": ("auto", 8, True, 3, True),
        "cart": ("bought_together", 6, True, 3, True),
        "category": ("auto", 8, True, 3, True),
        "post_purchase": ("bought_together", 6, True, 3, True),
    }


def test_default_placements_migration_is_idempotent_and_keeps_merchandiser_edits():
    migration = importlib.import_module("merch.migrations.0003_default_placements")
    migration.create_default_placements(apps, None)  # makes whatever a flush removed
    Placement.objects.filter(key="cart").update(size=4)
    Placement.objects.create(key="sidebar", name="Sidebar")
    migration.create_default_placements(apps, None)
    assert Placement.objects.count() == 6
    assert Placement.objects.get(key="cart").size == 4


# Selectors


def test_merchandising_config_returns_plain_dataclasses_with_epoch_times_and_only_active_rules(
    django_assert_num_queries, home
):
    candles = CategoryFactory(name="Candles", slug="candles", path="home-decor/candles")
    starts_at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    pin = MerchandisingRuleFactory(
        placement=home, product=ProductFactory(sku="85123A"), action="pin", position=2,
        multiplier=1.0, category=candles, starts_at=starts_at, ends_at=starts_at + timedelta(days=7),
    )  # fmt: skip
    boost = MerchandisingRuleFactory(placement=PlacementFactory(key="cart"), multiplier=1.5)
    MerchandisingRuleFactory(placement=home, is_active=False)
    PlacementFactory(key="sidebar", name="Sidebar", is_active=False)

    with django_assert_num_queries(2):
        placements, rules = merchandising_config()

    assert placements["sidebar"] == PlacementConfig(
        key="sidebar", name="Sidebar", default_strategy="auto", size=8, exclude_purchased=True,
        max_per_category=3, is_active=False,
    )  # fmt: skip
    assert {"home", "cart", "sidebar"} <= placements.keys()
    assert rules == [
        RuleConfig(
            id=pin.pk, placement_key="home", category_path="home-decor/candles", sku="85123A",
            action="pin", position=2, multiplier=1.0, starts_at=starts_at.timestamp(),
            ends_at=(starts_at + timedelta(days=7)).timestamp(),
        ),
        RuleConfig(
            id=boost.pk, placement_key="cart", category_path="", sku=boost.product.sku,
            action="boost", position=None, multiplier=1.5, starts_at=None, ends_at=None,
        ),
    ]  # fmt: skip
    assert isinstance(rules[0].starts_at, float)
    with pytest.raises(AttributeError):
        rules[0].multiplier = 9.0  # frozen: a cached copy cannot be changed by a reader


def test_merchandising_config_leaves_the_schedule_to_the_reader(home):
    now = timezone.now()
    MerchandisingRuleFactory(placement=home, starts_at=now + timedelta(days=1))
    MerchandisingRuleFactory(placement=home, ends_at=now - timedelta(days=1), starts_at=None)
    _, rules = merchandising_config()
    assert len(rules) == 2
    assert [rule.is_live(now.timestamp()) for rule in rules] == [False, False]
    assert rules[0].is_live((now + timedelta(days=2)).timestamp())


def test_rule_config_scoped_to_a_category_applies_to_it_and_below_it_only():
    rule = RuleConfig(1, "category", "home", "A", "exclude", None, 1.0, None, None)
    assert rule.applies_to_category("home")
    assert rule.applies_to_category("home/candles")
    assert not rule.applies_to_category("homeware")
    assert not rule.applies_to_category("")
    everywhere = RuleConfig(2, "category", "", "A", "exclude", None, 1.0, None, None)
    assert everywhere.applies_to_category("garden") and everywhere.applies_to_category("")


def test_available_skus_excludes_inactive_and_sold_out_products_in_one_query(
    django_assert_num_queries,
):
    StockFactory(product=ProductFactory(sku="IN"), on_hand=3, reserved=1)
    StockFactory(product=ProductFactory(sku="SOLD-OUT"), on_hand=2, reserved=2)
    StockFactory(product=ProductFactory(sku="INACTIVE", is_active=False), on_hand=5)
    StockFactory(product=ProductFactory(sku="NOT-ASKED"), on_hand=5)
    ProductFactory(sku="NO-STOCK-ROW")
    asked = ["IN", "SOLD-OUT", "INACTIVE", "NO-STOCK-ROW", "UNKNOWN", "IN"]
    with django_assert_num_queries(1):
        assert available_skus(asked) == {"IN"}


def test_available_skus_of_nothing_asks_the_database_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert available_skus(iter(())) == set()


def test_catalog_cards_describe_every_product_in_one_query(django_assert_num_queries):
    launched_at = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    lights = CategoryFactory(name="Lights", slug="lights", path="home/lights")
    ProductFactory(
        sku="85123A", title="White Hanging Heart", price="2.55", currency="GBP", brand="Acme",
        image_url="https://img.example/85123A.jpg", category=lights, launched_at=launched_at,
    )  # fmt: skip
    ProductFactory(
        sku="22423", title="Regency Cakestand", category=None, is_active=False,
        launched_at=launched_at,
    )  # fmt: skip
    with django_assert_num_queries(1):
        cards = catalog_cards()
    assert cards == [
        CatalogCard(
            sku="22423", title="Regency Cakestand", price="4.95", currency="GBP", image_url="",
            category_path="", brand="", launched_at=launched_at.timestamp(), is_active=False,
        ),
        CatalogCard(
            sku="85123A", title="White Hanging Heart", price="2.55", currency="GBP",
            image_url="https://img.example/85123A.jpg", category_path="home/lights", brand="Acme",
            launched_at=launched_at.timestamp(), is_active=True,
        ),
    ]  # fmt: skip


# Admin


def rule_form(**values) -> dict[str, str]:
    """What the rule add/change form posts (split date/time widgets, checkbox = "on")."""
    data = {
        "placement": "", "category": "", "product": "", "note": "", "action": "boost",
        "position": "", "multiplier": "1.0", "starts_at_0": "", "starts_at_1": "",
        "ends_at_0": "", "ends_at_1": "", "is_active": "on",
    }  # fmt: skip
    data.update({name: str(value) for name, value in values.items()})
    return data


def listed(response) -> set[int]:
    return {rule.pk for rule in response.context["cl"].result_list}


@pytest.mark.parametrize("url", [RULES_URL, f"{RULES_URL}add/", PLACEMENTS_URL])
def test_non_staff_users_are_sent_to_the_login_page(client, django_user_model, url):
    client.force_login(django_user_model.objects.create_user("shopper", password="pw-123456"))
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_can_add_a_pin_through_the_add_form_and_it_is_announced(
    admin_client, announced, django_capture_on_commit_callbacks, home
):
    product = ProductFactory(sku="85123A")
    candles = CategoryFactory(name="Candles", slug="candles", path="candles")
    data = rule_form(
        placement=home.pk, product=product.pk, category=candles.pk, action="pin", position=1,
        starts_at_0="2026-12-01", starts_at_1="09:00:00", note="Christmas hero",
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"{RULES_URL}add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = MerchandisingRule.objects.get()
    assert (rule.placement, rule.product, rule.category, rule.action, rule.position) == (
        home, product, candles, "pin", 1,
    )  # fmt: skip
    assert rule.starts_at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert announced == [MerchandisingRule]


def test_invalid_rule_in_the_add_form_shows_the_error_instead_of_failing(
    admin_client, announced, home
):
    data = rule_form(placement=home.pk, product=ProductFactory().pk, action="pin", position="")
    response = admin_client.post(f"{RULES_URL}add/", data)
    assert response.status_code == 200
    assert "A pin needs a position" in response.content.decode()
    assert response.context["adminform"].form.errors["position"]
    assert not MerchandisingRule.objects.exists() and announced == []


def test_bad_schedule_in_the_change_form_shows_the_error(admin_client, home):
    rule = MerchandisingRuleFactory(placement=home)
    data = rule_form(
        placement=home.pk, product=rule.product_id, multiplier=2.0,
        starts_at_0="2026-12-02", starts_at_1="00:00:00", ends_at_0="2026-12-01", ends_at_1="00:00:00",
    )  # fmt: skip
    response = admin_client.post(f"{RULES_URL}{rule.pk}/change/", data)
    assert response.status_code == 200
    assert "The end must be after the start." in response.content.decode()


def test_rule_list_renders_with_the_live_now_column_and_filters(admin_client, home):
    now = timezone.now()
    live = MerchandisingRuleFactory(placement=home, product=ProductFactory(sku="LIVE-1"))
    later = MerchandisingRuleFactory(placement=home, starts_at=now + timedelta(days=1))
    off = MerchandisingRuleFactory(placement=home, is_active=False)
    response = admin_client.get(RULES_URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "live now" in body and "LIVE-1" in body
    assert listed(response) == {live.pk, later.pk, off.pk}
    assert listed(admin_client.get(RULES_URL, {"live": "yes"})) == {live.pk}
    assert listed(admin_client.get(RULES_URL, {"live": "no"})) == {later.pk, off.pk}
    assert listed(admin_client.get(RULES_URL, {"q": "live-1"})) == {live.pk}


def test_rule_list_does_not_query_per_row(admin_client, django_assert_max_num_queries, home):
    for _ in range(30):
        MerchandisingRuleFactory(placement=home, category=CategoryFactory())
    with django_assert_max_num_queries(12):
        assert admin_client.get(RULES_URL).status_code == 200


def test_activate_and_deactivate_actions_go_through_the_service(
    admin_client, announced, django_capture_on_commit_callbacks
):
    rules = [MerchandisingRuleFactory(), MerchandisingRuleFactory(is_active=False)]
    ids = [rule.pk for rule in rules]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            RULES_URL, {"action": "deactivate", "_selected_action": ids}, follow=True
        )
    assert "Deactivated 1 rule(s)." in response.content.decode()
    assert not MerchandisingRule.objects.filter(is_active=True).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            RULES_URL, {"action": "activate", "_selected_action": ids}, follow=True
        )
    assert "Activated 2 rule(s)." in response.content.decode()
    assert MerchandisingRule.objects.filter(is_active=True).count() == 2
    assert announced == [MerchandisingRule, MerchandisingRule]


def test_delete_selected_confirms_then_deletes_through_the_service(
    admin_client, announced, django_capture_on_commit_callbacks
):
    doomed, kept = MerchandisingRuleFactory(), MerchandisingRuleFactory()
    action = {"action": "delete_selected", "_selected_action": [doomed.pk]}
    response = admin_client.post(RULES_URL, action)
    assert response.status_code == 200 and MerchandisingRule.objects.count() == 2  # confirmation
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(RULES_URL, {**action, "post": "yes"})
    assert response.status_code == 302
    assert list(MerchandisingRule.objects.all()) == [kept]
    assert announced == [MerchandisingRule]


def test_deleting_a_rule_from_its_page_is_announced(
    admin_client, announced, django_capture_on_commit_callbacks
):
    rule = MerchandisingRuleFactory()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"{RULES_URL}{rule.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not MerchandisingRule.objects.exists()
    assert announced == [MerchandisingRule]


def test_rule_product_autocomplete_searches_the_catalog(admin_client):
    ProductFactory(sku="85123A", title="White Hanging Heart")
    ProductFactory(sku="22423", title="Regency Cakestand")
    response = admin_client.get(
        "/admin/autocomplete/",
        {"app_label": "merch", "model_name": "merchandisingrule", "field_name": "product",
         "term": "heart"},
    )  # fmt: skip
    assert response.status_code == 200
    assert [item["text"] for item in response.json()["results"]] == ["85123A · White Hanging Heart"]


def test_placement_edited_in_the_list_is_saved_through_the_service(
    admin_client, announced, django_capture_on_commit_callbacks
):
    PlacementFactory(key="cart")
    response = admin_client.get(PLACEMENTS_URL)
    assert response.status_code == 200
    placements = list(response.context["cl"].result_list)
    data = {
        "form-TOTAL_FORMS": str(len(placements)), "form-INITIAL_FORMS": str(len(placements)),
        "form-MIN_NUM_FORMS": "0", "form-MAX_NUM_FORMS": "1000", "_save": "Save",
    }  # fmt: skip
    for index, placement in enumerate(placements):
        data |= {
            f"form-{index}-id": str(placement.pk),
            f"form-{index}-default_strategy": placement.default_strategy,
            f"form-{index}-anchor": placement.anchor,
            f"form-{index}-size": str(12 if placement.key == "cart" else placement.size),
        }
        if placement.is_active:
            data[f"form-{index}-is_active"] = "on"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(PLACEMENTS_URL, data)
    assert response.status_code == 302
    assert Placement.objects.get(key="cart").size == 12
    assert announced == [Placement]


def test_placement_key_is_fixed_once_created_and_placements_cannot_be_deleted(admin_client, home):
    response = admin_client.get(f"{PLACEMENTS_URL}{home.pk}/change/")
    assert response.status_code == 200
    assert "key" not in response.context["adminform"].form.fields
    response = admin_client.post(f"{PLACEMENTS_URL}{home.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Placement.objects.filter(pk=home.pk).exists()
