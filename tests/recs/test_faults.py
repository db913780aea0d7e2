"""recs.faults: the injected scoring delay is off by default and honoured where workers score."""

import pytest
from django.conf import settings
from django.test import override_settings

from recs import faults
from recs.training import registry


@pytest.fixture
def sleeps(monkeypatch):
    calls: list[float] = []
    monkeypatch.setattr(faults.time, "sleep", calls.append)
    return calls


def test_no_delay_by_default(sleeps):
    faults.scoring_delay()

    assert sleeps == []


@pytest.mark.django_db
def test_a_worker_taking_up_a_model_waits_the_configured_delay(sleeps):
    with override_settings(AISLE={**settings.AISLE, "SCORING_DELAY_S": 1.2}):
        registry.serving_learner_by_key("hybrid")

    assert sleeps == [1.2]
