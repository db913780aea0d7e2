"""recs.experiments.watch and the services it drives: guardrails pause a challenger, a sample
ratio mismatch blocks promotion until acknowledged."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from merch.models import Experiment, ExperimentGuardrail, ExperimentVariant, Placement
from merch.selectors.experiments import experiment_by_id
from merch.selectors.merchandising import PlacementConfig
from merch.services.experiments import (
    VariantSpec,
    acknowledge_sample_ratio_mismatch,
    create_experiment,
    promote_winner,
    ramp_experiment,
    record_sample_ratio_check,
    save_guardrails,
    start_experiment,
)
from recs.experiments.watch import watch_experiment
from recs.models import VariantHourlyStats
from recs.serving.experiments import assign_variant, bucket_of
from recs.serving.types import RecommendationContext

pytestmark = pytest.mark.django_db

HOUR = datetime(2026, 11, 30, 9, tzinfo=UTC)


@pytest.fixture
def experiment(default_placements):
    created = create_experiment(
        "Trending on home", Placement.objects.get(key="home"),
        [VariantSpec("control", "popular", 0, is_control=True),
         VariantSpec("trending", "trending", 50)],
        guardrails=[("conversion", 5)],
    )  # fmt: skip
    return start_experiment(created)


def seed(experiment, variant, exposed, converting, hour=HOUR):
    VariantHourlyStats.objects.create(
        experiment_id=experiment.pk, variant=variant, hour=hour,
        exposed_subjects=exposed, converting_subjects=converting,
    )  # fmt: skip


def shopper_in(config, variant_name):
    """A session id that the experiment's hash puts in the named variant."""
    for n in range(10_000):
        subject = f"session:s{n}"
        in_treatment = bucket_of(config.salt, subject) < 5000  # trending: the first half
        if in_treatment == (variant_name == "trending"):
            return f"s{n}"
    raise AssertionError("no such shopper")


def test_a_tripped_guardrail_pauses_the_challenger_and_its_shoppers_see_the_control(experiment):
    seed(experiment, "control", 4000, 400)
    seed(experiment, "trending", 4000, 250)  # 6.25 % against 10 %: far beyond a 5 % drop
    report = watch_experiment(experiment_by_id(experiment.pk))

    (breach,) = report.guardrail_breaches
    variant = ExperimentVariant.objects.get(experiment=experiment, name="trending")
    assert variant.paused_at is not None and variant.paused_reason == breach.reason
    assert "conversion per shopper dropped by more than 5 %" in variant.paused_reason
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.RUNNING  # the rest of the test goes on
    assert experiment.split_changed_at == variant.paused_at

    config = experiment_by_id(experiment.pk)
    placement = PlacementConfig("home", "Home", "auto", 8, True, 3, True)
    context = RecommendationContext(placement="home", session_id=shopper_in(config, "trending"))
    served = assign_variant(context, placement, [config], now_s=HOUR.timestamp())
    assert (served.name, served.strategy, served.experiment_id) == ("default", "popular", None)

    # Watching again pauses nothing twice; ramping the challenger is the way back.
    watch_experiment(experiment_by_id(experiment.pk))
    assert ExperimentVariant.objects.get(pk=variant.pk).paused_at == variant.paused_at
    ramp_experiment(experiment, 20)
    variant.refresh_from_db()
    assert (variant.paused_at, variant.paused_reason, variant.traffic_percent) == (None, "", 20)


def test_a_drop_within_the_guardrail_or_not_yet_certain_pauses_nothing(experiment):
    seed(experiment, "control", 300, 30)
    seed(experiment, "trending", 300, 22)  # worse, but 300 shoppers cannot say by how much
    report = watch_experiment(experiment_by_id(experiment.pk))
    assert report.guardrail_breaches == []
    assert not ExperimentVariant.objects.filter(paused_at__isnull=False).exists()


def test_a_sample_ratio_mismatch_blocks_promotion_until_acknowledged(experiment):
    seed(experiment, "control", 700, 70)
    seed(experiment, "trending", 300, 30)  # set to 50 / 50
    watch_experiment(experiment_by_id(experiment.pk))
    experiment.refresh_from_db()
    assert experiment.srm_flagged_at is not None and experiment.srm_p_value < 1e-10
    assert experiment.srm_blocks_promotion and experiment_by_id(experiment.pk).srm_blocks_promotion
    trending = experiment.variants.get(name="trending")
    with pytest.raises(ValidationError, match="sample ratio mismatch"):
        promote_winner(experiment, trending)

    acknowledge_sample_ratio_mismatch(experiment, "merchandiser")
    experiment.refresh_from_db()
    assert experiment.srm_acknowledged_by == "merchandiser"
    assert not experiment.srm_blocks_promotion
    # Still flagged at the next rollup: the acknowledgement holds ...
    watch_experiment(experiment_by_id(experiment.pk))
    experiment.refresh_from_db()
    assert not experiment.srm_blocks_promotion
    assert promote_winner(experiment, trending).winner == "trending"


def test_a_mismatch_that_clears_and_comes_back_needs_acknowledging_again(experiment):
    record_sample_ratio_check(experiment.pk, 1e-9, flagged=True)
    experiment.refresh_from_db()
    acknowledge_sample_ratio_mismatch(experiment, "merchandiser")
    record_sample_ratio_check(experiment.pk, 0.4, flagged=False)
    experiment.refresh_from_db()
    assert experiment.srm_flagged_at is None and experiment.srm_p_value == 0.4
    with pytest.raises(ValidationError, match="nothing to acknowledge"):
        acknowledge_sample_ratio_mismatch(experiment, "merchandiser")
    record_sample_ratio_check(experiment.pk, 1e-7, flagged=True)
    experiment.refresh_from_db()
    assert experiment.srm_blocks_promotion


def test_a_balanced_split_is_recorded_as_checked_and_not_flagged(experiment):
    for hour in range(3):
        seed(experiment, "control", 400 + hour, 40, HOUR + timedelta(hours=hour))
        seed(experiment, "trending", 395 - hour, 40, HOUR + timedelta(hours=hour))
    watch_experiment(experiment_by_id(experiment.pk))
    experiment.refresh_from_db()
    assert experiment.srm_p_value > 0.5 and experiment.srm_flagged_at is None


def test_guardrails_are_one_per_metric_and_can_change_while_running(experiment):
    with pytest.raises(ValidationError, match="One guardrail per metric"):
        save_guardrails(experiment, [ExperimentGuardrail(metric="conversion")])
    save_guardrails(experiment, [ExperimentGuardrail(metric="revenue_per_shopper",
                                                     max_drop_percent=2)])  # fmt: skip
    assert sorted(experiment.guardrails.values_list("metric", flat=True)) == [
        "conversion", "revenue_per_shopper"
    ]  # fmt: skip
    assert {g.metric for g in experiment_by_id(experiment.pk).guardrails} == {
        "conversion", "revenue_per_shopper"
    }  # fmt: skip


def test_the_planned_sample_size_is_fixed_once_started(experiment):
    from merch.services.experiments import save_experiment

    experiment.planned_shoppers_per_arm = 500
    with pytest.raises(ValidationError, match="planned shoppers per arm are fixed"):
        save_experiment(experiment)
