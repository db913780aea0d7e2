"""The experiment dashboard in a real browser at 1280 px: every column of its tables on screen,
the sample ratio banner that holds promotion back until acknowledged, a guardrail's pause."""

from datetime import UTC, datetime, timedelta

import pytest

from merch.models import Experiment
from merch.selectors.experiments import experiment_by_id
from merch.services.experiments import start_experiment
from recs.experiments.watch import watch_experiment
from recs.models import VariantHourlyStats
from tests.ui.conftest import VIEWPORT, admin_login, trending_experiment_draft

pytestmark = pytest.mark.browser

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)


def rows(experiment_id: int, variant: str, exposed: int, converting: int, **columns) -> None:
    for hour in range(3):
        VariantHourlyStats.objects.create(
            experiment_id=experiment_id, variant=variant, hour=HOUR + timedelta(hours=hour),
            exposed_subjects=exposed, lists_served=exposed * 2, impressions=exposed * 6,
            clicks=exposed // 2, add_to_carts=exposed // 5, converting_subjects=converting,
            revenue=converting * 23.5, revenue_squares=converting * 23.5**2 * 1.4,
            recommended_revenue=converting * 9.0, **columns,
        )  # fmt: skip


def columns_off_screen(page, table_id: str) -> list[str]:
    """Header cells of a table that end right of the viewport or are clipped by its scroller."""
    return page.evaluate(
        """([id, width]) => {
            const table = document.getElementById(id);
            const box = table.parentElement.getBoundingClientRect();
            return [...table.querySelectorAll("thead th")]
                .filter((th) => {
                    const r = th.getBoundingClientRect();
                    return r.right > Math.min(width, box.right) + 0.5 || r.width < 20;
                })
                .map((th) => th.innerText);
        }""",
        [table_id, VIEWPORT["width"]],
    )


def test_the_dashboard_shows_every_column_at_1280_px_an_srm_banner_and_a_guardrail_pause(
    browsing, shop, merchandiser, storefront_key
):
    experiment = start_experiment(trending_experiment_draft())
    # The challenger converts far worse, and got far fewer shoppers than its 50 %.
    rows(experiment.pk, "control", 1400, 140, pre_activity=900.0, pre_activity_squares=1500.0,
         pre_activity_conversion=120.0)  # fmt: skip
    rows(experiment.pk, "trending", 900, 40, pre_activity=560.0, pre_activity_squares=950.0,
         pre_activity_conversion=30.0)  # fmt: skip
    rows(experiment.pk, "knn-shadow", 0, 0, shadow_lists=300, shadow_overlap=90.0, outcomes=500,
         shadow_hits=80, served_hits=60)  # fmt: skip
    watch_experiment(experiment_by_id(experiment.pk))  # what the rollup task does next

    admin = browsing.new_page()
    admin_login(admin, merchandiser)
    admin.goto(f"/admin/recs/experiments/{experiment.pk}/")
    for table in ("variants-table", "comparisons-table", "shadows-table"):
        assert admin.locator(f"#{table}").is_visible()
        assert columns_off_screen(admin, table) == [], f"{table} is cut off at 1280 px"
    assert admin.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]

    banner = admin.locator("#srm-banner")
    assert banner.is_visible() and "Sample ratio mismatch" in banner.inner_text()
    assert "blocked until someone acknowledges" in banner.inner_text()
    paused = admin.locator("#paused-trending")
    assert paused.is_visible()
    assert "conversion per shopper dropped by more than 5 %" in paused.inner_text()
    browsing.screenshot(admin, "dashboard-srm-and-guardrail")

    # Promotion is refused while the mismatch stands ...
    admin.goto(f"/admin/merch/experiment/{experiment.pk}/promote/")
    admin.get_by_label("control: popular (the control)").check()
    admin.get_by_role("button", name="Promote and stop").click()
    assert "sample ratio mismatch" in admin.locator("ul.messagelist").inner_text()
    assert Experiment.objects.get(pk=experiment.pk).status == "running"

    # ... and allowed once a merchandiser has acknowledged it on the dashboard.
    admin.goto(f"/admin/recs/experiments/{experiment.pk}/")
    admin.get_by_role("button", name="Acknowledge the mismatch").click()
    admin.wait_for_url(f"**/admin/recs/experiments/{experiment.pk}/")
    assert "Acknowledged by" in admin.locator("#srm-banner").inner_text()
    admin.goto(f"/admin/merch/experiment/{experiment.pk}/promote/")
    admin.get_by_label("control: popular (the control)").check()
    admin.get_by_role("button", name="Promote and stop").click()
    assert "Promoted 'control'" in admin.locator("ul.messagelist").inner_text()
