"""Admin pages in a real browser at 1280 px: nothing wider than the window, tables that line up."""

import pytest

from tests.recs.observability.test_dashboards import seed_serving_hours
from tests.ui.conftest import VIEWPORT, admin_login, trending_experiment_draft

pytestmark = pytest.mark.browser


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_the_add_and_change_experiment_pages_fit_a_1280_px_window(browsing, shop, merchandiser):
    admin = browsing.new_page()
    admin_login(admin, merchandiser)
    admin.goto("/admin/merch/experiment/add/")
    admin.get_by_role("button", name="Add another Experiment guardrail").click()
    assert admin.locator("#variants-group tbody tr.form-row").count() >= 2
    browsing.screenshot(admin, "admin-add-experiment")
    assert page_width(admin) <= VIEWPORT["width"], "the add page scrolls sideways"

    experiment = trending_experiment_draft()
    admin.goto(f"/admin/merch/experiment/{experiment.pk}/change/")
    assert admin.locator("#variants-group tbody tr.has_original").count() == 3
    assert page_width(admin) <= VIEWPORT["width"], "the change page scrolls sideways"


def test_the_health_pages_total_row_lines_up_with_the_rows_above(browsing, shop, merchandiser):
    seed_serving_hours()
    admin = browsing.new_page()
    admin_login(admin, merchandiser)
    admin.goto("/admin/recs/health/")
    table = admin.locator(".module", has_text="Served by tier").locator("table")
    assert table.locator("tfoot").inner_text().startswith("All requests")
    body, total = (
        table.locator(f"{part} tr").first.evaluate(
            """row => [...row.children].map((cell) => {
                const style = getComputedStyle(cell), box = cell.getBoundingClientRect();
                return [Math.round(box.left), Math.round(box.right), style.fontSize,
                        style.paddingRight, style.textAlign, style.borderBottomWidth];
            })"""
        )
        for part in ("tbody", "tfoot")
    )
    columns = [cell[:5] for cell in body]
    assert [cell[:5] for cell in total] == columns, "same columns, size, padding and alignment"
    assert len({cell[5] for cell in total}) == 1, "one border under the whole total row"
