"""Experiments: variant validation, transitions, signals, selectors and the admin screens."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from merch.models import Experiment, ExperimentVariant, Placement
from merch.selectors.experiments import (
    ExperimentConfig,
    VariantConfig,
    experiment_by_id,
    experiment_summaries,
    experiments_config,
)
from merch.services.experiments import (
    PromotionResult,
    VariantSpec,
    create_experiment,
    delete_experiment,
    kill_experiment,
    pause_experiment,
    promote_winner,
    ramp_experiment,
    save_experiment,
    save_variants,
    start_experiment,
    validate_variants,
)
from merch.services.merchandising import save_placement
from merch.signals import experiments_changed, merchandising_changed
from tests.factories import PlacementFactory

pytestmark = pytest.mark.django_db

EXPERIMENTS_URL = "/admin/merch/experiment/"

CONTROL = VariantSpec("control", "auto", 0, is_control=True)
CHALLENGER = VariantSpec("challenger", "ease", 2)


@pytest.fixture
def announced():
    """The experiment ids of every experiments_changed merch sent (after commit) in the test."""
    received = []

    def receiver(sender, experiment_id, **kwargs):
        assert sender is Experiment
        received.append(experiment_id)

    experiments_changed.connect(receiver, weak=False)
    yield received
    experiments_changed.disconnect(receiver)


@pytest.fixture
def merchandising_announced():
    received = []

    def receiver(sender, **kwargs):
        received.append(sender)

    merchandising_changed.connect(receiver, weak=False)
    yield received
    merchandising_changed.disconnect(receiver)


@pytest.fixture
def home():
    return PlacementFactory(key="home")


def make_experiment(
    placement: Placement | None = None, variants=(CONTROL, CHALLENGER), **values
) -> Experiment:
    values.setdefault("name", "EASE on home")
    return create_experiment(
        placement=placement or PlacementFactory(key="home"), variants=list(variants), **values
    )


def running(placement: Placement | None = None, **values) -> Experiment:
    return start_experiment(make_experiment(placement, **values))


def refusal(call, *args, **kwargs) -> list[str]:
    """The messages of the ValidationError that `call` raises."""
    with pytest.raises(ValidationError) as raised:
        call(*args, **kwargs)
    return raised.value.messages


def traffic(experiment: Experiment) -> dict[str, Decimal]:
    return dict(experiment.variants.values_list("name", "traffic_percent"))


# Validation


def test_new_experiment_is_a_draft_with_its_own_random_salt(home):
    first, second = make_experiment(home), make_experiment(home)
    assert first.status == Experiment.Status.DRAFT
    assert len(first.salt) == 16 and int(first.salt, 16) >= 0
    assert first.salt != second.salt
    assert list(first.variants.values_list("name", "strategy", "is_control", "is_shadow")) == [
        ("control", "auto", True, False),
        ("challenger", "ease", False, False),
    ]
    assert traffic(first) == {"control": Decimal("0.00"), "challenger": Decimal("2.00")}


@pytest.mark.parametrize(
    "variants, count",
    [
        ([CHALLENGER], 0),
        ([CONTROL, VariantSpec("control-2", "popular", 0, is_control=True), CHALLENGER], 2),
    ],
)
def test_experiment_needs_exactly_one_control_and_nothing_is_saved_otherwise(
    home, announced, django_capture_on_commit_callbacks, variants, count
):
    with django_capture_on_commit_callbacks(execute=True):
        messages = refusal(make_experiment, home, variants)
    assert messages == [f"An experiment needs exactly one control variant; this one has {count}."]
    assert not Experiment.objects.exists() and not ExperimentVariant.objects.exists()
    assert announced == []


def test_control_cannot_be_a_shadow(home):
    shadow_control = VariantSpec("control", "auto", 0, is_control=True, is_shadow=True)
    assert refusal(make_experiment, home, [shadow_control, CHALLENGER]) == [
        "Variant 'control', shadow: The control is what shoppers see; it cannot be a shadow."
    ]
    unsaved = [
        ExperimentVariant(name="control", strategy="auto", is_control=True, is_shadow=True),
        ExperimentVariant(name="challenger", strategy="ease", traffic_percent=Decimal(2)),
    ]
    assert refusal(validate_variants, Experiment(placement=home), unsaved) == [
        "The control is what shoppers see; it cannot be a shadow."
    ]


def test_shown_variants_take_at_most_100_percent_and_the_control_takes_the_rest(home):
    messages = refusal(
        make_experiment,
        home,
        [CONTROL, VariantSpec("a", "ease", 60), VariantSpec("b", "hybrid", 50)],
    )
    assert messages == [
        "The variants other than the control take 110 % of traffic; together they can take at "
        "most 100 % (the control takes whatever they do not)."
    ]
    full = make_experiment(
        home, [CONTROL, VariantSpec("a", "ease", 60), VariantSpec("b", "hybrid", "40")]
    )
    assert traffic(full) == {"control": 0, "a": 60, "b": 40}


def test_shadow_variant_takes_no_traffic(home):
    messages = refusal(
        make_experiment, home, [CONTROL, VariantSpec("ease", "ease", 5, is_shadow=True)]
    )
    assert messages == [
        "Variant 'ease', traffic %: A shadow variant is never shown; leave its traffic at 0."
    ]
    unsaved = [
        ExperimentVariant(name="control", strategy="auto", is_control=True),
        ExperimentVariant(name="ease", strategy="ease", is_shadow=True, traffic_percent=5),
    ]
    assert refusal(validate_variants, Experiment(placement=home), unsaved) == [
        "A shadow variant is never shown, so it takes no traffic; set the traffic of ease to 0."
    ]
    shadowed = make_experiment(
        home, [CONTROL, CHALLENGER, VariantSpec("knn", "item_knn", 0, is_shadow=True)]
    )
    assert shadowed.variants.get(name="knn").is_shadow


def test_control_traffic_stays_zero_because_it_takes_whatever_the_others_do_not(home):
    messages = refusal(
        make_experiment, home, [VariantSpec("control", "auto", 90, is_control=True), CHALLENGER]
    )
    assert messages == [
        "Variant 'control', traffic %: The control takes whatever the others do not; leave its "
        "traffic at 0."
    ]


def test_variant_names_are_unique_in_an_experiment(home):
    messages = refusal(
        make_experiment, home, [CONTROL, CHALLENGER, VariantSpec("challenger", "hybrid", 1)]
    )
    assert messages == ["Variant names must be unique in an experiment: challenger."]


def test_unknown_strategy_is_refused_and_learner_keys_follow_the_setting(home, settings):
    assert refusal(make_experiment, home, [CONTROL, VariantSpec("x", "magic", 1)])[0].startswith(
        "Variant 'x', strategy: Unknown strategy 'magic'; choose one of: auto, personal,"
    )
    settings.AISLE = {**settings.AISLE, "EXPERIMENT_MODEL_KEYS": ["ease", "two_tower"]}
    assert make_experiment(home, [CONTROL, VariantSpec("x", "two_tower", 1)]).pk
    assert (
        "Unknown strategy 'item_knn'"
        in refusal(make_experiment, home, [CONTROL, VariantSpec("x", "item_knn", 1)])[0]
    )
    # Strategy names stay valid whatever the setting says.
    assert make_experiment(home, [CONTROL, VariantSpec("x", "trending", 1)]).pk


@pytest.mark.parametrize("percent", [-1, 100.5, "2.555", "lots", float("nan")])
def test_traffic_outside_0_to_100_or_finer_than_hundredths_is_refused(home, percent):
    assert refusal(make_experiment, home, [CONTROL, VariantSpec("x", "ease", percent)])


def test_experiment_that_ends_before_it_starts_is_refused(home):
    now = timezone.now()
    with pytest.raises(ValidationError) as raised:
        make_experiment(home, starts_at=now, ends_at=now)
    assert raised.value.message_dict == {"ends_at": ["The end must be after the start."]}


def test_validate_variants_reads_the_saved_variants_when_given_none(home):
    experiment = make_experiment(home)
    validate_variants(experiment)
    experiment.variants.filter(is_control=True).update(is_control=False)
    assert refusal(validate_variants, experiment) == [
        "An experiment needs exactly one control variant; this one has 0."
    ]


# Transitions


def test_start_moves_a_draft_to_running_and_records_when(home):
    experiment = make_experiment(home)
    before = timezone.now()
    returned = start_experiment(experiment)
    assert returned is experiment and experiment.status == Experiment.Status.RUNNING
    stored = Experiment.objects.get(pk=experiment.pk)
    assert stored.status == Experiment.Status.RUNNING and stored.started_at >= before
    assert stored.stopped_at is None


@pytest.mark.parametrize(
    "prepare, state",
    [
        (start_experiment, "running"),
        (kill_experiment, "stopped"),
    ],
)
def test_start_refuses_what_is_not_a_draft_or_paused(home, prepare, state):
    experiment = make_experiment(home)
    prepare(experiment)
    assert refusal(start_experiment, experiment) == [
        f"Only a draft or paused experiment can start; this one is {state}."
    ]


def test_start_refuses_while_another_experiment_is_live_on_the_placement(home):
    first = running(home, name="Autumn test")
    second = make_experiment(home, name="Winter test")
    assert refusal(start_experiment, second) == [
        "'Autumn test' is already running on the Home page placement; kill it or promote its "
        "winner before starting this one."
    ]
    pause_experiment(first)
    assert "'Autumn test' is already paused" in refusal(start_experiment, second)[0]
    kill_experiment(first)
    assert start_experiment(second).status == Experiment.Status.RUNNING


def test_database_allows_one_running_or_paused_experiment_per_placement(home):
    running(home)
    second = make_experiment(home)
    with pytest.raises(IntegrityError), transaction.atomic():
        Experiment.objects.filter(pk=second.pk).update(status=Experiment.Status.PAUSED)
    running(PlacementFactory(key="cart"))  # another placement is independent
    assert Experiment.objects.filter(status=Experiment.Status.RUNNING).count() == 2


def test_start_refuses_an_experiment_whose_schedule_has_ended(home):
    ended = timezone.now() - timedelta(hours=1)
    experiment = make_experiment(home, starts_at=ended - timedelta(days=1), ends_at=ended)
    message = refusal(start_experiment, experiment)[0]
    assert message.startswith("Its schedule ended at ")
    assert message.endswith("; move the end later (or clear it) before starting it.")


def test_start_refuses_an_experiment_whose_variants_became_invalid(home):
    experiment = make_experiment(home)
    ExperimentVariant.objects.filter(experiment=experiment).update(traffic_percent=Decimal(0))
    ExperimentVariant.objects.filter(name="challenger").update(traffic_percent=Decimal(100))
    start_experiment(experiment)  # exactly 100 % is fine
    pause_experiment(experiment)
    ExperimentVariant.objects.filter(is_control=True).delete()
    assert "exactly one control" in refusal(start_experiment, experiment)[0]


def test_pause_then_resume_keeps_the_first_start_time(home):
    experiment = running(home)
    first_started_at = experiment.started_at
    pause_experiment(experiment)
    assert Experiment.objects.get(pk=experiment.pk).status == Experiment.Status.PAUSED
    start_experiment(experiment)
    stored = Experiment.objects.get(pk=experiment.pk)
    assert stored.status == Experiment.Status.RUNNING and stored.started_at == first_started_at


@pytest.mark.parametrize("state", ["still a draft", "paused", "stopped"])
def test_pause_refuses_anything_but_a_running_experiment(home, state):
    experiment = make_experiment(home)
    if state != "still a draft":
        start_experiment(experiment)
        (pause_experiment if state == "paused" else kill_experiment)(experiment)
    assert refusal(pause_experiment, experiment) == [
        f"Only a running experiment can be paused; this one is {state}."
    ]


@pytest.mark.parametrize("pause_first", [False, True])
def test_kill_stops_at_once_and_sends_everyone_to_the_control(home, pause_first):
    experiment = running(home)
    if pause_first:
        pause_experiment(experiment)
    assert [config.id for config in experiments_config()] == [experiment.pk]
    kill_experiment(experiment)
    stored = Experiment.objects.get(pk=experiment.pk)
    assert stored.status == Experiment.Status.STOPPED and stored.stopped_at is not None
    assert stored.winner is None
    # Gone from what the render path reads: every shopper gets the placement's default again.
    assert experiments_config() == []
    assert Placement.objects.get(pk=home.pk).default_strategy == "auto"
    assert refusal(kill_experiment, experiment) == ["This experiment is already stopped."]


def test_a_draft_can_be_killed_to_abandon_it(home):
    experiment = make_experiment(home)
    assert kill_experiment(experiment).status == Experiment.Status.STOPPED


# Ramp


def test_ramp_sets_the_only_challenger_and_the_control_takes_the_rest(home):
    experiment = running(home)
    variant = ramp_experiment(experiment, 10)
    assert variant.name == "challenger" and variant.traffic_percent == Decimal(10)
    assert traffic(experiment) == {"control": 0, "challenger": 10}
    [config] = experiments_config()
    assert [(v.name, v.traffic_percent) for v in config.variants] == [
        ("control", 90.0),
        ("challenger", 10.0),
    ]
    ramp_experiment(experiment, Decimal("12.5"), "challenger")
    ramp_experiment(experiment, 100.0)
    assert traffic(experiment)["challenger"] == 100


def test_ramp_without_a_name_refuses_when_several_variants_take_traffic(home):
    experiment = make_experiment(
        home, [CONTROL, VariantSpec("ease", "ease", 5), VariantSpec("knn", "item_knn", 5)]
    )
    assert refusal(ramp_experiment, experiment, 20) == [
        "This experiment has several variants that take traffic (ease, knn); say which one to ramp."
    ]
    ramp_experiment(experiment, 20, variant_name="knn")
    assert traffic(experiment) == {"control": 0, "ease": 5, "knn": 20}


def test_ramp_refuses_beyond_100_percent_in_total(home):
    experiment = make_experiment(
        home, [CONTROL, VariantSpec("ease", "ease", 30), VariantSpec("knn", "item_knn", 5)]
    )
    assert refusal(ramp_experiment, experiment, 71, "knn") == [
        "That would give the variants other than the control 101 % of traffic; together they can "
        "take at most 100 % (70 % is left for 'knn')."
    ]
    assert traffic(experiment)["knn"] == 5


@pytest.mark.parametrize(
    "variant_name, message",
    [
        ("nope", "This experiment has no variant named 'nope'."),
        ("control", "The control takes whatever the others do not; ramp another variant instead."),
        ("shadow", "A shadow variant is never shown, so it takes no traffic."),
    ],
)
def test_ramp_refuses_the_control_a_shadow_and_unknown_names(home, variant_name, message):
    experiment = make_experiment(
        home, [CONTROL, CHALLENGER, VariantSpec("shadow", "hybrid", 0, is_shadow=True)]
    )
    assert refusal(ramp_experiment, experiment, 5, variant_name) == [message]


def test_ramp_refuses_when_nothing_takes_traffic_and_when_stopped(home):
    shadow_only = make_experiment(home, [CONTROL, VariantSpec("s", "ease", 0, is_shadow=True)])
    assert "has no variant to ramp" in refusal(ramp_experiment, shadow_only, 5)[0]
    stopped = kill_experiment(make_experiment(home))
    assert refusal(ramp_experiment, stopped, 5) == [
        "A stopped experiment cannot be ramped; create a new one instead."
    ]


@pytest.mark.parametrize("percent", [-0.01, 100.01, 1.234, "ten"])
def test_ramp_refuses_a_share_the_database_cannot_hold(home, percent):
    assert refusal(ramp_experiment, make_experiment(home), percent)


# Promote


def test_promoting_a_serving_strategy_makes_it_the_placement_default(
    home, announced, merchandising_announced, django_capture_on_commit_callbacks
):
    experiment = make_experiment(
        home, [CONTROL, VariantSpec("personal", "personal", 50), VariantSpec("ease", "ease", 10)]
    )
    start_experiment(experiment)
    winner = experiment.variants.get(name="personal")
    with django_capture_on_commit_callbacks(execute=True):
        result = promote_winner(experiment, winner)
    assert result == PromotionResult(
        experiment_id=experiment.pk, winner="personal", winner_strategy="personal",
        placement_key="home", previous_strategy="auto", default_strategy="personal", note="",
    )  # fmt: skip
    assert result.placement_changed
    stored = Experiment.objects.get(pk=experiment.pk)
    assert (stored.status, stored.winner) == (Experiment.Status.STOPPED, winner)
    assert stored.stopped_at is not None
    assert Placement.objects.get(pk=home.pk).default_strategy == "personal"
    assert merchandising_announced == [Placement]
    assert experiment.pk in announced
    assert experiments_config() == []


def test_promoting_a_learner_sets_the_placement_to_auto_and_says_why(home):
    home.default_strategy = "popular"
    save_placement(home)
    experiment = running(home)
    result = promote_winner(experiment, experiment.variants.get(name="challenger"))
    assert (result.previous_strategy, result.default_strategy) == ("popular", "auto")
    assert result.note.startswith(
        "'ease' is a learner, not a placement strategy, so the Home page placement now uses"
    )
    assert Placement.objects.get(pk=home.pk).default_strategy == "auto"


def test_promoting_a_learner_key_that_is_also_a_strategy_uses_that_strategy(home):
    experiment = running(home, variants=[CONTROL, VariantSpec("t", "trending", 5)])
    result = promote_winner(experiment, experiment.variants.get(name="t"))
    assert (result.default_strategy, result.note) == ("trending", "")


def test_promote_refuses_a_draft_a_foreign_variant_and_a_second_promotion(home):
    draft = make_experiment(home)
    assert refusal(promote_winner, draft, draft.variants.first()) == [
        "A draft has no results yet; start it before promoting a winner."
    ]
    experiment = running(PlacementFactory(key="cart"))
    assert refusal(promote_winner, experiment, draft.variants.first()) == [
        "Variant 'control' is not part of this experiment."
    ]
    promote_winner(experiment, experiment.variants.get(name="control"))
    assert refusal(promote_winner, experiment, experiment.variants.first()) == [
        "This experiment already promoted 'control'."
    ]


def test_a_killed_experiment_can_promote_its_winner_later_and_keeps_its_stop_time(home):
    experiment = running(home)
    kill_experiment(experiment)
    stopped_at = Experiment.objects.get(pk=experiment.pk).stopped_at
    promote_winner(experiment, experiment.variants.get(name="control"))
    stored = Experiment.objects.get(pk=experiment.pk)
    assert stored.stopped_at == stopped_at and stored.winner.name == "control"


# Editing set-up


def test_placement_and_salt_are_fixed_once_started_but_name_and_schedule_are_not(home):
    experiment = running(home)
    experiment.name, experiment.ends_at = "Renamed", timezone.now() + timedelta(days=7)
    save_experiment(experiment)
    assert Experiment.objects.get(pk=experiment.pk).name == "Renamed"
    experiment.salt = "0" * 16
    assert refusal(save_experiment, experiment) == [
        "The placement and salt are fixed once an experiment has started: changing them would "
        "move shoppers between variants."
    ]
    draft = make_experiment(home)
    draft.salt, draft.placement = "abc123", PlacementFactory(key="cart")
    save_experiment(draft)
    assert Experiment.objects.get(pk=draft.pk).salt == "abc123"


def test_status_changes_only_through_the_transitions(home):
    experiment = make_experiment(home)
    experiment.status = Experiment.Status.RUNNING
    assert refusal(save_experiment, experiment) == [
        "Change an experiment's status through start, pause, kill or promote."
    ]
    assert refusal(save_experiment, Experiment(name="x", placement=home, status="running"))


def test_variants_are_edited_only_while_draft_and_checked_as_a_set(home, announced):
    experiment = make_experiment(home)
    challenger = experiment.variants.get(name="challenger")
    challenger.traffic_percent = Decimal(30)
    extra = ExperimentVariant(name="knn", strategy="item_knn", traffic_percent=Decimal(80))
    assert "take 110 %" in refusal(save_variants, experiment, [challenger, extra])[0]
    extra.traffic_percent = Decimal(70)
    saved = save_variants(experiment, [challenger, extra])
    assert [v.name for v in saved] == ["control", "challenger", "knn"]
    save_variants(experiment, [], deleted=[extra])
    assert traffic(experiment) == {"control": 0, "challenger": 30}
    start_experiment(experiment)
    assert refusal(save_variants, experiment, [challenger])[0].startswith(
        "Variants can be edited only while the experiment is a draft; this one is running."
    )


def test_only_a_draft_can_be_deleted(home):
    draft, started = make_experiment(home), running(home)
    delete_experiment(draft)
    assert not Experiment.objects.filter(pk=draft.pk).exists()
    assert "Only a draft can be deleted" in refusal(delete_experiment, started)[0]


# Signals


def test_every_experiment_service_announces_only_after_commit(
    home, announced, django_capture_on_commit_callbacks
):
    steps = [
        lambda: make_experiment(home),
        lambda: ramp_experiment(experiment, 5),
        lambda: start_experiment(experiment),
        lambda: pause_experiment(experiment),
        lambda: start_experiment(experiment),
        lambda: kill_experiment(experiment),
    ]
    experiment = None
    for step in steps:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            result = step()
        experiment = experiment or result
        assert announced == []
        for callback in callbacks:
            callback()
        assert announced == [experiment.pk]
        announced.clear()


def test_refused_transitions_and_no_op_ramps_announce_nothing(
    home, announced, django_capture_on_commit_callbacks
):
    experiment = make_experiment(home)
    with django_capture_on_commit_callbacks(execute=True):
        ramp_experiment(experiment, 2)  # already 2 %
        with pytest.raises(ValidationError):
            pause_experiment(experiment)
    assert announced == []


@pytest.mark.django_db(transaction=True)
def test_rolled_back_experiment_changes_are_never_announced(announced, merchandising_announced):
    placement = PlacementFactory(key="home")
    experiment = make_experiment(placement)
    announced.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        start_experiment(experiment)
        ramp_experiment(experiment, 50)
        promote_winner(experiment, experiment.variants.get(name="challenger"))
        raise RuntimeError("the admin request failed half way")
    assert announced == [] and merchandising_announced == []
    stored = Experiment.objects.get(pk=experiment.pk)
    assert (stored.status, stored.winner_id) == (Experiment.Status.DRAFT, None)
    assert traffic(stored)["challenger"] == 2


@pytest.mark.django_db(transaction=True)
def test_committed_start_is_announced_once(announced):
    experiment = make_experiment(PlacementFactory(key="home"))
    start_experiment(experiment)
    assert announced == [experiment.pk, experiment.pk]  # create, then start


# Selectors


def test_experiments_config_is_plain_data_with_epoch_times_in_three_queries(
    home, django_assert_num_queries
):
    starts_at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    live = running(
        home,
        name="Home EASE",
        variants=[CONTROL, CHALLENGER, VariantSpec("knn", "item_knn", 0, is_shadow=True)],
        starts_at=starts_at,
    )
    paused = running(PlacementFactory(key="cart"), name="Cart BT", variants=[CONTROL])
    pause_experiment(paused)
    make_experiment(PlacementFactory(key="category"))  # a draft: not served
    kill_experiment(running(PlacementFactory(key="post_purchase")))

    with django_assert_num_queries(3):
        configs = experiments_config()

    assert configs == [
        ExperimentConfig(
            id=paused.pk, name="Cart BT", placement_key="cart", status="paused",
            salt=paused.salt, starts_at=None, ends_at=None,
            variants=(VariantConfig("control", "auto", 100.0, True, False),),
        ),
        ExperimentConfig(
            id=live.pk, name="Home EASE", placement_key="home", status="running", salt=live.salt,
            starts_at=starts_at.timestamp(), ends_at=None,
            variants=(
                VariantConfig("control", "auto", 98.0, is_control=True, is_shadow=False),
                VariantConfig("challenger", "ease", 2.0, is_control=False, is_shadow=False),
                VariantConfig("knn", "item_knn", 0.0, is_control=False, is_shadow=True),
            ),
        ),
    ]  # fmt: skip
    assert isinstance(configs[1].starts_at, float)
    assert isinstance(configs[1].variants[1].traffic_percent, float)
    with pytest.raises(AttributeError):
        configs[0].status = "running"  # frozen: a cached copy cannot be changed by a reader


def test_experiments_config_of_nothing_is_one_query(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert experiments_config() == []


def test_experiment_config_is_live_only_while_running_and_inside_its_schedule(home):
    now = timezone.now()
    experiment = running(home, starts_at=now, ends_at=now + timedelta(days=1))
    [config] = experiments_config()
    assert not config.is_live((now - timedelta(seconds=1)).timestamp())
    assert config.is_live(now.timestamp())
    assert not config.is_live((now + timedelta(days=1)).timestamp())  # the end is exclusive
    pause_experiment(experiment)
    [paused] = experiments_config()
    assert not paused.is_live(now.timestamp())
    unscheduled = ExperimentConfig(1, "x", "home", "running", "s", None, None, ())
    assert unscheduled.is_live(0.0) and unscheduled.is_live(now.timestamp())


def test_experiment_summaries_list_every_experiment_and_by_id_finds_one(
    home, django_assert_num_queries
):
    draft = make_experiment(home, name="Draft")
    stopped = kill_experiment(make_experiment(home, name="Stopped"))
    with django_assert_num_queries(3):
        summaries = experiment_summaries()
    assert [(s.name, s.status) for s in summaries] == [("Stopped", "stopped"), ("Draft", "draft")]
    with django_assert_num_queries(3):
        found = experiment_by_id(draft.pk)
    assert found == summaries[1] and found.variants[0].name == "control"
    assert experiment_by_id(stopped.pk + 1000) is None


# Admin


def experiment_form(placement: Placement, variants: list[dict], **values) -> dict[str, str]:
    """What the add form posts: the experiment's fields, then the variants and guardrails inline
    formsets."""
    data = {
        "name": "EASE on home", "placement": str(placement.pk), "hypothesis": "",
        "starts_at_0": "", "starts_at_1": "", "ends_at_0": "", "ends_at_1": "",
        "salt": "00112233445566aa", "variants-TOTAL_FORMS": str(len(variants)),
        "variants-INITIAL_FORMS": "0", "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000", "planned_shoppers_per_arm": "10000",
        "guardrails-TOTAL_FORMS": "0", "guardrails-INITIAL_FORMS": "0",
        "guardrails-MIN_NUM_FORMS": "0", "guardrails-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    data.update({name: str(value) for name, value in values.items()})
    for index, variant in enumerate(variants):
        for name, value in variant.items():
            if value is True:
                data[f"variants-{index}-{name}"] = "on"
            elif value is not False:
                data[f"variants-{index}-{name}"] = str(value)
    return data


CONTROL_ROW = {"name": "control", "strategy": "auto", "traffic_percent": "0", "is_control": True}
CHALLENGER_ROW = {"name": "challenger", "strategy": "ease", "traffic_percent": "2"}


def page_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.mark.parametrize("suffix", ["", "add/", "{pk}/change/", "{pk}/ramp/", "{pk}/promote/"])
def test_non_staff_users_are_sent_to_the_login_page(client, django_user_model, home, suffix):
    experiment = make_experiment(home)
    client.force_login(django_user_model.objects.create_user("shopper", password="pw-123456"))
    response = client.get(EXPERIMENTS_URL + suffix.format(pk=experiment.pk))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_experiment_list_shows_the_traffic_split_and_filters_by_status(admin_client, home):
    live = running(home, name="Home EASE")
    ramp_experiment(live, "2.5")
    draft = make_experiment(PlacementFactory(key="cart"), name="Cart draft")
    response = admin_client.get(EXPERIMENTS_URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "control 97.5 % · challenger 2.5 %" in body and "Home EASE" in body
    assert [e.pk for e in response.context["cl"].result_list] == [draft.pk, live.pk]
    actions = dict(response.context["action_form"].fields["action"].choices)
    assert {"start", "pause", "kill"} <= actions.keys() and "delete_selected" not in actions
    filtered = admin_client.get(EXPERIMENTS_URL, {"status__exact": "running"})
    assert [e.pk for e in filtered.context["cl"].result_list] == [live.pk]


def test_experiment_list_does_not_query_per_row(admin_client, django_assert_max_num_queries):
    for _ in range(20):
        make_experiment(PlacementFactory())
    with django_assert_max_num_queries(12):
        assert admin_client.get(EXPERIMENTS_URL).status_code == 200


def test_staff_can_add_an_experiment_with_its_variants_and_it_is_announced(
    admin_client, announced, django_capture_on_commit_callbacks, home
):
    response = admin_client.get(f"{EXPERIMENTS_URL}add/")
    assert response.status_code == 200
    assert 'optgroup label="Learners"' in response.content.decode()
    data = experiment_form(home, [CONTROL_ROW, CHALLENGER_ROW], hypothesis="EASE lifts CTR")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"{EXPERIMENTS_URL}add/", data)
    assert response.status_code == 302, response.context["inline_admin_formsets"][0].formset.errors
    experiment = Experiment.objects.get()
    assert (experiment.name, experiment.placement, experiment.status, experiment.salt) == (
        "EASE on home", home, "draft", "00112233445566aa",
    )  # fmt: skip
    assert traffic(experiment) == {"control": 0, "challenger": 2}
    assert set(announced) == {experiment.pk}


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            [CONTROL_ROW, {**CHALLENGER_ROW, "traffic_percent": "0", "is_control": True}],
            "An experiment needs exactly one control variant; this one has 2.",
        ),
        (
            [CONTROL_ROW, {**CHALLENGER_ROW, "traffic_percent": "101"}],
            "Ensure this value is less than or equal to 100.",
        ),
        (
            [CONTROL_ROW, {**CHALLENGER_ROW, "traffic_percent": "60"},
             {"name": "knn", "strategy": "item_knn", "traffic_percent": "50"}],
            "The variants other than the control take 110 % of traffic",
        ),
        (
            [CONTROL_ROW, {"name": "s", "strategy": "ease", "traffic_percent": "5",
                           "is_shadow": True}],
            "A shadow variant is never shown; leave its traffic at 0.",
        ),
    ],
)  # fmt: skip
def test_invalid_variants_in_the_add_form_show_the_error_and_save_nothing(
    admin_client, announced, home, rows, message
):
    response = admin_client.post(f"{EXPERIMENTS_URL}add/", experiment_form(home, rows))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Experiment.objects.exists() and announced == []


def test_draft_change_page_edits_variants_and_links_to_the_dashboard(admin_client, home):
    experiment = make_experiment(home)
    url = f"{EXPERIMENTS_URL}{experiment.pk}/change/"
    response = admin_client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'href="/admin/recs/experiments/{experiment.pk}/"' in body
    assert f"{EXPERIMENTS_URL}{experiment.pk}/ramp/" in body
    assert f"{EXPERIMENTS_URL}{experiment.pk}/promote/" not in body  # a draft has no winner yet
    assert {"placement", "salt"} <= response.context["adminform"].form.fields.keys()
    control, challenger = experiment.variants.all()
    data = experiment_form(
        home,
        [
            {**CONTROL_ROW, "id": control.pk, "experiment": experiment.pk},
            {**CHALLENGER_ROW, "id": challenger.pk, "experiment": experiment.pk,
             "traffic_percent": "20", "strategy": "hybrid"},
        ],
        salt=experiment.salt, **{"variants-INITIAL_FORMS": "2"},
    )  # fmt: skip
    response = admin_client.post(url, data)
    assert response.status_code == 302
    assert list(experiment.variants.values_list("strategy", "traffic_percent")) == [
        ("auto", 0), ("hybrid", 20),
    ]  # fmt: skip


def test_started_experiment_change_page_is_read_only_but_for_name_and_schedule(admin_client, home):
    experiment = running(home)
    url = f"{EXPERIMENTS_URL}{experiment.pk}/change/"
    response = admin_client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert f"{EXPERIMENTS_URL}{experiment.pk}/promote/" in body
    assert "Ramp to N %" in body and "/admin/recs/experiments/" in body
    fields = response.context["adminform"].form.fields
    assert "placement" not in fields and "salt" not in fields and "status" not in fields
    formset = response.context["inline_admin_formsets"][0]
    assert not formset.has_change_permission and not formset.has_add_permission
    data = {
        "name": "Renamed", "hypothesis": "", "starts_at_0": "", "starts_at_1": "",
        "ends_at_0": "", "ends_at_1": "", "variants-TOTAL_FORMS": "2",
        "variants-INITIAL_FORMS": "2", "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000", "planned_shoppers_per_arm": "10000",
        "guardrails-TOTAL_FORMS": "0", "guardrails-INITIAL_FORMS": "0",
        "guardrails-MIN_NUM_FORMS": "0", "guardrails-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    for index, variant in enumerate(experiment.variants.all()):
        data |= {f"variants-{index}-id": variant.pk, f"variants-{index}-experiment": experiment.pk}
    response = admin_client.post(url, data)
    assert response.status_code == 302
    stored = Experiment.objects.get(pk=experiment.pk)
    assert (stored.name, stored.status, stored.placement) == ("Renamed", "running", home)
    assert (
        admin_client.post(f"{EXPERIMENTS_URL}{experiment.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )


def test_a_draft_can_be_deleted_from_its_page(
    admin_client, announced, django_capture_on_commit_callbacks, home
):
    experiment = make_experiment(home)
    announced.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"{EXPERIMENTS_URL}{experiment.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Experiment.objects.exists()
    assert announced == [experiment.pk]


def test_start_pause_and_kill_actions_go_through_the_services(
    admin_client, announced, django_capture_on_commit_callbacks, home
):
    experiment = make_experiment(home, name="Home EASE")
    rival = make_experiment(home, name="Rival")

    def act(action, *experiments):
        ids = [e.pk for e in experiments]
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(
                EXPERIMENTS_URL, {"action": action, "_selected_action": ids}, follow=True
            )
        assert response.status_code == 200
        return page_messages(response)

    assert act("start", experiment) == ["Started 1 experiment(s)."]
    assert Experiment.objects.get(pk=experiment.pk).status == "running"
    assert act("start", rival) == [
        "Rival: 'Home EASE' is already running on the Home page placement; kill it or promote its "
        "winner before starting this one."
    ]
    assert act("pause", experiment) == ["Paused 1 experiment(s)."]
    assert Experiment.objects.get(pk=experiment.pk).status == "paused"
    assert act("kill", experiment, rival) == ["Killed 2 experiment(s)."]
    assert set(Experiment.objects.values_list("status", flat=True)) == {"stopped"}
    assert act("pause", experiment) == [
        "Home EASE: Only a running experiment can be paused; this one is stopped."
    ]
    assert experiment.pk in announced


def test_ramp_form_renders_applies_and_shows_refusals_as_errors(
    admin_client, announced, django_capture_on_commit_callbacks, home
):
    experiment = running(
        home, variants=[CONTROL, VariantSpec("ease", "ease", 5), VariantSpec("knn", "item_knn", 5)]
    )
    url = f"{EXPERIMENTS_URL}{experiment.pk}/ramp/"
    response = admin_client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert "csrfmiddlewaretoken" in body and "control 90 % · ease 5 % · knn 5 %" in body

    response = admin_client.post(url, {"percent": "20", "variant": ""})
    assert response.status_code == 200
    assert page_messages(response) == [
        "This experiment has several variants that take traffic (ease, knn); say which one to ramp."
    ]
    response = admin_client.post(url, {"percent": "96", "variant": "knn"})
    assert response.status_code == 200 and "at most 100 %" in page_messages(response)[0]
    response = admin_client.post(url, {"percent": "abc", "variant": "knn"})
    assert response.status_code == 200 and response.context["form"].errors["percent"]
    assert traffic(experiment) == {"control": 0, "ease": 5, "knn": 5}

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"percent": "20", "variant": "knn"})
    assert response.status_code == 302
    assert response["Location"] == f"{EXPERIMENTS_URL}{experiment.pk}/change/"
    assert traffic(experiment) == {"control": 0, "ease": 5, "knn": 20}
    assert announced == [experiment.pk]
    followed = admin_client.get(response["Location"])
    assert "'knn' now takes 20 % of traffic: control 75 % · ease 5 % · knn 20 %." in page_messages(
        followed
    )


def test_ramp_form_needs_csrf(home, django_user_model):
    experiment = running(home)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(django_user_model.objects.create_superuser("boss", password="pw-1"))
    response = csrf_client.post(f"{EXPERIMENTS_URL}{experiment.pk}/ramp/", {"percent": "50"})
    assert response.status_code == 403
    assert traffic(experiment)["challenger"] == 2


def test_promote_form_renders_applies_and_shows_refusals_as_errors(
    admin_client, merchandising_announced, django_capture_on_commit_callbacks, home
):
    draft = make_experiment(home)
    response = admin_client.post(
        f"{EXPERIMENTS_URL}{draft.pk}/promote/", {"variant": draft.variants.first().pk}
    )
    assert response.status_code == 200
    assert page_messages(response) == [
        "A draft has no results yet; start it before promoting a winner."
    ]
    delete_experiment(draft)

    experiment = running(home, variants=[CONTROL, VariantSpec("popular", "popular", 50)])
    url = f"{EXPERIMENTS_URL}{experiment.pk}/promote/"
    response = admin_client.get(url)
    assert response.status_code == 200
    assert "popular: popular" in response.content.decode()
    response = admin_client.post(url, {"variant": "999999"})
    assert response.status_code == 200 and response.context["form"].errors["variant"]

    winner = experiment.variants.get(name="popular")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"variant": winner.pk}, follow=True)
    assert response.status_code == 200
    assert page_messages(response) == [
        "Promoted 'popular' and stopped the experiment. The home placement now uses popular "
        "(was auto)."
    ]
    assert Placement.objects.get(pk=home.pk).default_strategy == "popular"
    assert Experiment.objects.get(pk=experiment.pk).winner == winner
    assert merchandising_announced == [Placement]


def test_promoting_a_learner_in_the_admin_warns_that_the_placement_went_to_auto(admin_client, home):
    experiment = running(home)
    winner = experiment.variants.get(name="challenger")
    response = admin_client.post(
        f"{EXPERIMENTS_URL}{experiment.pk}/promote/", {"variant": winner.pk}, follow=True
    )
    messages = page_messages(response)
    assert len(messages) == 2 and "is a learner, not a placement strategy" in messages[1]


@pytest.mark.parametrize("page", ["ramp", "promote"])
def test_ramp_and_promote_of_an_unknown_experiment_redirect_to_the_admin(admin_client, page):
    response = admin_client.get(f"{EXPERIMENTS_URL}999999/{page}/", follow=True)
    assert response.status_code == 200
    assert "999999" in page_messages(response)[0]
