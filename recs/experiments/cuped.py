"""CUPED (Deng, Xu, Kohavi, Walker, WSDM 2013): less variance from what shoppers did before.

Much of the spread of revenue per shopper in a test is who the shoppers are, not which variant
they saw: a shopper who bought a lot last month buys a lot this month. Subtracting
theta * (x - mean x), with x a metric of the pre-experiment period, removes the part of the
outcome y that x predicts. Randomization makes x independent of the variant, so the adjusted
means keep the same expected difference, with variance var(y) (1 - corr(x, y)^2): the
sequential test (recs.experiments.sequential) then needs fewer shoppers to find an effect.

Everything comes from per-arm sums (n, sum y, sum y^2, sum x, sum x^2, sum xy), so an hourly
rollup can keep them like the revenue sums it keeps already.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from recs.experiments.sequential import ArmStats

# A pooled sum of squared deviations of x below this share of the sum of x^2 is rounding: x is
# constant (no pre-period activity anywhere), and there is nothing to adjust with.
CONSTANT_COVARIATE = 1e-12


@dataclass(frozen=True)
class CupedSums:
    """One arm's sufficient statistics of outcome y and pre-experiment covariate x per shopper."""

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float
    sum_x2: float
    sum_xy: float


@dataclass(frozen=True)
class CupedResult:
    """Adjusted and unadjusted statistics per arm, ready for sequential_test."""

    theta: float
    variance_reduction: float  # 1 - pooled adjusted variance / pooled variance of y
    adjusted: dict[str, ArmStats]
    unadjusted: dict[str, ArmStats]


@dataclass(frozen=True)
class _Deviations:
    """An arm's sums of squared (and cross) deviations from its own means."""

    yy: float
    xx: float
    xy: float

    @classmethod
    def of(cls, arm: CupedSums) -> "_Deviations":
        if arm.n <= 0:
            return cls(0.0, 0.0, 0.0)
        return cls(
            max(arm.sum_y2 - arm.sum_y * arm.sum_y / arm.n, 0.0),
            max(arm.sum_x2 - arm.sum_x * arm.sum_x / arm.n, 0.0),
            arm.sum_xy - arm.sum_x * arm.sum_y / arm.n,
        )

    def adjusted_yy(self, theta: float) -> float:
        return max(self.yy - 2 * theta * self.xy + theta * theta * self.xx, 0.0)


def pooled_theta(arms: Mapping[str, CupedSums]) -> float:
    """cov(x, y) / var(x) pooled within arms (so a treatment effect on y does not leak into it);
    0 when x does not vary."""
    deviations = [_Deviations.of(arm) for arm in arms.values()]
    xx = sum(d.xx for d in deviations)
    if xx <= CONSTANT_COVARIATE * sum(abs(arm.sum_x2) for arm in arms.values()) or xx <= 0:
        return 0.0
    return sum(d.xy for d in deviations) / xx


def cuped_adjust(arms: Mapping[str, CupedSums]) -> CupedResult:
    """Each arm's mean of y - theta * (x - pooled mean of x) and its variance
    var(y) - 2 theta cov(x, y) + theta^2 var(x), with one theta pooled over all arms."""
    theta = pooled_theta(arms)
    shoppers = sum(arm.n for arm in arms.values())
    mean_x = sum(arm.sum_x for arm in arms.values()) / shoppers if shoppers > 0 else 0.0
    adjusted, unadjusted = {}, {}
    raw_total = adjusted_total = 0.0
    for name, arm in arms.items():
        unadjusted[name] = ArmStats.from_sums(arm.n, arm.sum_y, arm.sum_y2)
        deviations = _Deviations.of(arm)
        raw_total += deviations.yy
        adjusted_total += deviations.adjusted_yy(theta)
        adjusted[name] = _adjusted_arm(arm, deviations, theta, mean_x)
    reduction = 1 - adjusted_total / raw_total if raw_total > 0 else 0.0
    return CupedResult(theta, reduction, adjusted, unadjusted)


def _adjusted_arm(arm: CupedSums, deviations: _Deviations, theta: float, mean_x: float) -> ArmStats:
    if arm.n <= 0:
        return ArmStats(0, 0.0, 0.0)
    mean = arm.sum_y / arm.n - theta * (arm.sum_x / arm.n - mean_x)
    variance = deviations.adjusted_yy(theta) / (arm.n - 1) if arm.n > 1 else 0.0
    return ArmStats(arm.n, mean, variance)
