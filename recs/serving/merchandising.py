"""Placements and merchandising rules for the render path, and applying the rules to a list.

The configuration lives in merch; readers keep a read-only copy and reload it when
`cfg:merch:version` changes in Redis, which merch's `merchandising_changed` signal bumps on
commit, so an edit in the admin takes effect on the next request without a deploy.
"""

import logging
import threading

from merch.selectors import PlacementConfig, RuleConfig, merchandising_config
from recs.candidates.store import writer_client

logger = logging.getLogger(__name__)

CONFIG_VERSION_KEY = "cfg:merch:version"

_lock = threading.Lock()
_placements: dict[str, PlacementConfig] = {}
_rules: list[RuleConfig] = []
_version: str | None = None
_loaded = False


def bump_config_version(**_signal_kwargs) -> None:
    """Receiver of merch's merchandising_changed: readers reload on their next request."""
    try:
        writer_client().incr(CONFIG_VERSION_KEY)
    except Exception:
        logger.exception("Could not announce a merchandising change to readers")


def current(version: str | None) -> tuple[dict[str, PlacementConfig], list[RuleConfig]]:
    """Placements and active rules, reloaded when the version read from Redis changed (None:
    Redis is down, keep what we have)."""
    global _placements, _rules, _version, _loaded
    if _loaded and (version is None or version == _version):
        return _placements, _rules
    with _lock:
        try:
            _placements, _rules = merchandising_config()
        except Exception:
            logger.exception("Could not load merchandising configuration; using the cached copy")
            return _placements, _rules
        _version, _loaded = version, True
    return _placements, _rules


def clear() -> None:
    global _placements, _rules, _version, _loaded
    _placements, _rules, _version, _loaded = {}, [], None, False


def rules_in_force(
    rules: list[RuleConfig], placement: str, page_category: str, now_s: float
) -> list[RuleConfig]:
    """The rules of this placement that are live now and whose category covers the page."""
    return [
        rule
        for rule in rules
        if rule.placement_key == placement
        and rule.is_live(now_s)
        and rule.applies_to_category(page_category)
    ]
