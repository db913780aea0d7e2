"""A synthetic shop generated end to end: catalog, shoppers, events, both files, a summary.

The model behind the log gives a recommender real structure to find: the catalog (catalog.py:
categories, prices, launches, popularity, tastes, related items), the shoppers (shoppers.py)
and their sessions and funnel (simulation.py). The same options and seed give the same files.
"""

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recs.datasets.synthetic.catalog import Catalog, build_catalog
from recs.datasets.synthetic.files import write_catalog_csv, write_events_csv
from recs.datasets.synthetic.options import SyntheticOptions
from recs.datasets.synthetic.shoppers import build_shoppers
from recs.datasets.synthetic.simulation import EVENT_KINDS, EventLog, simulate_events


@dataclass
class Summary:
    """What was generated, for the command to print."""

    events: int
    target_events: int
    by_kind: dict[str, int]
    users_with_events: int
    items: int
    items_with_events: int
    items_launched_during_log: int
    new_items_with_events: int
    sessions: int
    orders: int
    first_timestamp: int
    last_timestamp: int
    seconds: float = 0.0
    peak_memory_mib: float = 0.0

    def lines(self) -> list[tuple[str, str]]:
        deviation = 100.0 * (self.events - self.target_events) / max(1, self.target_events)
        return [
            ("events (target)", f"{self.events:,} ({self.target_events:,}, {deviation:+.2f}%)"),
            *[(f"  {kind}", f"{n:,}") for kind, n in self.by_kind.items()],
            ("carts per view", f"{self.by_kind['add_to_cart'] / max(1, self.by_kind['view']):.3f}"),
            ("purchases per cart", f"{self.by_kind['purchase'] / max(1, self.by_kind['add_to_cart']):.3f}"),
            ("users with events", f"{self.users_with_events:,}"),
            ("items / with events", f"{self.items:,} / {self.items_with_events:,}"),
            ("items launched during the log / with events", f"{self.items_launched_during_log:,} / {self.new_items_with_events:,}"),
            ("sessions", f"{self.sessions:,}"),
            ("orders", f"{self.orders:,}"),
            ("time span (UTC)", f"{_iso(self.first_timestamp)} .. {_iso(self.last_timestamp)}"),
            ("generation time", f"{self.seconds:.1f} s"),
            ("peak memory", f"{self.peak_memory_mib:,.0f} MiB"),
        ]  # fmt: skip


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def summarise(options: SyntheticOptions, catalog: Catalog, log: EventLog) -> Summary:
    """Counts of the log against the target, so that a run shows what it made."""
    counts = np.bincount(log.kinds, minlength=len(EVENT_KINDS))
    has_events = np.zeros(catalog.size, dtype=bool)
    has_events[log.items] = True
    new = catalog.launched_at >= options.start
    return Summary(
        events=len(log.timestamps),
        target_events=options.events,
        by_kind={kind: int(c) for kind, c in zip(EVENT_KINDS, counts, strict=True)},
        users_with_events=len(np.unique(log.users)),
        items=catalog.size,
        items_with_events=int(has_events.sum()),
        items_launched_during_log=int(new.sum()),
        new_items_with_events=int((new & has_events).sum()),
        sessions=len(np.unique(log.sessions)),
        orders=int(log.orders.max(initial=0)),
        first_timestamp=int(log.timestamps[0]) if len(log.timestamps) else options.start,
        last_timestamp=int(log.timestamps[-1]) if len(log.timestamps) else options.start,
    )


def generate(
    options: SyntheticOptions,
    events_path: Path,
    catalog_path: Path,
    progress: Callable[[int], None] | None = None,
) -> Summary:
    """Build the catalog and shoppers, simulate, write both CSVs; deterministic for the options."""
    began = time.perf_counter()
    rng = np.random.default_rng(options.seed)
    catalog = build_catalog(options, rng)
    shoppers = build_shoppers(options, catalog, rng)
    log = simulate_events(options, catalog, shoppers, rng, progress)
    del shoppers
    events_path.parent.mkdir(parents=True, exist_ok=True)
    catalog_path.parent.mkdir(parents=True, exist_ok=True)
    write_events_csv(log, catalog, options.users, events_path)
    write_catalog_csv(catalog, catalog_path)
    summary = summarise(options, catalog, log)
    summary.seconds = time.perf_counter() - began
    summary.peak_memory_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return summary
