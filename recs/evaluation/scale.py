"""Training at scale: time and memory of loading a log, fitting every learner and precomputing.

Everything runs in this one process, one step after the other, as the training pipeline does,
so the memory figures are the process's own: `ru_maxrss` (the peak, what `/usr/bin/time -v`
reports as "Maximum resident set size") and the resident set at each moment (/proc/self/statm).
The peak only ever grows, so each learner's row says by how much its fit raised it: that is
the learner to look at when the peak is over budget.
"""

import gc
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
from django.conf import settings
from django.test import override_settings
from threadpoolctl import threadpool_limits

from recs.evaluation.data import load_interactions_csv
from recs.evaluation.offline import failure_reason, peak_memory_mib
from recs.evaluation.run import learner_factory
from recs.learners import LEARNERS, CatalogItem, Interactions, Learner
from recs.learners.hybrid import COMPONENTS
from recs.training.pipeline import PRECOMPUTE_CHUNK

MIB = 1024 * 1024
# (catalog items from, total fit seconds, peak MiB): the stricter budget that applies wins.
BUDGETS = ((1_000_000, 20 * 60, 8 * 1024), (200_000, 5 * 60, 3 * 1024))
# Per-entity precompute calls timed before deciding whether the full run is affordable.
PROBE_CALLS = 200
PRECOMPUTE_LIMIT_S = 30 * 60
PRECOMPUTE_SAMPLE = 20_000

Say = Callable[[str], None]


