"""Training/serving skew check: recompute features offline "as of now" and compare with Redis."""

import math
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recs.features.definitions import FEATURES
from recs.features.offline import get_historical
from recs.features.online import get_online_many
from recs.models import Event

REL_TOLERANCE = 1e-6
ABS_TOLERANCE = 1e-9


@dataclass
class Mismatch:
    entity: str
    entity_id: str
    feature: str
    online: Any
    offline: Any


@dataclass
class SkewReport:
    entities_checked: dict[str, int] = field(default_factory=dict)
    values_compared: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)


def values_agree(online: Any, offline: Any) -> bool:
    if isinstance(online, dict) and isinstance(offline, dict):
        return online.keys() == offline.keys() and all(
            values_agree(online[k], offline[k]) for k in online
        )
    if isinstance(online, list) and isinstance(offline, list):
        return online == offline
    if isinstance(online, int | float) and isinstance(offline, int | float):
        return math.isclose(online, offline, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)
    return online == offline


def sample_entities(sample_size: int, seed: int = 0) -> dict[str, list[str]]:
    """A random sample of entity ids that have events, per entity kind."""
    rng = random.Random(seed)

    def pick(column: str) -> list[str]:
        ids = sorted(set(Event.objects.exclude(**{column: ""}).values_list(column, flat=True)))
        return rng.sample(ids, min(sample_size, len(ids)))

    countries = pick("country")
    devices = pick("device")
    return {
        "user": pick("user_id"),
        "session": pick("session_id"),
        "product": pick("product_sku"),
        "segment": ["all"] + [f"country:{c}" for c in countries] + [f"device:{d}" for d in devices],
    }


def check_skew(entities: dict[str, list[str]], now_s: float | None = None) -> SkewReport:
    """Compare every feature of the given entities online vs offline as of one instant."""
    now_s = time.time() if now_s is None else now_s
    as_of = datetime.fromtimestamp(now_s, tz=UTC)
    report = SkewReport()
    for entity, entity_ids in entities.items():
        if not entity_ids:
            continue
        report.entities_checked[entity] = len(entity_ids)
        names = [name for (e, name) in FEATURES if e == entity]
        online = get_online_many(entity, entity_ids, names, now_s=now_s)
        offline = get_historical([(entity, i, as_of) for i in entity_ids], names)
        for entity_id, offline_values in zip(entity_ids, offline, strict=True):
            for name in names:
                report.values_compared += 1
                if not values_agree(online[entity_id][name], offline_values[name]):
                    report.mismatches.append(
                        Mismatch(
                            entity, entity_id, name, online[entity_id][name], offline_values[name]
                        )
                    )
    return report
