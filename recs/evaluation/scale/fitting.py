"""Every learner fitted on all the data, one after another, each timed, sized and pickled."""

import gc
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import joblib

from aisle.conf import aisle_settings
from recs.evaluation.offline import failure_reason, peak_memory_mib
from recs.evaluation.run import learner_factory
from recs.evaluation.scale.measures import MIB, FitMeasure, Say, rss_mib
from recs.learners import LEARNERS, CatalogItem, Interactions, Learner
from recs.learners.hybrid import COMPONENTS


def fit_order(keys: Sequence[str] | None = None) -> list[str]:
    """The learners to fit, in LEARNERS order, the hybrid last after the components it adopts
    (added when only the hybrid is asked for, as the training pipeline does)."""
    wanted = list(keys) if keys else list(LEARNERS)
    if "hybrid" in wanted:
        wanted += [k for k in COMPONENTS if k in LEARNERS]
    ordered = [k for k in LEARNERS if k in wanted and k != "hybrid"]
    return ordered + (["hybrid"] if "hybrid" in wanted else [])


def _artifact(learner: Learner, directory: str) -> tuple[float, float]:
    """(MiB, seconds) of the learner pickled as the pipeline saves it, uncompressed."""
    path = Path(directory) / f"{learner.key}.joblib"
    started = time.perf_counter()
    try:
        joblib.dump(learner, path, compress=0)
        return path.stat().st_size / MIB, time.perf_counter() - started
    finally:
        path.unlink(missing_ok=True)


def fit_all(
    interactions: Interactions,
    catalog: Sequence[CatalogItem],
    keys: Sequence[str] | None = None,
    *,
    event_weights: Mapping[str, float] | None = None,
    say: Say | None = None,
) -> tuple[dict[str, Learner], list[FitMeasure]]:
    """Fit each learner with its defaults on all the data, keeping every fitted one (the
    hybrid adopts its components instead of refitting them). One that raises is reported
    with its reason and the others go on."""
    say = say or (lambda message: None)
    weights = aisle_settings.EVENT_WEIGHTS if event_weights is None else event_weights
    fitted: dict[str, Learner] = {}
    measures: list[FitMeasure] = []
    with tempfile.TemporaryDirectory(prefix="bench-training-") as directory:
        for key in fit_order(keys):
            say(f"fitting {key}")
            peak_before = peak_memory_mib()
            started = time.perf_counter()
            note = ""
            try:
                learner = learner_factory(key, weights)({})
                if key == "hybrid":
                    components = {k: fitted[k] for k in COMPONENTS if k in fitted}
                    learner.use_fitted(components, interactions)
                    note = "adopts " + ", ".join(components) + "; artifact includes them"
                else:
                    learner.fit(interactions, catalog)
            except Exception as error:  # MemoryError included: the others go on
                seconds = time.perf_counter() - started
                learner = None
                gc.collect()
                failed = failure_reason(error)
                say(f"{key} failed after {seconds:.1f} s: {failed}")
            else:
                seconds, failed = time.perf_counter() - started, None
            peak = peak_memory_mib()
            measure = FitMeasure(
                key=key, seconds=seconds, peak_mib=peak, raised_peak_mib=peak - peak_before,
                rss_mib=rss_mib(), failed=failed, note=note,
            )  # fmt: skip
            if learner is not None:
                fitted[key] = learner
                try:
                    measure.artifact_mib, measure.save_seconds = _artifact(learner, directory)
                except Exception as error:
                    measure.note = "; ".join(
                        filter(None, [note, f"could not be pickled: {failure_reason(error)}"])
                    )
                measure.peak_after_save_mib = peak_memory_mib()
                say(
                    f"{key}: {seconds:.1f} s, peak {peak:,.0f} MiB, RSS {measure.rss_mib:,.0f} "
                    f"MiB, artifact {measure.artifact_mib or 0:,.1f} MiB"
                )
            measures.append(measure)
    return fitted, measures
