"""What a training-at-scale run measures, step by step, and how memory is read.

Everything runs in one process, one step after the other, as the training pipeline does, so the
memory figures are the process's own: `ru_maxrss` (the peak, what `/usr/bin/time -v` reports as
"Maximum resident set size") and the resident set at each moment (/proc/self/statm). The peak
only ever grows, so each learner's row says by how much its fit raised it: that is the learner
to look at when the peak is over budget.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass, field

MIB = 1024 * 1024

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
