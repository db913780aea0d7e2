"""recs.serving.experiments: deterministic, sticky assignment; kill and pause serve control."""

from collections import Counter

import pytest

from merch.selectors.experiments import ExperimentConfig, VariantConfig
from merch.selectors.merchandising import PlacementConfig
from recs.serving.experiments import assign_variant, bucket_of, choose_variant
from recs.serving.types import RecommendationContext

HOME = PlacementConfig("home", "Home", "auto", 8, True, 3, True)
SUBJECTS = [f"session:s-{n}" for n in range(20_000)]


def experiment(*treatments: tuple[str, float], status="running", shadow=False, **fields):
    variants = [VariantConfig("control", "auto", 0.0, True, False)]
    variants += [
        VariantConfig(name, "popular", percent, False, False) for name, percent in treatments
    ]
    if shadow:
        variants.append(VariantConfig("shadow-ease", "ease", 0.0, False, True))
    return ExperimentConfig(
        id=7, name="exp", placement_key="home", status=status, salt="salt-1",
        starts_at=fields.get("starts_at"), ends_at=fields.get("ends_at"), variants=tuple(variants),
    )  # fmt: skip


def shares(config) -> Counter:
    return Counter(choose_variant(config, subject).name for subject in SUBJECTS)


def test_assignment_is_deterministic_per_salt_and_subject():
    assert bucket_of("salt-1", "u-1") == bucket_of("salt-1", "u-1")
    assert bucket_of("salt-1", "u-1") != bucket_of("salt-2", "u-1") or bucket_of(
        "salt-1", "u-2"
    ) != bucket_of("salt-2", "u-2")


def test_traffic_shares_follow_the_percentages():
    counts = shares(experiment(("a", 20.0), ("b", 30.0)))
    assert counts["a"] / len(SUBJECTS) == pytest.approx(0.20, abs=0.015)
    assert counts["b"] / len(SUBJECTS) == pytest.approx(0.30, abs=0.015)
    assert counts["control"] / len(SUBJECTS) == pytest.approx(0.50, abs=0.015)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ([("a", 2.0)], [("a", 10.0)]),
        ([("a", 2.0)], [("a", 80.0)]),
        ([("a", 5.0), ("b", 5.0)], [("a", 40.0), ("b", 5.0)]),
        ([("a", 5.0), ("b", 5.0)], [("a", 5.0), ("b", 45.0)]),
        ([("a", 30.0), ("b", 10.0)], [("a", 70.0), ("b", 30.0)]),
    ],
)
def test_ramping_up_only_moves_shoppers_out_of_control(before, after):
    low, high = experiment(*before), experiment(*after)
    for subject in SUBJECTS:
        was = choose_variant(low, subject).name
        if was != "control":
            assert choose_variant(high, subject).name == was, subject


def test_shadow_variants_take_no_traffic():
    assert "shadow-ease" not in shares(experiment(("a", 50.0), shadow=True))


@pytest.mark.parametrize("status", ["paused", "stopped", "draft"])
def test_only_a_running_experiment_routes_traffic(status):
    context = RecommendationContext(placement="home", session_id="s-1")
    variant = assign_variant(context, HOME, [experiment(("a", 100.0), status=status)], 1e9)
    assert variant.name == "default" and variant.experiment_id is None


def test_outside_its_schedule_the_experiment_serves_the_default():
    context = RecommendationContext(placement="home", session_id="s-1")
    later = experiment(("a", 100.0), starts_at=2e9)
    assert assign_variant(context, HOME, [later], 1e9).name == "default"
    assert assign_variant(context, HOME, [later], 2e9 + 1).name == "a"


def test_a_variant_naming_a_learner_serves_its_lists():
    config = ExperimentConfig(
        id=3, name="x", placement_key="home", status="running", salt="s", starts_at=None,
        ends_at=None, variants=(VariantConfig("control", "auto", 0.0, True, False),
                                VariantConfig("ease", "ease", 100.0, False, False)),
    )  # fmt: skip
    variant = assign_variant(RecommendationContext("home", user_id="u"), HOME, [config], 1e9)
    assert (variant.name, variant.strategy, variant.model_key) == ("ease", "auto", "ease")
