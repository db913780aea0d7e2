"""The last step of the fallback chain: global popularity held in process memory.

Refreshed from Redis by every request that reads it there, and seeded at start from the
snapshot file that training writes, so a web process started while Redis is down still
renders recommendations.
"""

import json
import logging
import os
import time
from pathlib import Path

from aisle.conf import aisle_settings

logger = logging.getLogger(__name__)

_global_popular: list[str] = []  # SKUs, best first
_generated_at = 0.0


def snapshot_path() -> Path:
    return Path(aisle_settings.MODEL_ARTIFACT_DIR) / "fallback_popular.json"


def write_snapshot(ranked: list[tuple[str, float]]) -> None:
    """Written by training next to the model artifacts (atomically: write, then rename)."""
    path = snapshot_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"generated_at": time.time(), "items": ranked}))
    os.replace(temporary, path)


def remember_global_popular(ranked: list[str]) -> None:
    global _global_popular, _generated_at
    if ranked and ranked is not _global_popular:
        _global_popular, _generated_at = ranked, time.time()


def global_popular() -> list[str]:
    global _global_popular, _generated_at
    if not _global_popular:
        try:
            data = json.loads(snapshot_path().read_text())
            _global_popular = [str(sku) for sku, _ in data["items"]]
            _generated_at = float(data["generated_at"])
        except (OSError, ValueError, KeyError):
            logger.warning("No fallback popularity snapshot at %s", snapshot_path())
    return _global_popular


def global_popular_generated_at() -> float:
    return _generated_at


def clear() -> None:
    global _global_popular, _generated_at
    _global_popular, _generated_at = [], 0.0
