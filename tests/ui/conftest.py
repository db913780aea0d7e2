"""Browser tests: Debian's Chromium, driven by Playwright, against pytest-django's live server.

The live server runs in a thread of the test process (transactional database, static files
served by Django's StaticFilesHandler, so aisle.js loads and sends events), with the private
test Redis. Each test gets fresh browser contexts; screenshots go to the run's artifacts
directory, `$AISLE_VAR_DIR/test-artifacts/ui/` (by default `var/test-artifacts/ui/`).
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User

from recs.api_keys import create_api_key
from tests.recs.conftest import (  # noqa: F401 - fixtures shared with the engine's tests
    artifact_dir,
    default_placements,
    fresh_reader_state,
    shop,
    shop_history,
)

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 900}
DEFAULT_TIMEOUT_MS = 15_000
MERCHANDISER = ("merchandiser", "ui-test-password")

_screenshots: list[Path] = []


def artifacts_dir() -> Path:
    return Path(settings.VAR_DIR) / "test-artifacts" / "ui"


def chromium_path() -> str:
    return shutil.which("chromium") or CHROMIUM


@pytest.fixture(scope="package")
def browser() -> Iterator:
    """One headless Chromium for all browser tests (Debian's package; Playwright's download is
    not used), closed when they are done. Package scope, not session: pytest-django runs the
    tests without a database after these, and they must not inherit Playwright's running loop
    or the async-unsafe switch below (a `manage.py check --deploy` subprocess refuses it)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if not os.path.exists(executable):
        pytest.fail("chromium is not installed; `bash scripts/test.sh` installs it (apt).")
    shutil.rmtree(artifacts_dir(), ignore_errors=True)
    artifacts_dir().mkdir(parents=True, exist_ok=True)
    # Playwright's sync API keeps an asyncio loop "running" in this thread while it is alive,
    # so Django would refuse ORM calls made by the test code. Nothing here is async: the loop
    # only carries the browser protocol. The live server answers from its own threads.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=executable, args=["--no-sandbox", "--headless=new"]
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def _models_in_tmp(request):
    """No fallback snapshot of a local training run leaks into a test: models go to tmp."""
    request.getfixturevalue("artifact_dir")


class Browsing:
    """Fresh browser contexts for one test (one per person), screenshots, JS errors."""

    def __init__(self, browser, base_url: str, test_name: str) -> None:
        self.browser, self.base_url, self.test_name = browser, base_url, test_name
        self.contexts: list = []
        self.page_errors: list[str] = []

    def new_page(self):
        context = self.browser.new_context(viewport=VIEWPORT, base_url=self.base_url)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))
        return page

    def screenshot(self, page, name: str) -> Path:
        """Save the whole page as `<test>--<name>.png` in the artifacts directory."""
        assert not self.page_errors, f"JavaScript errors on the pages: {self.page_errors}"
        path = artifacts_dir() / f"{self.test_name}--{name}.png"
        page.screenshot(path=str(path), full_page=True)
        _screenshots.append(path)
        return path

    def save_failure_screens(self) -> None:
        """Every open page as `<test>--failed-<n>.png`, to see what the browser saw."""
        pages = [page for context in self.contexts for page in context.pages]
        for n, page in enumerate(pages, start=1):
            path = artifacts_dir() / f"{self.test_name}--failed-{n}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
            except Exception:  # a closed or crashed page: nothing to save
                continue
            _screenshots.append(path)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


_failed = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember a failed test, so that `browsing` saves what its pages showed."""
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_failed] = True
    return report


@pytest.fixture
def browsing(browser, live_server, request) -> Iterator[Browsing]:
    session = Browsing(browser, live_server.url, request.node.name)
    yield session
    if request.node.stash.get(_failed, False):
        session.save_failure_screens()
    session.close()
    assert not session.page_errors, f"JavaScript errors on the pages: {session.page_errors}"


@pytest.fixture
def storefront_key(settings, db) -> str:
    """The write key the storefront pages' JS sends events with, as demo.sh sets it."""
    _, plaintext = create_api_key("storefront (browser tests)", "publishable")
    settings.AISLE = {**settings.AISLE, "STOREFRONT_PUBLISHABLE_KEY": plaintext}
    return plaintext


@pytest.fixture
def merchandiser(db) -> User:
    """A staff user with the merch app's permissions: what a merchandiser is given."""
    username, password = MERCHANDISER
    user = User.objects.create_user(username, password=password, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="merch"))
    return user


def admin_login(page, user: User, password: str = MERCHANDISER[1]) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.locator("#user-tools").wait_for()  # signed in: the admin greets the user


def carousel(page, placement: str):
    return page.locator(f"section[data-aisle-carousel][data-aisle-placement='{placement}']")


def carousel_skus(page, placement: str) -> list[str]:
    return (
        carousel(page, placement)
        .locator("[data-aisle-sku]")
        .evaluate_all("cards => cards.map(card => card.dataset.aisleSku)")
    )


def is_events_post(response) -> bool:
    return response.url.endswith("/api/v1/events") and response.request.method == "POST"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _screenshots:
        terminalreporter.write_sep("-", "browser test screenshots")
        terminalreporter.write_line(f"{len(_screenshots)} PNG files in {artifacts_dir()}")


def trending_experiment_draft():
    """A draft home-page experiment with a shown challenger, a shadow and a guardrail: the
    shape the admin's experiment pages and dashboard are checked at."""
    from merch.models import Placement
    from merch.services.experiments import VariantSpec, create_experiment

    return create_experiment(
        "Trending on the home page", Placement.objects.get(key="home"),
        [VariantSpec("control", "popular", 0, is_control=True),
         VariantSpec("trending", "trending", 50),
         VariantSpec("knn-shadow", "item_knn", 0, is_shadow=True)],
        guardrails=[("conversion", 5)],
    )  # fmt: skip
