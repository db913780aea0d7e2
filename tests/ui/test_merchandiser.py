"""The merchandiser's admin in a real browser: stock, rules and experiments reach the storefront."""

import re

import pytest

from merch.models import Experiment, MerchandisingRule
from merch.selectors.experiments import experiment_by_id
from recs import redis_keys
from recs.candidates import store
from recs.experiments.simulation import simulate_shoppers
from tests.ui.conftest import admin_login, carousel, carousel_skus

pytestmark = pytest.mark.browser


def test_a_product_set_to_zero_stock_in_the_admin_leaves_the_storefront_carousel(
    browsing, shop, merchandiser, storefront_key
):
    shopper = browsing.new_page()
    shopper.goto("/p/C1/")
    assert "C2" in carousel_skus(shopper, "product_detail"), "a related product of C1"

    admin = browsing.new_page()
    admin_login(admin, merchandiser)
    admin.goto("/admin/merch/stock/")
    admin.locator("#searchbar").fill("Candles 2")
    admin.locator("#searchbar").press("Enter")
    admin.wait_for_url(re.compile(r"\?q=Candles"))
    rows = admin.locator("#result_list tbody tr")
    assert rows.count() == 1 and "C2" in rows.first.inner_text()
    rows.first.locator("input[name$='-on_hand']").fill("0")
    admin.get_by_role("button", name="Save").click()
    expect_message(admin, "was changed successfully")
    assert admin.locator("#result_list tbody tr td.field-available").first.inner_text() == "0"

    shopper.reload()
    skus = carousel_skus(shopper, "product_detail")
    assert skus, "the carousel still fills its slots"
    assert "C2" not in skus
    assert carousel(shopper, "product_detail").get_by_text("Candles 2").count() == 0
    browsing.screenshot(shopper, "storefront-without-the-sold-out-product")
    shopper.goto("/p/C2/")
    assert shopper.locator(".product__details .status--out").inner_text() == "Sold out"


def test_a_pin_and_an_exclusion_made_in_the_admin_show_in_the_preview_and_the_storefront(
    browsing, shop, merchandiser, storefront_key
):
    shopper = browsing.new_page()
    shopper.goto("/p/C1/")
    before = carousel_skus(shopper, "product_detail")
    assert before[0] != "K5" and "K5" not in before and "C2" in before

    admin = browsing.new_page()
    admin_login(admin, merchandiser)
    add_rule(admin, product="Baking 5", action="Pin to a slot", position="1", note="Promotion")
    add_rule(admin, product="Candles 2", action="Exclude", note="Supplier recall")
    assert MerchandisingRule.objects.filter(placement__key="product_detail").count() == 2

    # The rules list links to the preview; the merchandiser asks about C1's page.
    admin.get_by_role("link", name="Preview the rules' effect").click()
    admin.get_by_label("Product SKU").fill("C1")
    admin.get_by_role("button", name="Preview").click()
    with_rules = admin.locator(".preview-grid > div").nth(1)
    without_rules = admin.locator(".preview-grid > div").nth(0)
    pinned_row = with_rules.locator("tbody tr").first
    assert "K5" in pinned_row.inner_text() and "pinned" in pinned_row.inner_text()
    excluded_row = without_rules.locator("tbody tr", has_text="Candles 2")
    assert "removed by a rule" in excluded_row.inner_text()
    assert "C2" not in with_rules.inner_text()
    browsing.screenshot(admin, "admin-rules-preview")

    shopper.reload()
    after = carousel_skus(shopper, "product_detail")
    assert after[0] == "K5", "the pinned product takes slot 1"
    assert "C2" not in after
    first_card = carousel(shopper, "product_detail").locator("[data-aisle-position='1']")
    assert first_card.get_attribute("data-aisle-sku") == "K5"
    assert "Baking 5" in first_card.inner_text()
    browsing.screenshot(shopper, "storefront-with-the-rules")


