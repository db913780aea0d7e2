"""recs.experiments.simulation / manage.py simulate_shoppers: rehearsal data for dashboards."""

from itertools import pairwise

import pytest
from django.core.management import CommandError, call_command

from merch.models import Placement, Product
from merch.selectors.experiments import experiment_by_id
from merch.services.experiments import VariantSpec, create_experiment, start_experiment
from recs.experiments.simulation import simulate_shoppers
from recs.models import Event, ServedList, VariantHourlyStats

pytestmark = pytest.mark.django_db


def test_simulated_shoppers_are_served_logged_and_rolled_up_by_hour(shop, capsys):
    experiment = create_experiment(
        "Demo", Placement.objects.get(key="home"),
        [VariantSpec("control", "popular", 0, is_control=True), VariantSpec("b", "trending", 50)],
    )  # fmt: skip
    with pytest.raises(CommandError, match="draft"):
        call_command("simulate_shoppers", str(experiment.pk))
    start_experiment(experiment)
    with pytest.raises(CommandError, match="--cart"):
        call_command("simulate_shoppers", str(experiment.pk), "--cart", "control=2")
    call_command("simulate_shoppers", str(experiment.pk), "--shoppers", "60", "--hours", "3",
                 "--conversion", "b=1.0", "control=0", "--cart", "control=0.5")  # fmt: skip
    out = capsys.readouterr().out
    rows = VariantHourlyStats.objects.filter(experiment_id=experiment.pk)
    assert {row.variant for row in rows} == {"control", "b"}
    for variant in ("control", "b"):
        assert sum(row.add_to_carts for row in rows if row.variant == variant) > 0, variant
    assert len({row.hour for row in rows}) >= 3, "spread over the hours"
    # Purchases of this visit; earlier visits' ("past-") are the shoppers' history.
    bought = Event.objects.filter(event_type="purchase").exclude(event_id__contains="-past").count()
    assert sum(row.converting_subjects for row in rows) == bought
    assert sum(row.converting_subjects for row in rows if row.variant == "control") == 0
    assert f"{bought} bought" in out


def test_simulated_shoppers_click_cart_and_buy_from_the_list_then_browse_their_taste(shop):
    experiment = create_experiment(
        "Funnel", Placement.objects.get(key="home"),
        [VariantSpec("control", "popular", 0, is_control=True), VariantSpec("b", "trending", 50),
         VariantSpec("auto-shadow", "auto", 0, is_shadow=True)],
    )  # fmt: skip
    start_experiment(experiment)
    result = simulate_shoppers(
        experiment_by_id(experiment.pk), 60, hours=2,
        conversion={"control": 0.1, "b": 0.3}, add_to_cart={"control": 0.3, "b": 0.2},
    )  # fmt: skip
    shown = {s.rec_id: s for s in ServedList.objects.filter(experiment_id=experiment.pk)}
    assert sum(s.is_shadow for s in shown.values()) == 60, "shadows scored with no worker"
    events = list(Event.objects.filter(session_id__startswith="sim-").order_by("occurred_at"))
    past = [e for e in events if "-past-" in e.event_id]
    events = [e for e in events if "-past-" not in e.event_id]
    listed = [e for e in events if e.context.get("rec_id")]
    organic = [e for e in events if not e.context.get("rec_id")]
    for event in listed:
        served = shown[event.context["rec_id"]]
        assert not served.is_shadow and served.session_id == event.session_id
        assert event.product_sku in served.skus
    carts = [e for e in listed if e.event_type == "add_to_cart"]
    assert len(carts) == sum(result.carted.values()) and result.carted["b"] > 0
    purchases = [e for e in events if e.event_type == "purchase"]
    assert len(purchases) == sum(result.converted.values()) > 0
    for purchase in purchases:
        journey = [
            e
            for e in listed
            if e.session_id == purchase.session_id
            and e.product_sku == purchase.product_sku
            and e.event_type != "impression"
        ]
        assert [e.event_type for e in journey] == ["click", "add_to_cart", "purchase"]
        gaps = [(b.occurred_at - a.occurred_at).total_seconds() for a, b in pairwise(journey)]
        assert all(1 < gap < 600 for gap in gaps), "seconds to minutes apart"
    rows = VariantHourlyStats.objects.filter(experiment_id=experiment.pk)
    for variant in ("control", "b"):
        assert sum(row.add_to_carts for row in rows if row.variant == variant) > 0, variant

    views = [e for e in organic if e.event_type == "view"]
    assert {e.event_type for e in organic} <= {"view", "add_to_cart"}
    assert {e.event_type for e in listed} == {"impression", "click", "add_to_cart", "purchase"}
    served_at = {s.session_id: s.served_at for s in shown.values() if not s.is_shadow}
    after = [e for e in views if e.occurred_at > served_at[e.session_id]]
    assert result.organic_views == len(after) >= 60, "each shopper browses after the list"
    category = dict(Product.objects.values_list("sku", "category__path"))
    tastes = {}
    for view in views:
        tastes.setdefault(view.session_id, set()).add(category[view.product_sku])
    assert all(len(paths) == 1 for paths in tastes.values()), "one category per shopper"
    assert len(set().union(*tastes.values())) > 1, "tastes differ between shoppers"

    # Returning shoppers: earlier visits in the past weeks, of their own taste, before the list;
    # some shoppers are new. The rollup sums that history for CUPED.
    assert past and {e.event_type for e in past} <= {"view", "purchase"}
    assert all((served_at[e.session_id] - e.occurred_at).days >= 1 for e in past), (
        "weeks before the visit"
    )
    assert all(category[e.product_sku] in tastes[e.session_id] for e in past)
    returning = {e.session_id for e in past}
    assert 0 < len(returning) < 60, "some shoppers come back, some are new"
    assert sum(row.pre_activity_squares for row in rows) > 0
