"""Shared fixtures: a clean private Redis per test, and the factories."""

import pytest
from django_redis import get_redis_connection

from tests.factories import CategoryFactory, ProductFactory, StockFactory  # noqa: F401


@pytest.fixture(autouse=True)
def clean_redis():
    """Each test starts with an empty (private) Redis."""
    connection = get_redis_connection("default")
    connection.flushdb()
    yield connection
