"""Always-valid (sequential) inference for a variant against the control, from summary numbers.

A fixed-horizon p-value is valid once, at a sample size chosen in advance. Merchandisers look at
the dashboard every day, and a fixed-horizon test checked at every look declares A/A tests
"significant" far more often than alpha promises (`manage.py bench_experiments` measures it).

The mixture sequential probability ratio test (mSPRT: Johari, Koomen, Pekelis, Walsh, "Always
valid inference", Operations Research 2022; the Gaussian-mixture boundary of Howard, Ramdas,
McAuliffe, Sekhon, Annals of Statistics 2021) bounds the chance of *ever* crossing alpha by
alpha, however often one looks. It is the method behind Optimizely's and Eppo's sequential tests.

With the normal approximation, the difference of means d = mean_t - mean_c has variance
V = var_t / n_t + var_c / n_c. Mixing the likelihood ratio of "the difference is theta" against
"it is 0" over theta ~ N(0, tau^2) gives, in closed form,

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2))),

a martingale under the null, so by Ville's inequality P(ever Lambda >= 1 / alpha) <= alpha:
p = min(1, 1 / Lambda), kept as the running minimum over looks, is an always-valid p-value, and
the thetas whose Lambda(theta) stays below 1 / alpha form an always-valid confidence interval,

    d +- sqrt(V (V + tau^2) / tau^2 * (2 log(1 / alpha) + log((V + tau^2) / V))).

Everything here takes means and variances (ArmStats), so the same test serves conversion rates
(the mean of 0/1 values), revenue per shopper and CUPED-adjusted means (recs.experiments.cuped).

Choosing tau: tau is the standard deviation of the mixing distribution of the difference, given
here in units of the pooled standard deviation of the metric (a standardized effect size), so
one value serves rates and revenue alike. The interval is narrowest at the sample size where
tau^2 / V = r solves r = 2 log(1 / alpha) + log(1 + r) (r = 8.2 at alpha = 0.05), i.e. where
tau is about the smallest effect the experiment could find: tau_for_sample_size() gives it.
DEFAULT_TAU = 0.04 is that value for 10,000 shoppers per arm at alpha = 0.05; a conversion rate
of 5 % lifted by 10 % is 0.023 standard deviations. Too small a tau is slow to find large
effects, too large a tau slow to find small ones; neither changes the error rate.

The variances are plugged in from the data (the normal approximation), so the guarantee holds
once the means are about normal: `manage.py bench_experiments` measures the false alarm rate
from 100 shoppers per arm on, with heavy-tailed revenue.
"""

import math
from dataclasses import dataclass

# Mixing standard deviation in pooled standard deviations: best near 10,000 shoppers per arm.
DEFAULT_TAU = 0.04


@dataclass(frozen=True)
class ArmStats:
    """One arm's per-shopper metric: shoppers, mean and sample variance (ddof = 1). A rate is
    the mean of 0/1 values; CUPED-adjusted means and variances fit as they are."""

    n: int
    mean: float
    variance: float

    @classmethod
    def from_sums(cls, n: int, total: float, total_squares: float) -> "ArmStats":
        """From the sums the hourly rollup keeps. Mean 0 without shoppers and variance 0 below
        two, which the test reads as "not enough data" rather than failing."""
        if n <= 0:
            return cls(0, 0.0, 0.0)
        mean = total / n
        if n < 2:
            return cls(n, mean, 0.0)
        # max(): float sums of a constant sample may leave a tiny negative.
        return cls(n, mean, max((total_squares - total * total / n) / (n - 1), 0.0))


@dataclass(frozen=True)
class SequentialResult:
    """The treatment against the control at one look; None where the data cannot say yet."""

    difference: float | None  # treatment mean - control mean
    p_value: float | None  # always valid; the running minimum when previous_p was passed
    low: float | None  # always-valid confidence interval of the difference at this look
    high: float | None
    alpha: float
    mixing_sd: float | None  # tau in the metric's own unit

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < self.alpha