def test_an_experiment_created_started_ramped_and_killed_in_the_admin_fills_its_dashboard(
    browsing, shop, merchandiser, storefront_key
):
    store.write_lists(
        [(redis_keys.TRENDING_ALL, [("B4", 3.0), ("C6", 2.0), ("K6", 1.0), ("B3", 0.5)])]
    )
    admin = browsing.new_page()
    admin_login(admin, merchandiser)

    admin.goto("/admin/merch/experiment/add/")
    admin.get_by_label("Name").fill("Trending on the home page")
    admin.locator("#id_placement").select_option(label="home")
    admin.get_by_label("Hypothesis").fill("What is trending sells better than what sold.")
    fill_variant(admin, 0, name="control", strategy="popular", control=True)
    fill_variant(admin, 1, name="trending", strategy="trending")
    admin.locator("input[name='_save']").click()
    expect_message(admin, "was added successfully")
    experiment = Experiment.objects.get(name="Trending on the home page")
    assert experiment.status == "draft"

    run_list_action(admin, experiment, "Start selected experiments")
    expect_message(admin, "Started 1 experiment(s).")
    for percent in ("2", "50"):
        admin.goto(f"/admin/merch/experiment/{experiment.pk}/change/")
        admin.get_by_role("link", name="Ramp to N %").click()
        admin.get_by_label("Traffic %").fill(percent)
        admin.get_by_role("button", name="Ramp").click()
        expect_message(admin, f"'trending' now takes {percent} % of traffic")
    browsing.screenshot(admin, "admin-experiment-at-50-percent")

    simulated = simulate_shoppers(
        experiment_by_id(experiment.pk), 300, hours=6,
        conversion={"control": 0.05, "trending": 0.15},
    )  # fmt: skip
    assert simulated.served["control"] > 100 and simulated.served["trending"] > 100

    run_list_action(admin, experiment, "Kill selected experiments: all traffic to control now")
    expect_message(admin, "Killed 1 experiment(s).")
    experiment.refresh_from_db()
    assert experiment.status == "stopped"

    admin.goto(f"/admin/merch/experiment/{experiment.pk}/change/")
    admin.get_by_role("link", name="Dashboard").click()
    admin.wait_for_url(f"**/admin/recs/experiments/{experiment.pk}/")
    assert admin.get_by_role("heading", name="Experiment: Trending on the home page").is_visible()
    variants = admin.locator("table.dash-table", has=admin.get_by_text("Shoppers exposed"))
    for name in ("control", "trending"):
        row = variants.locator("tbody tr").filter(
            has=admin.locator("th", has_text=re.compile(rf"^{name}\b"))
        )
        # Traffic, shoppers exposed, lists served, impressions, CTR, add-to-cart, conversion...
        numbers = row.locator("td.num").all_inner_texts()
        assert numbers[1] == str(simulated.served[name]), f"shoppers exposed to {name}"
        assert re.match(r"\d+\.\d+ %", numbers[6]), f"{name} has a conversion rate: {numbers}"
    charts = admin.locator(".dash-charts svg")
    assert charts.count() >= 4
    assert charts.first.locator("path, polyline").count() > 0, "the charts draw lines"
    browsing.screenshot(admin, "admin-experiment-dashboard")


def expect_message(page, text: str) -> None:
    messages = page.locator("ul.messagelist")
    messages.wait_for()
    assert text in messages.inner_text(), messages.inner_text()


def add_rule(page, *, product: str, action: str, note: str, position: str = "") -> None:
    """The rules' add form as a merchandiser fills it: the product through its autocomplete."""
    page.goto("/admin/merch/merchandisingrule/add/")
    page.locator("#id_placement").select_option(label="product_detail")
    page.locator(".field-product .select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill(product)
    page.locator(".select2-results__option", has_text=product).click()
    page.locator("#id_action").select_option(label=action)
    if position:
        page.get_by_label("Position").fill(position)
    page.get_by_label("Note").fill(note)
    page.locator("input[name='_save']").click()
    expect_message(page, "was added successfully")


def fill_variant(page, row: int, *, name: str, strategy: str, control: bool = False) -> None:
    page.locator(f"#id_variants-{row}-name").fill(name)
    page.locator(f"#id_variants-{row}-strategy").select_option(strategy)
    if control:
        page.locator(f"#id_variants-{row}-is_control").check()


def run_list_action(page, experiment: Experiment, action: str) -> None:
    page.goto("/admin/merch/experiment/")
    page.locator(f"input[name='_selected_action'][value='{experiment.pk}']").check()
    page.locator("select[name='action']").select_option(label=action)
    page.get_by_role("button", name="Go").click()
