"""Reads of experiments and their variants, as plain data the engine can cache."""

from dataclasses import dataclass

from django.db.models import QuerySet

from merch.models import (
    Experiment,
    ExperimentGuardrail,
    ExperimentVariant,
    remaining_traffic,
    srm_blocks_promotion,
)
from merch.selectors._shared import epoch


@dataclass(frozen=True)
class VariantConfig:
    """One experiment variant as plain data; the control's traffic is what the others leave."""

    name: str
    strategy: str
    traffic_percent: float
    is_control: bool
    is_shadow: bool
    paused_at: float | None = None  # a challenger a guardrail paused: its shoppers see control
    paused_reason: str = ""


@dataclass(frozen=True)
class GuardrailConfig:
    """A metric a challenger must not hurt by more than max_drop_percent of the control's."""

    metric: str
    max_drop_percent: float


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment as plain data the engine can cache; times are epoch seconds.

    Variants come control first, then in the order they were created.
    """

    id: int
    name: str
    placement_key: str
    status: str
    salt: str
    starts_at: float | None
    ends_at: float | None
    variants: tuple[VariantConfig, ...]
    guardrails: tuple[GuardrailConfig, ...] = ()
    planned_shoppers_per_arm: int = 10_000
    # Shoppers first exposed from here on came under the current split (None: the split has
    # not changed since the start); the sample ratio check counts only them.
    split_since: float | None = None
    srm_p_value: float | None = None
    srm_flagged_at: float | None = None
    srm_acknowledged_at: float | None = None
    srm_acknowledged_by: str = ""

    @property
    def srm_blocks_promotion(self) -> bool:
        return srm_blocks_promotion(self.srm_flagged_at, self.srm_acknowledged_at)

    def is_live(self, now: float) -> bool:
        """Running and within its schedule at `now` (start inclusive, end exclusive).

        When it is not live, every shopper gets the control.
        """
        return (
            self.status == Experiment.Status.RUNNING
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )


def _experiment_configs(experiments: QuerySet[Experiment]) -> list[ExperimentConfig]:
    """ExperimentConfigs for a queryset, in three queries (one when it is empty)."""
    fields = (
        "pk", "name", "placement__key", "status", "salt", "starts_at", "ends_at",
        "split_changed_at", "srm_p_value", "srm_flagged_at", "srm_acknowledged_at", "srm_acknowledged_by",
        "planned_shoppers_per_arm",
    )  # fmt: skip
    rows = [dict(zip(fields, values, strict=True)) for values in experiments.values_list(*fields)]
    if not rows:
        return []
    variants: dict[int, list[ExperimentVariant]] = {row["pk"]: [] for row in rows}
    for variant in ExperimentVariant.objects.filter(experiment_id__in=variants).order_by(
        "-is_control", "pk"
    ):
        variants[variant.experiment_id].append(variant)
    guardrails: dict[int, list[GuardrailConfig]] = {pk: [] for pk in variants}
    for guardrail in ExperimentGuardrail.objects.filter(experiment_id__in=variants).order_by("pk"):
        guardrails[guardrail.experiment_id].append(
            GuardrailConfig(guardrail.metric, float(guardrail.max_drop_percent))
        )
    return [
        ExperimentConfig(
            id=row["pk"],
            name=row["name"],
            placement_key=row["placement__key"],
            status=row["status"],
            salt=row["salt"],
            starts_at=epoch(row["starts_at"]),
            ends_at=epoch(row["ends_at"]),
            variants=tuple(
                VariantConfig(
                    name=variant.name,
                    strategy=variant.strategy,
                    traffic_percent=float(
                        remaining_traffic(variants[row["pk"]])
                        if variant.is_control
                        else variant.traffic_percent
                    ),
                    is_control=variant.is_control,
                    is_shadow=variant.is_shadow,
                    paused_at=epoch(variant.paused_at),
                    paused_reason=variant.paused_reason,
                )
                for variant in variants[row["pk"]]
            ),
            guardrails=tuple(guardrails[row["pk"]]),
            planned_shoppers_per_arm=row["planned_shoppers_per_arm"],
            split_since=epoch(row["split_changed_at"]),
            srm_p_value=row["srm_p_value"],
            srm_flagged_at=epoch(row["srm_flagged_at"]),
            srm_acknowledged_at=epoch(row["srm_acknowledged_at"]),
            srm_acknowledged_by=row["srm_acknowledged_by"],
        )
        for row in rows
    ]


def experiments_config() -> list[ExperimentConfig]:
    """The running and paused experiments (at most one per placement), in three queries.

    Like merchandising_config, the schedule is left to the reader (`ExperimentConfig.is_live`),
    so that a cached copy does not go stale when a start or end passes. A paused experiment is
    included (not live: everyone gets its control) so the reader can tell that case apart.
    """
    return _experiment_configs(
        Experiment.objects.filter(status__in=Experiment.LIVE_STATUSES).order_by(
            "placement__key", "pk"
        )
    )


def experiment_summaries() -> list[ExperimentConfig]:
    """Every experiment, newest first, for dashboards; in three queries."""
    return _experiment_configs(Experiment.objects.order_by("-created_at", "-pk"))


def experiment_by_id(pk: int) -> ExperimentConfig | None:
    """One experiment, or None when there is no such experiment; in three queries."""
    configs = _experiment_configs(Experiment.objects.filter(pk=pk))
    return configs[0] if configs else None
