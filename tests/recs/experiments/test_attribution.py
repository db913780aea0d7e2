"""recs.experiments: served-list log, attribution rollups and shadow comparison."""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from merch.models import Placement
from merch.selectors.experiments import experiment_by_id
from merch.services.experiments import VariantSpec, create_experiment, start_experiment
from recs.experiments.attribution import rollup_experiment
from recs.models import Event, ServedList, VariantHourlyStats

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)


@pytest.fixture
def experiment(default_placements, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = create_experiment(
            "Trending on home", Placement.objects.get(key="home"),
            [VariantSpec("control", "auto", 0, is_control=True),
             VariantSpec("trending", "trending", 50),
             VariantSpec("shadow", "ease", 0, is_shadow=True)],
        )  # fmt: skip
        start_experiment(created)
    return experiment_by_id(created.pk)


def served(rec_id, subject, variant, skus, at=T0, **fields):
    return ServedList.objects.create(
        rec_id=rec_id, served_at=at, placement="home", experiment_id=fields.pop("exp"),
        variant=variant, subject_id=subject, session_id=subject.removeprefix("session:"),
        skus=skus, **fields,
    )  # fmt: skip


def event(n, event_type, session, sku, minutes, rec_id="", price=None, quantity=None):
    return Event.objects.create(
        event_id=f"ev-{n}", event_type=event_type, session_id=session, product_sku=sku,
        occurred_at=T0 + timedelta(minutes=minutes), context={"rec_id": rec_id} if rec_id else {},
        price=Decimal(price) if price else None, quantity=quantity,
    )  # fmt: skip


def test_outcomes_after_exposure_count_for_the_shoppers_variant(experiment):
    exp = experiment.id
    served("r1", "session:a", "control", ["P1", "P2"], exp=exp)
    served("r2", "session:b", "trending", ["P3", "P4"], exp=exp)
    served("r3", "session:a", "shadow", ["P2", "P5"], exp=exp, is_shadow=True, shadow_of="r1")
    event(1, "purchase", "a", "P7", -5, price="9.00")  # before exposure: not counted
    event(2, "impression", "a", "P1", 1, rec_id="r1")
    event(3, "impression", "a", "P2", 1, rec_id="r1")
    event(4, "click", "a", "P1", 2, rec_id="r1")
    event(5, "add_to_cart", "a", "P1", 3)  # no rec_id, but a product it showed them
    event(6, "purchase", "a", "P1", 4, price="10.00", quantity=2)
    event(7, "purchase", "a", "P9", 5, price="5.00")
    event(8, "impression", "b", "P3", 1, rec_id="r2")
    event(9, "impression", "b", "P4", 1, rec_id="r2")
    event(10, "purchase", "b", "P3", 6, price="4.00")
    event(11, "purchase", "c", "P3", 6, price="4.00")  # never exposed
    assert rollup_experiment(experiment) == 3
    rows = {row.variant: row for row in VariantHourlyStats.objects.filter(experiment_id=exp)}
    control, trending, shadow = rows["control"], rows["trending"], rows["shadow"]
    assert control.hour == T0.replace(minute=0)
    assert (control.exposed_subjects, control.lists_served, control.impressions) == (1, 1, 2)
    assert (control.clicks, control.add_to_carts, control.converting_subjects) == (1, 1, 1)
    assert control.revenue == 25.0 and control.revenue_squares == 625.0
    assert control.recommended_revenue == 20.0
    assert (trending.exposed_subjects, trending.impressions, trending.clicks) == (1, 2, 0)
    assert trending.revenue == 4.0 and trending.recommended_revenue == 4.0
    assert shadow.shadow_lists == 1 and shadow.shadow_overlap == 0.5
    assert (shadow.outcomes, shadow.shadow_hits, shadow.served_hits) == (2, 0, 1)


def test_rollup_is_idempotent_and_counts_a_shopper_once(experiment):
    exp = experiment.id
    served("r1", "session:a", "control", ["P1"], exp=exp)
    served("r2", "session:a", "control", ["P2"], at=T0 + timedelta(hours=2), exp=exp)
    event(1, "purchase", "a", "P2", 150, price="3.00")
    rollup_experiment(experiment)
    first = list(VariantHourlyStats.objects.values("variant", "hour", "exposed_subjects",
                                                   "lists_served", "revenue"))  # fmt: skip
    rollup_experiment(experiment)
    again = list(VariantHourlyStats.objects.values("variant", "hour", "exposed_subjects",
                                                   "lists_served", "revenue"))  # fmt: skip
    assert first == again
    assert first == [{"variant": "control", "hour": T0.replace(minute=0), "exposed_subjects": 1,
                      "lists_served": 2, "revenue": 3.0}]  # fmt: skip


def test_purchases_outside_the_attribution_window_do_not_count(experiment, settings):
    settings.AISLE = {**settings.AISLE, "ATTRIBUTION_WINDOW_HOURS": 1}
    served("r1", "session:a", "control", ["P1"], exp=experiment.id)
    event(1, "purchase", "a", "P1", 90, price="3.00")
    rollup_experiment(experiment)
    row = VariantHourlyStats.objects.get(variant="control")
    assert row.converting_subjects == 0 and row.revenue == 0.0


def test_clicks_on_a_shown_product_count_without_a_rec_id_and_versions_are_kept(experiment):
    served("r1", "session:a", "control", ["P1"], exp=experiment.id, model_version="hybrid#8")
    event(1, "click", "a", "P1", 3)
    event(2, "click", "a", "P8", 4)  # never shown to them
    rollup_experiment(experiment)
    row = VariantHourlyStats.objects.get(variant="control")
    assert row.clicks == 1 and row.model_versions == {"hybrid#8": 1}


def test_shadow_comparison_scores_what_the_shopper_did_anywhere_with_one_cutoff(experiment):
    """Outcomes: views, carts and purchases of any product after the list, except those
    reached through the experiment's shown lists (they carry its rec_id); both lists are cut
    to the shorter one's length."""
    exp = experiment.id
    served("r1", "session:a", "control", ["P1", "P2", "P3"], exp=exp)
    served("r2", "session:a", "shadow", ["P4", "P5"], exp=exp, is_shadow=True, shadow_of="r1")
    event(1, "click", "a", "P1", 1, rec_id="r1")  # through the shown list: left out
    event(2, "view", "a", "P1", 2, rec_id="r1")  # the product page it led to: left out
    event(3, "view", "a", "P4", 3)
    event(4, "add_to_cart", "a", "P5", 4)
    event(5, "purchase", "a", "P3", 5, price="2.00")  # in the shown list, below the cut-off
    event(6, "view", "a", "P9", 6)
    event(7, "view", "a", "P4", 7)  # a product counts once
    rollup_experiment(experiment)
    shadow = VariantHourlyStats.objects.get(variant="shadow")
    assert (shadow.outcomes, shadow.shadow_hits, shadow.served_hits) == (4, 2, 0)


def test_a_shadow_that_knows_the_shoppers_better_wins_the_comparison(experiment):
    """Simulated shoppers whose tastes are known: the shown list holds one product they like,
    the shadow three. Each shopper clicks what they like in the shown list (through it) and
    then browses what they like in the shop (not through it). The shadow must win, by more
    than the intervals' width."""
    import random

    from merch.selectors.experiments import experiment_by_id as config_of
    from recs.experiments.report import experiment_report

    rng = random.Random(5)
    catalog = [f"S{n}" for n in range(60)]
    n_event = 0
    for n in range(120):
        taste = rng.sample(catalog, 6)
        others = [sku for sku in catalog if sku not in taste]
        shown = [taste[0], *rng.sample(others, 5)]
        shadow = [*taste[1:4], *rng.sample(others, 3)]
        subject = f"session:s{n}"
        served(f"r{n}", subject, "control", shown, exp=experiment.id)
        served(f"h{n}", subject, "shadow", shadow, exp=experiment.id, is_shadow=True,
               shadow_of=f"r{n}")  # fmt: skip
        n_event += 1
        event(f"{n_event}", "click", f"s{n}", taste[0], 1, rec_id=f"r{n}")
        for minutes, sku in enumerate(rng.sample(taste, 4), start=2):
            n_event += 1
            event(f"{n_event}", "view", f"s{n}", sku, minutes)
    rollup_experiment(experiment)
    shadow = experiment_report(config_of(experiment.id)).shadows[0]
    assert shadow.shadow_hit_rate.low > shadow.served_hit_rate.high


def test_each_shoppers_history_before_exposure_is_summed_for_cuped(experiment, settings):
    settings.AISLE = {**settings.AISLE, "EXPERIMENT_CUPED_LOOKBACK_DAYS": 7}
    exp = experiment.id
    served("r1", "session:a", "control", ["P1"], exp=exp)
    served("r2", "session:b", "control", ["P1"], exp=exp)
    event(1, "view", "a", "P1", -60)
    event(2, "add_to_cart", "a", "P1", -59)
    event(3, "purchase", "a", "P1", -58, price="6.00", quantity=2)
    event(4, "view", "a", "P2", -60 * 24 * 8)  # before the lookback
    event(5, "impression", "a", "P2", -30)  # not activity
    event(6, "purchase", "a", "P1", 10, price="5.00")  # after exposure: the outcome
    rollup_experiment(experiment)
    row = VariantHourlyStats.objects.get(variant="control")
    x_a = math.log1p(3)
    assert row.pre_activity == pytest.approx(x_a)  # b had no history: log(1 + 0) = 0
    assert row.pre_activity_squares == pytest.approx(x_a**2)
    assert row.pre_activity_conversion == pytest.approx(x_a)  # a converted, b did not
    assert (row.pre_revenue, row.pre_revenue_squares) == (12.0, 144.0)
    assert row.pre_revenue_revenue == 12.0 * 5.0
