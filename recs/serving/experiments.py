"""Experiment assignment on the render path: which variant (strategy or model) serves a shopper.

Assignment is a deterministic hash of the experiment's salt and the shopper (the user, or the
anonymous session), so it needs no lookup and no write. Each treatment variant owns a fixed
anchor in the bucket space and grows from it, so ramping a variant up only ever moves shoppers
from control into it: a shopper in at 2 % is still in at 10 %. A paused or out-of-schedule
experiment serves its control to everyone, unlogged, and so does a challenger a guardrail paused
to its own shoppers; a stopped one has left the configuration, so the placement's default
strategy serves.
"""

import hashlib
from dataclasses import dataclass

from merch.selectors.experiments import ExperimentConfig, VariantConfig
from merch.selectors.merchandising import PlacementConfig
from recs.serving.types import RecommendationContext

BUCKETS = 10_000
# Serving strategies the render path implements; a variant may also name a learner key.
STRATEGIES = frozenset({"auto", "personal", "similar", "bought_together", "popular", "trending"})
# Learner keys whose lists the render path can serve as a strategy of their own.
LEARNER_STRATEGIES = {
    "popularity": "popular",
    "demographic": "popular",
    "trending": "trending",
    "bought_together": "bought_together",
    "hybrid": "auto",
}


@dataclass(frozen=True)
class Variant:
    name: str
    strategy: str  # a serving strategy
    model_key: str = ""  # a learner whose per-user lists this variant serves ("" = the default)
    is_control: bool = True
    experiment_id: int | None = None
    shadows: tuple[VariantConfig, ...] = ()  # to score off the render path for this request


def bucket_of(salt: str, subject_id: str) -> int:
    digest = hashlib.sha256(f"{salt}:{subject_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def _ranges(treatments: list[VariantConfig]) -> list[tuple[VariantConfig, int, int]]:
    """(variant, start, length) per treatment: anchors spread evenly; a variant's share grows
    forward from its anchor, and past its own segment backwards from it (into the tail of the
    previous segment, which that variant's head does not use while shares sum to <= 100 %)."""
    if not treatments:
        return []
    segment = BUCKETS // len(treatments)
    ranges = []
    for i, variant in enumerate(treatments):
        share = round(variant.traffic_percent * BUCKETS / 100)
        anchor = i * segment
        head = min(share, segment)
        ranges.append((variant, anchor, head))
        if share > head:
            tail = share - head
            ranges.append((variant, (anchor - tail) % BUCKETS, tail))
    return ranges


def choose_variant(experiment: ExperimentConfig, subject_id: str) -> VariantConfig:
    """The variant a shopper sees in a live experiment (the control when in no treatment)."""
    control = next(v for v in experiment.variants if v.is_control)
    treatments = [v for v in experiment.variants if not v.is_control and not v.is_shadow]
    bucket = bucket_of(experiment.salt, subject_id)
    for variant, start, length in _ranges(treatments):
        if (bucket - start) % BUCKETS < length:
            return variant
    return control


def as_serving_strategy(name: str) -> tuple[str, str]:
    """(strategy, model_key) for a variant's strategy field: a serving strategy, a learner whose
    lists are the default ones, or another learner served from its own per-user lists."""
    if name in STRATEGIES:
        return name, ""
    if name in LEARNER_STRATEGIES:
        return LEARNER_STRATEGIES[name], ""
    return "auto", name


def as_serving(variant: VariantConfig, placement: PlacementConfig) -> tuple[str, str]:
    return as_serving_strategy(variant.strategy)


def assign_variant(
    context: RecommendationContext,
    placement: PlacementConfig,
    experiments: list[ExperimentConfig],
    now_s: float,
) -> Variant:
    """The variant that serves this shopper on this placement right now."""
    default = Variant(name="default", strategy=placement.default_strategy)
    experiment = next((e for e in experiments if e.placement_key == placement.key), None)
    if experiment is None:
        return default
    if not experiment.is_live(now_s) or not context.subject_id:
        # Paused or outside its schedule: everyone sees the control, and none of it is logged.
        control = next(v for v in experiment.variants if v.is_control)
        strategy, model_key = as_serving(control, placement)
        return Variant(name="default", strategy=strategy, model_key=model_key)
    chosen = choose_variant(experiment, context.subject_id)
    if chosen.paused_at is not None:
        # A challenger a guardrail paused: its shoppers see the control, unlogged, so that they
        # count for neither arm while the other arms' test goes on.
        control = next(v for v in experiment.variants if v.is_control)
        strategy, model_key = as_serving(control, placement)
        return Variant(name="default", strategy=strategy, model_key=model_key)
    strategy, model_key = as_serving(chosen, placement)
    return Variant(
        name=chosen.name,
        strategy=strategy,
        model_key=model_key,
        is_control=chosen.is_control,
        experiment_id=experiment.id,
        shadows=tuple(v for v in experiment.variants if v.is_shadow),
    )


def control_of(experiments: list[ExperimentConfig], experiment_id: int) -> VariantConfig | None:
    experiment = next((e for e in experiments if e.id == experiment_id), None)
    return next((v for v in experiment.variants if v.is_control), None) if experiment else None
