"""Writes to experiments: set up a draft and its variants, then start, pause, kill, ramp, promote;
guardrails, and the workers' verdicts (a paused challenger, a sample ratio mismatch).

Each write announces itself on commit with experiments_changed; a refused one raises
ValidationError with a message for the merchandiser.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from merch.models import (
    Experiment,
    ExperimentGuardrail,
    ExperimentVariant,
    Placement,
    remaining_traffic,
)
from merch.services._shared import differs_from_stored
from merch.services.merchandising import save_placement
from merch.signals import experiments_changed

_STATE_PHRASES = {
    Experiment.Status.DRAFT: "still a draft",
    Experiment.Status.RUNNING: "running",
    Experiment.Status.PAUSED: "paused",
    Experiment.Status.STOPPED: "stopped",
}


def _state(status: str) -> str:
    return _STATE_PHRASES.get(status, status)


def _format_percent(value: Decimal) -> str:
    """98.00 -> "98", 2.50 -> "2.5": how a merchandiser writes a share."""
    return f"{value.normalize():f}"


def _announce_experiment_change(experiment_id: int) -> None:
    transaction.on_commit(
        lambda: experiments_changed.send(sender=Experiment, experiment_id=experiment_id)
    )


@dataclass(frozen=True)
class VariantSpec:
    """One variant as create_experiment takes it; the control's traffic is ignored (keep it 0)."""

    name: str
    strategy: str
    traffic_percent: Decimal | float | int
    is_control: bool = False
    is_shadow: bool = False


def _percent(value: Decimal | float | int | str) -> Decimal:
    """A traffic share as the database stores it; what it cannot store exactly is refused."""
    try:
        percent = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationError(f"Traffic must be a percentage, not {value!r}.") from None
    if (
        not percent.is_finite()
        or not Decimal(0) <= percent <= Decimal(100)
        or percent != percent.quantize(Decimal("0.01"))
    ):
        raise ValidationError("Traffic is a percentage from 0 to 100, with at most two decimals.")
    return percent


def _clean_variant(variant: ExperimentVariant) -> None:
    """full_clean, with each message saying which variant and field it is about."""
    try:
        variant.full_clean(exclude=["experiment"])
    except ValidationError as error:
        messages = []
        for field, field_messages in error.message_dict.items():
            label = (
                ""
                if field == "__all__"
                else f"{ExperimentVariant._meta.get_field(field).verbose_name}: "
            )
            messages += [
                f"Variant '{variant.name}', {label}{message}" for message in field_messages
            ]
        raise ValidationError(messages) from None


def validate_variants(
    experiment: Experiment, variants: Iterable[ExperimentVariant] | None = None
) -> None:
    """Check an experiment's variants as a set; each variant's own fields are its clean()'s job.

    Pass `variants` to check a set before it is saved (create_experiment, the admin's inline);
    without it the saved variants are read. The control takes whatever the others do not, so only
    the shown, non-control variants' traffic counts towards the 100 %.
    """
    variants = list(experiment.variants.all() if variants is None else variants)
    errors: list[str] = []
    controls = [variant for variant in variants if variant.is_control]
    if len(controls) != 1:
        errors.append(
            f"An experiment needs exactly one control variant; this one has {len(controls)}."
        )
    if any(variant.is_shadow for variant in controls):
        errors.append("The control is what shoppers see; it cannot be a shadow.")
    shadows_with_traffic = [v.name for v in variants if v.is_shadow and v.traffic_percent]
    if shadows_with_traffic:
        errors.append(
            "A shadow variant is never shown, so it takes no traffic; set the traffic of "
            f"{', '.join(shadows_with_traffic)} to 0."
        )
    taken = Decimal(100) - remaining_traffic(variants)
    if taken > 100:
        errors.append(
            f"The variants other than the control take {_format_percent(taken)} % of traffic; "
            "together they can take at most 100 % (the control takes whatever they do not)."
        )
    repeated = sorted(
        name for name, count in Counter(v.name for v in variants).items() if count > 1
    )
    if repeated:
        errors.append(f"Variant names must be unique in an experiment: {', '.join(repeated)}.")
    if errors:
        raise ValidationError(errors)