def difference_variance(treatment: ArmStats, control: ArmStats) -> float | None:
    """Variance of the difference of the two means; None when a side has fewer than two."""
    if treatment.n < 2 or control.n < 2:
        return None
    return treatment.variance / treatment.n + control.variance / control.n


def pooled_variance(treatment: ArmStats, control: ArmStats) -> float | None:
    """The arms' variances pooled (weighted by degrees of freedom): the scale tau is given in."""
    if treatment.n < 2 or control.n < 2:
        return None
    weighted = (treatment.n - 1) * treatment.variance + (control.n - 1) * control.variance
    return weighted / (treatment.n + control.n - 2)


def log_mixture_likelihood_ratio(
    difference: float, variance: float, mixing_variance: float
) -> float:
    """log Lambda for an observed difference with variance V (> 0), mixing variance tau^2 (> 0)."""
    total = variance + mixing_variance
    # Written so that extreme scales overflow to inf or underflow to 0 rather than raise.
    shrink = mixing_variance / total  # tau^2 / (V + tau^2)
    half_z_squared = (difference / variance) * difference / 2  # d^2 / (2 V)
    return 0.5 * (math.log(variance) - math.log(total)) + shrink * half_z_squared


def confidence_radius(variance: float, mixing_variance: float, alpha: float) -> float:
    """Half-width of the always-valid interval: where log Lambda(theta) = log(1 / alpha)."""
    total = variance + mixing_variance
    return math.sqrt(
        variance
        * (1 + variance / mixing_variance)
        * (2 * math.log(1 / alpha) + math.log(total) - math.log(variance))
    )


def always_valid_p_value(log_likelihood_ratio: float, previous_p: float | None = None) -> float:
    """min(1, 1 / Lambda), and no higher than the previous look's: evidence only accumulates."""
    p_value = math.exp(min(0.0, -log_likelihood_ratio))
    return p_value if previous_p is None else min(p_value, previous_p)


def tau_for_sample_size(n_per_arm: int, alpha: float) -> float:
    """The tau (in pooled standard deviations) whose interval is narrowest at n_per_arm shoppers
    per arm: tau^2 = r V with V = 2 / n_per_arm and r = 2 log(1 / alpha) + log(1 + r)."""
    _check_alpha(alpha)
    if n_per_arm < 1:
        raise ValueError("n_per_arm must be at least 1")
    two_log = 2 * math.log(1 / alpha)
    ratio = two_log
    for _ in range(50):  # a contraction (slope 1 / (1 + r) < 1): converges in a few steps
        ratio = two_log + math.log1p(ratio)
    return math.sqrt(ratio * 2 / n_per_arm)


def sequential_test(
    treatment: ArmStats,
    control: ArmStats,
    *,
    alpha: float,
    tau: float = DEFAULT_TAU,
    previous_p: float | None = None,
) -> SequentialResult:
    """The mSPRT of treatment - control at this look: always-valid p-value and interval.

    Pass the p-value of the previous look as previous_p to get the running minimum. Fewer than
    two shoppers on a side, or no variance on either, give p-value previous_p (None at first)
    and no interval."""
    _check_alpha(alpha)
    if tau <= 0:
        raise ValueError("tau must be positive")
    difference = treatment.mean - control.mean if treatment.n and control.n else None
    variance = difference_variance(treatment, control)
    pooled = pooled_variance(treatment, control)
    mixing_variance = tau * tau * pooled if pooled else 0.0
    if difference is None or not variance or not mixing_variance:
        return SequentialResult(difference, previous_p, None, None, alpha, None)
    p_value = always_valid_p_value(
        log_mixture_likelihood_ratio(difference, variance, mixing_variance), previous_p
    )
    radius = confidence_radius(variance, mixing_variance, alpha)
    return SequentialResult(
        difference, p_value, difference - radius, difference + radius, alpha,
        math.sqrt(mixing_variance),
    )  # fmt: skip


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
