"""Reads of experiments and their variants, as plain data the engine can cache."""

from dataclasses import dataclass

from django.db.models import QuerySet

from merch.models import Experiment, ExperimentVariant, remaining_traffic
from merch.selectors._shared import epoch


@dataclass(frozen=True)
class VariantConfig:
    """One experiment variant as plain data; the control's traffic is what the others leave."""

    name: str
    strategy: str
    traffic_percent: float
    is_control: bool
    is_shadow: bool


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
    """ExperimentConfigs for a queryset, in two queries (one when it is empty)."""
    rows = list(
        experiments.values_list(
            "pk", "name", "placement__key", "status", "salt", "starts_at", "ends_at"
        )
    )
    if not rows:
        return []
    variants: dict[int, list[ExperimentVariant]] = {pk: [] for pk, *_ in rows}
    for variant in ExperimentVariant.objects.filter(experiment_id__in=variants).order_by(
        "-is_control", "pk"
    ):
        variants[variant.experiment_id].append(variant)
    return [
        ExperimentConfig(
            id=pk,
            name=name,
            placement_key=placement_key,
            status=status,
            salt=salt,
            starts_at=epoch(starts_at),
            ends_at=epoch(ends_at),
            variants=tuple(
                VariantConfig(
                    name=variant.name,
                    strategy=variant.strategy,
                    traffic_percent=float(
                        remaining_traffic(variants[pk])
                        if variant.is_control
                        else variant.traffic_percent
                    ),
                    is_control=variant.is_control,
                    is_shadow=variant.is_shadow,
                )
                for variant in variants[pk]
            ),
        )
        for pk, name, placement_key, status, salt, starts_at, ends_at in rows
    ]


def experiments_config() -> list[ExperimentConfig]:
    """The running and paused experiments (at most one per placement), in two queries.

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
    """Every experiment, newest first, for dashboards; in two queries."""
    return _experiment_configs(Experiment.objects.order_by("-created_at", "-pk"))


def experiment_by_id(pk: int) -> ExperimentConfig | None:
    """One experiment, or None when there is no such experiment; in two queries."""
    configs = _experiment_configs(Experiment.objects.filter(pk=pk))
    return configs[0] if configs else None
