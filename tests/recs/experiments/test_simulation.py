"""recs.experiments.simulation / manage.py simulate_shoppers: rehearsal data for dashboards."""

import pytest
from django.core.management import CommandError, call_command

from merch.models import Placement
from merch.services.experiments import VariantSpec, create_experiment, start_experiment
from recs.models import Event, VariantHourlyStats

pytestmark = pytest.mark.django_db


def test_simulated_shoppers_are_served_logged_and_rolled_up_by_hour(shop, capsys):
    experiment = create_experiment(
        "Demo", Placement.objects.get(key="home"),
        [VariantSpec("control", "popular", 0, is_control=True), VariantSpec("b", "trending", 50)],
    )  # fmt: skip
    with pytest.raises(CommandError, match="draft"):
        call_command("simulate_shoppers", str(experiment.pk))
    start_experiment(experiment)
    call_command("simulate_shoppers", str(experiment.pk), "--shoppers", "60", "--hours", "3",
                 "--conversion", "b=1.0", "control=0")  # fmt: skip
    out = capsys.readouterr().out
    rows = VariantHourlyStats.objects.filter(experiment_id=experiment.pk)
    assert {row.variant for row in rows} == {"control", "b"}
    assert len({row.hour for row in rows}) >= 3, "spread over the hours"
    bought = Event.objects.filter(event_type="purchase").count()
    assert sum(row.converting_subjects for row in rows) == bought
    assert sum(row.converting_subjects for row in rows if row.variant == "control") == 0
    assert f"{bought} bought" in out