def _locked(experiment: Experiment) -> Experiment:
    """The stored row, locked: transitions decide from what is committed, not from a stale copy."""
    return Experiment.objects.select_for_update().select_related("placement").get(pk=experiment.pk)


def _transition(experiment: Experiment, locked: Experiment, **changes: Any) -> Experiment:
    """Write `changes` to the locked row, mirror them on the caller's copy, announce on commit."""
    for field, value in changes.items():
        setattr(locked, field, value)
        setattr(experiment, field, value)
    locked.save(update_fields=[*changes, "updated_at"])
    experiment.updated_at = locked.updated_at
    _announce_experiment_change(locked.pk)
    return experiment


@transaction.atomic
def create_experiment(
    name: str,
    placement: Placement,
    variants: Sequence[VariantSpec],
    *,
    hypothesis: str = "",
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    planned_shoppers_per_arm: int = 10_000,
    guardrails: Sequence[tuple[str, Decimal | float | int]] = (),
) -> Experiment:
    """Create a draft experiment, its variants and guardrails ((metric, max drop %) pairs);
    nothing is saved unless all of it is valid."""
    experiment = Experiment(
        name=name,
        placement=placement,
        hypothesis=hypothesis,
        starts_at=starts_at,
        ends_at=ends_at,
        planned_shoppers_per_arm=planned_shoppers_per_arm,
    )
    experiment.full_clean()
    built = [
        ExperimentVariant(
            experiment=experiment,
            name=spec.name,
            strategy=spec.strategy,
            traffic_percent=_percent(spec.traffic_percent),
            is_control=spec.is_control,
            is_shadow=spec.is_shadow,
        )
        for spec in variants
    ]
    for variant in built:
        _clean_variant(variant)
    validate_variants(experiment, built)
    experiment.save()
    ExperimentVariant.objects.bulk_create(built)
    if guardrails:
        save_guardrails(
            experiment,
            [
                ExperimentGuardrail(metric=metric, max_drop_percent=_percent(max_drop))
                for metric, max_drop in guardrails
            ],
        )
    _announce_experiment_change(experiment.pk)
    return experiment


@transaction.atomic
def save_experiment(experiment: Experiment) -> Experiment:
    """Validate and save an experiment's own fields; readers hear about it on commit if changed.

    Name, hypothesis and schedule can change at any time. Placement, salt and the planned
    shoppers per arm are fixed once it has started (a new salt would move shoppers between
    variants mid-test), and status, winner and start/stop times change only through the
    transitions below.
    """
    experiment.full_clean()
    stored = (
        Experiment.objects.select_for_update().filter(pk=experiment.pk).first()
        if experiment.pk
        else None
    )
    lifecycle = ("status", "winner_id", "started_at", "stopped_at")
    if stored is None:
        if experiment.status != Experiment.Status.DRAFT or experiment.winner_id:
            raise ValidationError("A new experiment is a draft; start it once it is saved.")
    else:
        if any(getattr(stored, f) != getattr(experiment, f) for f in lifecycle):
            raise ValidationError(
                "Change an experiment's status through start, pause, kill or promote."
            )
        if stored.status != Experiment.Status.DRAFT and (
            (stored.placement_id, stored.salt) != (experiment.placement_id, experiment.salt)
        ):
            raise ValidationError(
                "The placement and salt are fixed once an experiment has started: changing them "
                "would move shoppers between variants."
            )
        if (
            stored.status != Experiment.Status.DRAFT
            and stored.planned_shoppers_per_arm != experiment.planned_shoppers_per_arm
        ):
            raise ValidationError(
                "The planned shoppers per arm are fixed once an experiment has started: the "
                "always-valid test was tuned to them, and retuning it to data already seen would "
                "overstate the evidence."
            )
    if differs_from_stored(experiment):
        experiment.save()
        _announce_experiment_change(experiment.pk)
    return experiment


