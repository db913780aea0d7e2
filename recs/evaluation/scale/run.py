"""One training-at-scale run: load the log, fit every learner, precompute, in this process."""

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from recs.evaluation.data import load_interactions_csv
from recs.evaluation.offline import peak_memory_mib
from recs.evaluation.scale.fitting import fit_all
from recs.evaluation.scale.measures import LoadMeasure, Say, ScaleRun, rss_mib
from recs.evaluation.scale.precompute import (
    PRECOMPUTE_LIMIT_S,
    PRECOMPUTE_SAMPLE,
    measure_precompute,
)
from recs.learners import CatalogItem, Interactions


def load(
    events: Path, catalog: Path | None, *, progress: bool = True
) -> tuple[Interactions, list[CatalogItem], LoadMeasure]:
    """The log and catalog, with the time and memory loading them took."""
    started = time.perf_counter()
    interactions, items = load_interactions_csv(events, catalog_path=catalog, progress=progress)
    seconds = time.perf_counter() - started
    users = np.bincount(interactions.user_codes, minlength=len(interactions.users))
    touched = np.bincount(interactions.item_codes, minlength=len(interactions.items))
    measure = LoadMeasure(
        seconds=seconds, peak_mib=peak_memory_mib(), rss_mib=rss_mib(), events=len(interactions),
        users=int(np.count_nonzero(users)), items_with_events=int(np.count_nonzero(touched)),
        catalog_items=len(items), kinds=interactions.kinds_present(),
    )  # fmt: skip
    return interactions, items, measure


def run_scale(
    events: Path,
    catalog: Path | None = None,
    *,
    keys: Sequence[str] | None = None,
    active_days: float | None = None,
    precompute_sample: int = PRECOMPUTE_SAMPLE,
    precompute_limit_s: float = PRECOMPUTE_LIMIT_S,
    progress: bool = True,
    say: Say | None = None,
) -> ScaleRun:
    """Load, fit every learner, precompute, all in this process (BLAS limited to one thread
    as the evaluate command and the training pipeline do)."""
    say = say or (lambda message: None)
    started = time.perf_counter()
    say(f"loading {events}")
    interactions, items, loaded = load(events, catalog, progress=progress)
    say(f"loaded {loaded.events:,} events in {loaded.seconds:.1f} s")
    with threadpool_limits(1, "blas"):
        fitted, fits = fit_all(interactions, items, keys, say=say)
        fit_phase_peak = peak_memory_mib()
        precompute = measure_precompute(
            fitted, interactions, items, active_days=active_days, sample=precompute_sample,
            limit_s=precompute_limit_s, say=say,
        )  # fmt: skip
    return ScaleRun(
        load=loaded, fits=fits, fit_phase_peak_mib=fit_phase_peak, precompute=precompute,
        peak_mib=peak_memory_mib(), seconds=time.perf_counter() - started,
    )  # fmt: skip
