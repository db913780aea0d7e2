"""Settings of the test run: the project's, plus a shop's own product model (tests/host_shop)
that the catalog adapter's tests (merch.catalog_source) follow."""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.host_shop"]  # noqa: F405