@transaction.atomic
def save_variants(
    experiment: Experiment,
    variants: Sequence[ExperimentVariant],
    *,
    deleted: Sequence[ExperimentVariant] = (),
) -> list[ExperimentVariant]:
    """Add or change (`variants`) and delete (`deleted`) a draft's variants; returns them all.

    The resulting set is checked as a whole before anything is written. Once an experiment has
    started only ramp_experiment changes it: an arm edited mid-test would mix two treatments in
    one result.
    """
    locked = _locked(experiment)
    if locked.status != Experiment.Status.DRAFT:
        raise ValidationError(
            "Variants can be edited only while the experiment is a draft; this one is "
            f"{_state(locked.status)}. Use Ramp to change traffic."
        )
    for variant in [*variants, *deleted]:
        if variant.experiment_id not in (None, locked.pk):
            raise ValidationError(f"Variant '{variant.name}' belongs to another experiment.")
        variant.experiment = locked
    touched = {variant.pk for variant in [*variants, *deleted] if variant.pk}
    kept = [variant for variant in locked.variants.all() if variant.pk not in touched]
    for variant in variants:
        _clean_variant(variant)
    validate_variants(locked, [*kept, *variants])
    deleted_ids = [variant.pk for variant in deleted if variant.pk]
    ExperimentVariant.objects.filter(experiment=locked, pk__in=deleted_ids).delete()
    for variant in variants:
        variant.save()
    if variants or deleted_ids:
        _announce_experiment_change(locked.pk)
    return list(locked.variants.all())


@transaction.atomic
def delete_experiment(experiment: Experiment) -> None:
    """Delete a draft; a started experiment keeps its record, since its results refer to it."""
    locked = _locked(experiment)
    if locked.status != Experiment.Status.DRAFT:
        raise ValidationError(
            f"Only a draft can be deleted; this one is {_state(locked.status)}, and its results "
            "refer to it."
        )
    experiment_id = locked.pk
    locked.delete()
    _announce_experiment_change(experiment_id)


@transaction.atomic
def start_experiment(experiment: Experiment) -> Experiment:
    """Draft or paused -> running. started_at keeps the first start, so a resume does not reset it.

    At most one experiment per placement runs or pauses at a time: two would compete for the same
    shoppers and neither result would mean anything.
    """
    locked = _locked(experiment)
    if locked.status not in (Experiment.Status.DRAFT, Experiment.Status.PAUSED):
        raise ValidationError(
            f"Only a draft or paused experiment can start; this one is {_state(locked.status)}."
        )
    validate_variants(locked)
    # Lock the placement so that two experiments starting at once on it cannot both see it free.
    placement = Placement.objects.select_for_update().get(pk=locked.placement_id)
    other = (
        Experiment.objects.filter(placement_id=locked.placement_id, status__in=locked.LIVE_STATUSES)
        .exclude(pk=locked.pk)
        .first()
    )
    if other is not None:
        raise ValidationError(
            f"'{other.name}' is already {_state(other.status)} on the {placement} "
            "placement; kill it or promote its winner before starting this one."
        )
    now = timezone.now()
    if locked.ends_at is not None and locked.ends_at <= now:
        raise ValidationError(
            f"Its schedule ended at {timezone.localtime(locked.ends_at):%Y-%m-%d %H:%M}; move the "
            "end later (or clear it) before starting it."
        )
    return _transition(
        experiment,
        locked,
        status=Experiment.Status.RUNNING,
        started_at=locked.started_at or now,
    )


@transaction.atomic
def pause_experiment(experiment: Experiment) -> Experiment:
    """Running -> paused: everyone sees the control until it starts again; assignments are kept."""
    locked = _locked(experiment)
    if locked.status != Experiment.Status.RUNNING:
        raise ValidationError(
            f"Only a running experiment can be paused; this one is {_state(locked.status)}."
        )
    return _transition(experiment, locked, status=Experiment.Status.PAUSED)


@transaction.atomic
def kill_experiment(experiment: Experiment) -> Experiment:
    """Stop at once: it leaves the render path's config, so all traffic goes back to the control.

    The variants' traffic is left as it was, as a record of the split the results came from.
    """
    locked = _locked(experiment)
    if locked.status == Experiment.Status.STOPPED:
        raise ValidationError("This experiment is already stopped.")
    return _transition(
        experiment, locked, status=Experiment.Status.STOPPED, stopped_at=timezone.now()
    )


