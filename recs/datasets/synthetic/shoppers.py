"""The synthetic shop's shoppers: 1-3 preferred top categories and a latent taste each, a
propensity to buy (log-normal) and a join time (some during the log)."""

from dataclasses import dataclass

import numpy as np

from recs.datasets.synthetic.catalog import Catalog, noise, unit
from recs.datasets.synthetic.options import SyntheticOptions


@dataclass(eq=False)
class Shoppers:
    """Per shopper (row k is shopper u{k+1}): taste, interests, propensities, join time."""

    vectors: np.ndarray  # float32 n x LATENT_DIM
    preferred_tops: np.ndarray  # int32 n x 3
    preferred_cum: np.ndarray  # float32 n x 3: cumulative weights over preferred_tops, last is 1
    explore: np.ndarray  # float32: chance a session's interest is not a preferred category
    buyer: np.ndarray  # float32: propensity to cart and buy (log-normal around 1)
    joined_at: np.ndarray  # int64


def build_shoppers(
    options: SyntheticOptions, catalog: Catalog, rng: np.random.Generator
) -> Shoppers:
    """Tastes (1-3 preferred top categories and a latent vector), propensities, join times."""
    n = options.users
    top_mass = np.add.reduceat(np.diff(catalog.sub_cum0), catalog.top_sub_start[:-1]) ** 0.5
    top_cum = np.cumsum(top_mass) / top_mass.sum()
    preferred = np.searchsorted(top_cum, rng.random((n, 3)), side="right").astype(np.int32)
    preferred = np.minimum(preferred, len(top_mass) - 1)
    how_many = rng.choice(3, n, p=[0.45, 0.35, 0.2]) + 1
    slot_weight = rng.exponential(1.0, (n, 3)) * (np.arange(3) < how_many[:, None])
    cum = np.cumsum(slot_weight, axis=1) / slot_weight.sum(axis=1, keepdims=True)
    cum[:, -1] = 1.0
    top_vectors = np.stack(
        [unit(catalog.sub_vectors[catalog.top_sub_start[t] : catalog.top_sub_start[t + 1]].sum(0, keepdims=True))[0]
         for t in range(len(catalog.top_names))]
    )  # fmt: skip
    taste = np.einsum("nk,nkd->nd", slot_weight, top_vectors[preferred])
    taste /= slot_weight.sum(axis=1, keepdims=True)
    vectors = unit(taste + noise(rng, n, 0.8))
    joined_late = rng.random(n) < 0.45
    joined_at = np.where(
        joined_late, rng.uniform(options.start, options.end - 3600, n), options.start
    ).astype(np.int64)
    return Shoppers(
        vectors=vectors,
        preferred_tops=preferred,
        preferred_cum=cum.astype(np.float32),
        explore=rng.uniform(0.1, 0.35, n).astype(np.float32),
        buyer=rng.lognormal(0.0, 0.5, n).astype(np.float32),
        joined_at=joined_at,
    )
