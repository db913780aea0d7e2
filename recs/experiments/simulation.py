"""Simulated shoppers for an experiment: demo data for the dashboards and a rehearsal of a test.

Each simulated shopper is served by the real render path (so the experiment assigns them), then
sends impression, click and purchase events through the real event pipeline, with a purchase
probability that depends on the variant they saw: the outcome is known by construction, which
is what a rehearsal of the measurement needs. Timestamps spread over the past hours so that the
dashboard's charts have a history.
"""

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from recs.events.records import EventRecord
from recs.events.services import apply_event_batch
from recs.experiments.attribution import rollup_experiment
from recs.experiments.served import drain_served_log
from recs.experiments.tasks import queue_shadow_scoring
from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext

COUNTRIES = ("United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands")
DEVICES = ("desktop", "mobile", "tablet")


@dataclass
class SimulationResult:
    served: Counter = field(default_factory=Counter)
    converted: Counter = field(default_factory=Counter)
    events: int = 0


def simulate_shoppers(
    experiment,
    shoppers: int,
    *,
    hours: float = 6.0,
    conversion: dict[str, float] | None = None,
    click_rate: float = 0.3,
    seed: int = 7,
) -> SimulationResult:
    """Serve `shoppers` anonymous visitors on the experiment's placement over the last `hours`
    and apply their events; `conversion` maps variant name -> purchase probability (others
    0.05). Returns what was served and bought per variant, then rolls the experiment up."""
    rng = random.Random(seed)
    conversion = conversion or {}
    result = SimulationResult()
    now = time.time()
    records: list[EventRecord] = []
    for n in range(shoppers):
        at = now - hours * 3600 * (1 - n / max(shoppers, 1))
        session = f"sim-{experiment.id}-{seed}-{n}"
        served = recommend(
            RecommendationContext(
                placement=experiment.placement_key,
                session_id=session,
                limit=6,
                now_s=at,
                country=rng.choice(COUNTRIES),
                device=rng.choice(DEVICES),
            )
        )
        result.served[served.variant] += 1
        when = datetime.fromtimestamp(at + 5, tz=UTC)

        def event(kind: str, sku: str, suffix: str, session=session, when=when, served=served):
            return EventRecord(
                event_id=f"{session}-{suffix}", event_type=kind, session_id=session,
                product_sku=sku, occurred_at=when, context={"rec_id": served.rec_id},
                price=None, quantity=None,
            )  # fmt: skip

        records += [event("impression", item.sku, f"imp{i}") for i, item in enumerate(served.items)]
        if served.items and rng.random() < click_rate:
            records.append(event("click", served.items[0].sku, "click"))
        if served.items and rng.random() < conversion.get(served.variant, 0.05):
            item = served.items[0]
            purchase = event("purchase", item.sku, "buy")
            records.append(
                EventRecord(
                    **{
                        **purchase.__dict__,
                        "quantity": 1,
                        "price": item.price,
                        "order_id": f"{session}-order",
                    }
                )
            )
            result.converted[served.variant] += 1
    for start in range(0, len(records), 500):
        apply_event_batch(f"sim-{experiment.id}-{seed}-{start}", records[start : start + 500])
    result.events = len(records)
    drain_served_log(queue_shadow_scoring)
    rollup_experiment(experiment)
    return result