def rss_mib() -> float:
    """The process's resident set now: what it holds, as opposed to the highest it ever held."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


@dataclass
class LoadMeasure:
    seconds: float
    peak_mib: float
    rss_mib: float
    events: int
    users: int
    items_with_events: int
    catalog_items: int
    kinds: dict[str, int]


@dataclass
class FitMeasure:
    key: str
    seconds: float
    peak_mib: float  # process peak after the fit
    raised_peak_mib: float  # how much this fit pushed the peak up
    rss_mib: float  # resident set right after the fit
    artifact_mib: float | None = None
    save_seconds: float | None = None
    peak_after_save_mib: float | None = None
    failed: str | None = None
    note: str = ""


@dataclass
class ListsMeasure:
    """One kind of candidate list (a pipeline role): how many, how long, how many entries."""

    role: str
    learner: str
    population: int  # lists the pipeline would write
    computed: int  # lists computed here (fewer when sampled)
    seconds: float
    entries: int
    failed: str | None = None
    held_mib_per_list: float = 0.0  # RSS growth while a batch of lists was held, per list
    held_batch: int = 0  # the lists of that batch

    @property
    def held_mib(self) -> float:
        """About what holding every list at once takes (the pipeline does so for user lists)."""
        return self.held_mib_per_list * self.population

    @property
    def sampled(self) -> bool:
        return self.computed < self.population

    @property
    def seconds_per_list(self) -> float:
        return self.seconds / self.computed if self.computed else 0.0

    @property
    def full_seconds(self) -> float:
        """Measured when every list was computed, extrapolated from the rate when sampled."""
        return self.seconds_per_list * self.population if self.sampled else self.seconds

    @property
    def full_entries(self) -> float:
        return self.entries / self.computed * self.population if self.sampled else self.entries


@dataclass
class PrecomputeMeasure:
    active_days: float
    active_users: int
    active_items: int
    probe_estimate_s: float  # full run, extrapolated from the probe calls
    sampled: bool
    sample_size: int
    probe_calls: int
    limit_s: float
    seconds: float
    peak_before_mib: float
    peak_after_mib: float
    rss_before_mib: float
    rss_after_mib: float
    lists: list[ListsMeasure] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # role -> why

    @property
    def total_lists(self) -> int:
        return sum(m.population for m in self.lists if not m.failed)

    @property
    def full_seconds(self) -> float:
        return sum(m.full_seconds for m in self.lists if not m.failed)


@dataclass
class ScaleRun:
    load: LoadMeasure
    fits: list[FitMeasure]
    fit_phase_peak_mib: float
    precompute: PrecomputeMeasure | None
    peak_mib: float
    seconds: float

    @property
    def fit_seconds(self) -> float:
        return sum(f.seconds for f in self.fits)

    @property
    def failed(self) -> list[FitMeasure]:
        return [f for f in self.fits if f.failed]


# --- loading ---------------------------------------------------------------------------------


def load(
    events: Path, catalog: Path | None, *, progress: bool = True
) -> tuple[Interactions, list[CatalogItem], LoadMeasure]:
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


# --- fitting ---------------------------------------------------------------------------------


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
    weights = settings.EVENT_WEIGHTS if event_weights is None else event_weights
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


# --- precompute ------------------------------------------------------------------------------


def active_shoppers_and_items(
    interactions: Interactions, catalog: Sequence[CatalogItem], active_days: float
) -> tuple[list[str], list[str]]:
    """The users and items whose lists the training pipeline precomputes (its own functions,
    with the active window set to `active_days`)."""
    from recs.training.pipeline import active_items, active_users

    with override_settings(ACTIVE_USER_DAYS=active_days):
        return active_users(interactions), active_items(interactions, catalog)


@dataclass
class _Role:
    """A per-user or per-item kind of list: its learner and how to compute a batch of lists."""

    role: str
    learner: str
    population: list[str]
    compute: Callable[[list[str]], list[list]]


def _roles(
    fitted: Mapping[str, Learner], users: list[str], skus: list[str]
) -> tuple[list[_Role], dict[str, str]]:
    from recs.training.pipeline import CANDIDATE_SOURCES

    user_size, similar_size = settings.USER_CANDIDATES_SIZE, settings.SIMILAR_ITEMS_SIZE
    roles, skipped = [], {}
    for role in ("user", "similar_cf", "similar_content", "bought_together"):
        key = CANDIDATE_SOURCES[role]
        learner = fitted.get(key)
        if learner is None:
            skipped[role] = f"`{key}` was not fitted"
        elif role == "user":

            def per_user(batch, learner=learner):
                return list(learner.recommend_many(batch, user_size).values())

            roles.append(_Role(role, key, users, per_user))
        else:

            def per_item(batch, learner=learner):
                return list(learner.similar_items_many(batch, similar_size).values())

            roles.append(_Role(role, key, skus, per_item))
    return roles, skipped


def _popularity_lists(fitted: Mapping[str, Learner], say: Say) -> tuple[list[ListsMeasure], dict]:
    """The global and per-segment popularity lists and the trending list: few, always all."""
    from recs.training.pipeline import CANDIDATE_SOURCES

    size = settings.POPULAR_LIST_SIZE
    measures, skipped = [], {}
    for role in ("popular", "trending"):
        key = CANDIDATE_SOURCES[role]
        learner = fitted.get(key)
        if learner is None:
            skipped[role] = f"`{key}` was not fitted"
            continue
        started = time.perf_counter()
        try:
            segments = [None, *learner.segment_names()] if role == "popular" else [None]
            lists = [learner.popular(segment, size) for segment in segments]
        except Exception as error:
            measures.append(ListsMeasure(role, key, 0, 0, 0.0, 0, failure_reason(error)))
            continue
        seconds = time.perf_counter() - started
        measures.append(
            ListsMeasure(role, key, len(lists), len(lists), seconds, sum(map(len, lists)))
        )
        say(f"{role}: {len(lists):,} lists in {seconds:.2f} s")
    return measures, skipped


def measure_precompute(
    fitted: Mapping[str, Learner],
    interactions: Interactions,
    catalog: Sequence[CatalogItem],
    *,
    active_days: float | None = None,
    sample: int = PRECOMPUTE_SAMPLE,
    limit_s: float = PRECOMPUTE_LIMIT_S,
    probe: int = PROBE_CALLS,
    seed: int = 0,
    say: Say | None = None,
) -> PrecomputeMeasure:
    """Compute the lists the training pipeline would write (not writing them anywhere).

    A few calls per kind of list are timed first; when the full run extrapolated from them
    would take longer than `limit_s`, every per-user and per-item kind runs on the same seeded
    sample of at most `sample` users and items, and its full time is extrapolated from the rate
    measured on that sample."""
    say = say or (lambda message: None)
    days = settings.ACTIVE_USER_DAYS if active_days is None else active_days
    peak_before, rss_before = peak_memory_mib(), rss_mib()
    started = time.perf_counter()
    users, skus = active_shoppers_and_items(interactions, catalog, days)
    say(f"precompute: {len(users):,} active users, {len(skus):,} active items")
    rng = np.random.default_rng(seed)
    order = {"users": rng.permutation(len(users)), "items": rng.permutation(len(skus))}
    roles, skipped = _roles(fitted, users, skus)
    done: dict[str, tuple[int, float, int]] = {}  # role -> (computed, seconds, entries)
    failures: dict[str, str] = {}
    held: dict[str, tuple[float, int]] = {}  # role -> (MiB per list, lists), largest batch

    def run(role: _Role, stop: int) -> None:
        start, seconds, entries = done.get(role.role, (0, 0.0, 0))
        stop = max(stop, start)
        positions = order["users" if role.role == "user" else "items"][start:stop]
        batch = [role.population[i] for i in positions]
        began, made = time.perf_counter(), 0
        # As the pipeline does: a chunk of lists computed, measured and let go at a time.
        for first in range(0, len(batch), PRECOMPUTE_CHUNK):
            chunk = batch[first : first + PRECOMPUTE_CHUNK]
            rss_before = rss_mib()
            try:
                lists = role.compute(chunk)
            except Exception as error:
                failures[role.role] = failure_reason(error)
                return
            if len(chunk) >= held.get(role.role, (0.0, 0))[1]:  # the largest chunk tells best
                grown = max(rss_mib() - rss_before, 0.0)
                held[role.role] = (grown / max(len(chunk), 1), len(chunk))
            made += sum(map(len, lists))
            del lists
        spent = time.perf_counter() - began
        done[role.role] = (stop, seconds + spent, entries + made)

    estimate = 0.0
    for role in roles:
        run(role, min(probe, len(role.population)))
        computed, seconds, _ = done.get(role.role, (0, 0.0, 0))
        if computed:
            estimate += seconds / computed * len(role.population)
    sampled = estimate > limit_s
    say(
        f"precompute: full run estimated at {estimate / 60:,.1f} min from the probe"
        + (f"; running a seeded sample of at most {sample:,} users/items" if sampled else "")
    )
    for role in roles:
        if role.role in failures:
            continue
        stop = min(sample, len(role.population)) if sampled else len(role.population)
        run(role, stop)
        computed, seconds, _ = done.get(role.role, (0, 0.0, 0))
        say(f"{role.role}: {computed:,} lists in {seconds:.1f} s")
    lists = []
    for role in roles:
        computed, seconds, entries = done.get(role.role, (0, 0.0, 0))
        measure = ListsMeasure(
            role.role, role.learner, len(role.population), computed, seconds, entries,
            failed=failures.get(role.role), held_mib_per_list=held.get(role.role, (0.0, 0))[0],
            held_batch=held.get(role.role, (0.0, 0))[1],
        )  # fmt: skip
        lists.append(measure)
    popular, popular_skipped = _popularity_lists(fitted, say)
    return PrecomputeMeasure(
        active_days=days, active_users=len(users), active_items=len(skus),
        probe_estimate_s=estimate, sampled=sampled, sample_size=sample, probe_calls=probe,
        limit_s=limit_s,
        seconds=time.perf_counter() - started, peak_before_mib=peak_before,
        peak_after_mib=peak_memory_mib(), rss_before_mib=rss_before, rss_after_mib=rss_mib(),
        lists=lists + popular, skipped={**skipped, **popular_skipped},
    )  # fmt: skip


# --- the whole run ---------------------------------------------------------------------------


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


# --- the report ------------------------------------------------------------------------------


def budget_for(catalog_items: int) -> tuple[int, float, float] | None:
    """(catalog size it applies from, fit seconds, peak MiB), or None below 200k items."""
    return next((b for b in BUDGETS if catalog_items >= b[0]), None)


def budget_lines(run: ScaleRun) -> list[str]:
    budget = budget_for(run.load.catalog_items)
    if budget is None:
        return [
            f"- Budgets: none at {run.load.catalog_items:,} catalog items (they start at "
            f"{BUDGETS[-1][0]:,}); numbers reported only."
        ]
    items, seconds, peak = budget
    failed = ", ".join(f"`{f.key}`" for f in run.failed)
    time_met = run.fit_seconds <= seconds and not failed
    peak_met = run.fit_phase_peak_mib <= peak and not failed
    suffix = f" ({failed} failed, so not every learner fitted)" if failed else ""
    return [
        f"- Budget at >= {items:,} catalog items, all learners fitted one after another in one "
        "process:",
        f"  - fit time {run.fit_seconds / 60:,.1f} min (goal <= {seconds / 60:.0f} min): "
        f"{'met' if time_met else 'NOT met'}{suffix}.",
        f"  - peak memory {run.fit_phase_peak_mib / 1024:,.2f} GiB after loading and fitting "
        f"(goal <= {peak / 1024:.0f} GiB): {'met' if peak_met else 'NOT met'}{suffix}.",
    ]


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _artifact_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def fit_table(run: ScaleRun) -> list[str]:
    lines = [
        "| learner | fit s | peak RSS after MiB | raised the peak by MiB | RSS now MiB "
        "| artifact MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for f in run.fits:
        if f.failed:
            lines.append(
                f"| `{f.key}` | failed after {f.seconds:,.2f} s: {f.failed} | {_mib(f.peak_mib)} "
                f"| {_mib(f.raised_peak_mib)} | {_mib(f.rss_mib)} | - |"
            )
            continue
        lines.append(
            f"| `{f.key}` | {f.seconds:,.2f} | {_mib(f.peak_mib)} | {_mib(f.raised_peak_mib)} "
            f"| {_mib(f.rss_mib)} | {_artifact_cell(f.artifact_mib)} |"
        )
    return lines


def precompute_lines(p: PrecomputeMeasure) -> list[str]:
    how = (
        f"a seeded sample of at most {p.sample_size:,} users and {p.sample_size:,} items "
        f"(the full run, extrapolated from {p.probe_calls} probe calls per kind, would take "
        f"{p.probe_estimate_s / 60:,.1f} min, over the {p.limit_s / 60:g} min a bench may spend)"
        if p.sampled
        else f"every list (estimated at {p.probe_estimate_s / 60:,.1f} min from the probe calls)"
    )
    lines = [
        f"Precompute (the lists `precompute_candidates` would write, nothing written to Redis): "
        f"{p.active_users:,} shoppers and {p.active_items:,} items active in the last "
        f"{p.active_days:g} days; computed {how}. Took {p.seconds:,.1f} s; peak RSS "
        f"{p.peak_before_mib:,.0f} -> {p.peak_after_mib:,.0f} MiB (+"
        f"{p.peak_after_mib - p.peak_before_mib:,.0f}), RSS {p.rss_before_mib:,.0f} -> "
        f"{p.rss_after_mib:,.0f} MiB.",
        "",
        "| lists | learner | lists written | computed here | s | ms per list | entries "
        "| full run s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in p.lists:
        if m.failed:
            lines.append(f"| {m.role} | `{m.learner}` | failed: {m.failed} | | | | | |")
            continue
        mark = " (extrapolated)" if m.sampled else ""
        entries = f"{m.full_entries:,.0f}{mark}"
        lines.append(
            f"| {m.role} | `{m.learner}` | {m.population:,} | {m.computed:,} | {m.seconds:,.1f} "
            f"| {m.seconds_per_list * 1000:,.2f} | {entries} | {m.full_seconds:,.1f}{mark} |"
        )
    total_mark = " (extrapolated)" if p.sampled else " (measured)"
    lines += [
        "",
        f"Precompute total: {p.total_lists:,} lists, "
        f"{sum(m.full_entries for m in p.lists if not m.failed):,.0f} entries, "
        f"{p.full_seconds / 60:,.1f} min for every list{total_mark}.",
    ]
    users = next((m for m in p.lists if m.role == "user" and not m.failed), None)
    if users and users.computed:
        lines.append(
            f"- Memory of the lists themselves: the pipeline computes and writes "
            f"{PRECOMPUTE_CHUNK:,} shoppers' lists at a time, about "
            f"{users.held_mib / max(users.population, 1) * min(PRECOMPUTE_CHUNK, users.population):,.0f} MiB "
            f"held (from the RSS growth while a batch of {users.held_batch:,} lists was held); "
            "item lists likewise."
        )
    for role, why in p.skipped.items():
        lines.append(f"- {role} lists skipped: {why}.")
    return lines


def scale_section(
    run: ScaleRun, *, title: str, source: str, command: str, machine: str, busy_note: str = ""
) -> str:
    loaded = run.load
    kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(loaded.kinds.items(), key=lambda kv: -kv[1]))
    biggest = max((f for f in run.fits), key=lambda f: f.raised_peak_mib, default=None)
    lines = [
        f"## {title}",
        "",
        f"Data: {source}: {loaded.events:,} events by {loaded.users:,} shoppers on "
        f"{loaded.items_with_events:,} items, catalog {loaded.catalog_items:,} items; event "
        f"kinds: {kinds}.",
        "",
        f"Command: `{command}`. Machine: {machine}. Date: {time.strftime('%Y-%m-%d')}.",
        "",
        "Memory is measured inside the process: peak = `ru_maxrss` (what `/usr/bin/time -v` "
        'reports as "Maximum resident set size"), RSS now = /proc/self/statm. Paste the '
        "`/usr/bin/time -v` line of the run below this section as well.",
        "",
    ]
    if busy_note:
        lines += [busy_note, ""]
    lines += [
        f"Load: {loaded.seconds:,.2f} s; peak RSS after it {loaded.peak_mib:,.0f} MiB, RSS "
        f"{loaded.rss_mib:,.0f} MiB.",
        "",
        "Every learner with its default parameters and the project's event weights, on all the "
        "data and the whole catalog, one after another in this process (BLAS limited to one "
        "thread), each kept after its fit as the pipeline keeps them; the hybrid adopts its "
        "fitted components (no second fit), so its artifact includes them. Artifact = the "
        "learner pickled with joblib, uncompressed.",
        "",
        *fit_table(run),
        "",
        f"- All fits: {run.fit_seconds:,.1f} s ({run.fit_seconds / 60:,.1f} min); peak RSS after "
        f"loading and fitting {run.fit_phase_peak_mib:,.0f} MiB"
        + (
            f" (`{biggest.key}` raised it most, by {biggest.raised_peak_mib:,.0f} MiB)"
            if biggest and biggest.raised_peak_mib > 0
            else ""
        )
        + f"; whole run {run.seconds / 60:,.1f} min, overall peak {run.peak_mib:,.0f} MiB.",
    ]
    saves = [
        f for f in run.fits if f.peak_after_save_mib and f.peak_after_save_mib > f.peak_mib + 1
    ]
    for f in saves:
        lines.append(
            f"- Pickling `{f.key}` raised the peak to {f.peak_after_save_mib:,.0f} MiB "
            "(counted in the next learner's peak, not its own fit)."
        )
    for f in run.fits:
        if f.note:
            lines.append(f"- `{f.key}`: {f.note}.")
    lines += budget_lines(run)
    if run.precompute:
        lines += ["", *precompute_lines(run.precompute)]
    return "\n".join(lines) + "\n"