@transaction.atomic
def ramp_experiment(
    experiment: Experiment, percent: Decimal | float, variant_name: str | None = None
) -> ExperimentVariant:
    """Set the traffic of one shown, non-control variant; the control takes what is left.

    Without `variant_name` the experiment must have exactly one such variant, so that a ramp never
    lands on an arm the merchandiser did not mean. Ramping a challenger a guardrail paused serves
    it again: the merchandiser has seen why and decided. A new split restarts the sample ratio
    check, since shoppers before and after came under different splits.
    """
    locked = _locked(experiment)
    if locked.status == Experiment.Status.STOPPED:
        raise ValidationError("A stopped experiment cannot be ramped; create a new one instead.")
    share = _percent(percent)
    variants = list(locked.variants.all())
    challengers = [v for v in variants if not v.is_control and not v.is_shadow]
    if variant_name is None:
        if not challengers:
            raise ValidationError(
                "This experiment has no variant to ramp: the control takes whatever the others do "
                "not, and shadow variants take no traffic."
            )
        if len(challengers) > 1:
            names = ", ".join(v.name for v in challengers)
            raise ValidationError(
                f"This experiment has several variants that take traffic ({names}); say which "
                "one to ramp."
            )
        target = challengers[0]
    else:
        target = next((v for v in variants if v.name == variant_name), None)
        if target is None:
            raise ValidationError(f"This experiment has no variant named '{variant_name}'.")
        if target.is_control:
            raise ValidationError(
                "The control takes whatever the others do not; ramp another variant instead."
            )
        if target.is_shadow:
            raise ValidationError("A shadow variant is never shown, so it takes no traffic.")
    others = sum((v.traffic_percent for v in challengers if v.pk != target.pk), Decimal(0))
    if others + share > 100:
        total, left = _format_percent(others + share), _format_percent(100 - others)
        raise ValidationError(
            f"That would give the variants other than the control {total} % of traffic; together "
            f"they can take at most 100 % ({left} % is left for '{target.name}')."
        )
    if target.traffic_percent != share or target.paused_at is not None:
        target.traffic_percent = share
        target.paused_at, target.paused_reason = None, ""
        target.save(update_fields=["traffic_percent", "paused_at", "paused_reason"])
        locked.split_changed_at = timezone.now()
        locked.save(update_fields=["split_changed_at", "updated_at"])
        _announce_experiment_change(locked.pk)
    return target


@transaction.atomic
def pause_challenger(experiment_id: int, variant_name: str, reason: str) -> bool:
    """Stop showing one challenger (its shoppers see the control, unlogged) while the rest of
    the experiment runs; the workers call this when a guardrail trips. Returns False when there
    was nothing to pause (not running any more, already paused, not a shown challenger)."""
    locked = Experiment.objects.select_for_update().filter(pk=experiment_id).first()
    if locked is None or locked.status != Experiment.Status.RUNNING:
        return False
    variant = locked.variants.filter(
        name=variant_name, is_control=False, is_shadow=False, paused_at__isnull=True
    ).first()
    if variant is None:
        return False
    now = timezone.now()
    variant.paused_at, variant.paused_reason = now, reason
    variant.save(update_fields=["paused_at", "paused_reason"])
    locked.split_changed_at = now
    locked.save(update_fields=["split_changed_at", "updated_at"])
    _announce_experiment_change(locked.pk)
    return True


def record_sample_ratio_check(experiment_id: int, p_value: float | None, flagged: bool) -> None:
    """Keep the workers' latest sample ratio check on the experiment: a flag set when it first
    fails (so an acknowledgement before it does not count) and cleared once a test passes
    again. A check without a verdict (too few shoppers since the split changed) changes
    nothing: a mismatch stays flagged until data says otherwise."""
    if p_value is None:
        return
    experiments = Experiment.objects.filter(pk=experiment_id)
    experiments.update(srm_p_value=p_value)
    if flagged:
        experiments.filter(srm_flagged_at__isnull=True).update(srm_flagged_at=timezone.now())
    else:
        experiments.update(srm_flagged_at=None)


