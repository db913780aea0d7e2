"""How much each kind of candidate list counts in a tier's blend: data, not code.

Training tunes this table on its validation split (recs.evaluation.served) and writes it with
the candidate lists' metadata (`blend` in c:meta); every request reads it with that metadata,
so a retrain changes the blend without a deploy. Missing tiers or sources take the defaults,
which are the hand-set weights the render path had before tuning existed.
"""

import json
from functools import lru_cache

from aisle.conf import aisle_settings

SOURCES = ("user_list", "viewed_neighbours", "content", "trending", "segment")
TIERS = ("anonymous", "content", "collaborative")


def tier_of(interaction_count: int) -> str:
    """The tier router: how many events a shopper has decides how they are served."""
    if interaction_count >= aisle_settings.TIER_COLLABORATIVE_MIN_INTERACTIONS:
        return "collaborative"
    if interaction_count >= aisle_settings.TIER_CONTENT_MIN_INTERACTIONS:
        return "content"
    return "anonymous"


def default_table() -> dict[str, dict[str, float]]:
    zero = dict.fromkeys(SOURCES, 0.0)
    return {
        "anonymous": {**zero, "segment": 1.0},
        "content": {**zero, "content": 1.0, "viewed_neighbours": 0.5, "segment": 0.25},
        "collaborative": {
            **zero,
            "user_list": 1.0,
            "viewed_neighbours": aisle_settings.SESSION_RERANK_WEIGHT,
            "trending": 0.15,
        },
    }


@lru_cache(maxsize=8)
def _parse(raw: str) -> dict[str, dict[str, float]]:
    table = default_table()
    try:
        tuned = json.loads(raw)
    except ValueError:
        return table
    if not isinstance(tuned, dict):
        return table
    for tier, weights in tuned.items():
        if tier in table and isinstance(weights, dict):
            for source, weight in weights.items():
                if source in SOURCES and isinstance(weight, int | float) and weight >= 0:
                    table[tier][source] = float(weight)
    return table


def tier_table(raw: str | bytes | None) -> dict[str, dict[str, float]]:
    """The table stored with the candidate lists (JSON), or the defaults."""
    if isinstance(raw, bytes):
        raw = raw.decode()
    return _parse(raw) if raw else default_table()


def encode(table: dict[str, dict[str, float]]) -> str:
    return json.dumps(
        {
            tier: {s: round(float(w), 4) for s, w in weights.items()}
            for tier, weights in table.items()
        },
        sort_keys=True,
    )
