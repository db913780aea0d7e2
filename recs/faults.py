"""Fault injection for tests and benchmarks: delays that settings switch on (all 0 by default)."""

import time

from aisle.conf import aisle_settings


def scoring_delay() -> None:
    """Wait SCORING_DELAY_S before a worker scores with a model, to stand for a slow model."""
    if aisle_settings.SCORING_DELAY_S:
        time.sleep(aisle_settings.SCORING_DELAY_S)