@transaction.atomic
def acknowledge_sample_ratio_mismatch(experiment: Experiment, acknowledged_by: str) -> Experiment:
    """The merchandiser has seen the mismatch (and knows its cause): promotion is allowed again.
    A mismatch flagged after this needs acknowledging again."""
    locked = _locked(experiment)
    if locked.srm_flagged_at is None:
        raise ValidationError(
            "The traffic split matches its setting; there is nothing to acknowledge."
        )
    return _transition(
        experiment,
        locked,
        srm_acknowledged_at=timezone.now(),
        srm_acknowledged_by=acknowledged_by[:150],
    )


@transaction.atomic
def save_guardrails(
    experiment: Experiment,
    guardrails: Sequence[ExperimentGuardrail],
    *,
    deleted: Sequence[ExperimentGuardrail] = (),
) -> None:
    """Add, change or delete an experiment's guardrails; allowed at any time, since a guardrail
    changes no one's assignment, only when the workers pause a challenger."""
    locked = _locked(experiment)
    for guardrail in [*guardrails, *deleted]:
        if guardrail.experiment_id not in (None, locked.pk):
            raise ValidationError("That guardrail belongs to another experiment.")
        guardrail.experiment = locked
    for guardrail in guardrails:
        guardrail.full_clean(exclude=["experiment"], validate_unique=False)
    deleted_ids = [guardrail.pk for guardrail in deleted if guardrail.pk]
    kept = locked.guardrails.exclude(pk__in=[g.pk for g in [*guardrails, *deleted] if g.pk])
    metrics = Counter([*(g.metric for g in kept), *(g.metric for g in guardrails)])
    repeated = sorted(metric for metric, count in metrics.items() if count > 1)
    if repeated:
        raise ValidationError(
            f"One guardrail per metric: {', '.join(repeated)} is set more than once."
        )
    ExperimentGuardrail.objects.filter(experiment=locked, pk__in=deleted_ids).delete()
    for guardrail in guardrails:
        guardrail.save()
    if guardrails or deleted_ids:
        _announce_experiment_change(locked.pk)


@dataclass(frozen=True)
class PromotionResult:
    """What promoting a winner changed, for the merchandiser's message."""

    experiment_id: int
    winner: str
    winner_strategy: str
    placement_key: str
    previous_strategy: str
    default_strategy: str
    note: str = ""

    @property
    def placement_changed(self) -> bool:
        return self.previous_strategy != self.default_strategy


@transaction.atomic
def promote_winner(experiment: Experiment, variant: ExperimentVariant) -> PromotionResult:
    """Stop the experiment with `variant` as winner and make it the placement's default.

    A learner key is not a placement strategy, so a learner winner sets the placement to auto
    (the tier router) and the note says so: serving that learner is the router's decision.
    An experiment killed earlier can still have its winner promoted once the results are in.
    """
    locked = _locked(experiment)
    if locked.status == Experiment.Status.DRAFT:
        raise ValidationError("A draft has no results yet; start it before promoting a winner.")
    if locked.winner_id is not None:
        raise ValidationError(f"This experiment already promoted '{locked.winner}'.")
    if locked.srm_blocks_promotion:
        raise ValidationError(
            "The traffic split does not match its setting (sample ratio mismatch), so the "
            "results may be biased. Find the cause, then acknowledge the mismatch on the "
            "dashboard before promoting."
        )
    winner = locked.variants.filter(pk=variant.pk).first()
    if winner is None:
        raise ValidationError(f"Variant '{variant.name}' is not part of this experiment.")
    placement = Placement.objects.select_for_update().get(pk=locked.placement_id)
    previous_strategy = placement.default_strategy
    note = ""
    if winner.strategy in Placement.Strategy.values:
        placement.default_strategy = winner.strategy
    else:
        placement.default_strategy = Placement.Strategy.AUTO
        note = (
            f"'{winner.strategy}' is a learner, not a placement strategy, so the {placement} "
            "placement now uses auto (the tier router decides); to serve it there, make it the "
            "router's model."
        )
    save_placement(placement)
    _transition(
        experiment,
        locked,
        status=Experiment.Status.STOPPED,
        winner=winner,
        stopped_at=locked.stopped_at or timezone.now(),
    )
    return PromotionResult(
        experiment_id=locked.pk,
        winner=winner.name,
        winner_strategy=winner.strategy,
        placement_key=placement.key,
        previous_strategy=previous_strategy,
        default_strategy=placement.default_strategy,
        note=note,
    )
