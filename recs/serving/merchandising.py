"""Placements, merchandising rules and experiments for the render path.

The configuration lives in merch; readers keep a read-only copy and reload it when
`cfg:merch:version` changes in Redis, which merch's `merchandising_changed` and
`experiments_changed` signals bump on commit, so an edit in the admin (a new rule, a ramp, a
kill) takes effect on the next request without a deploy or a restart.
"""

import logging
import threading

from merch.selectors.experiments import ExperimentConfig, experiments_config
from merch.selectors.merchandising import PlacementConfig, RuleConfig, merchandising_config
from recs import redis_keys
from recs.candidates.store import writer_client

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_placements: dict[str, PlacementConfig] = {}
_rules: list[RuleConfig] = []
_experiments: list[ExperimentConfig] = []
_version: str | None = None
_loaded = False


def bump_config_version(**_signal_kwargs) -> None:
    """Receiver of merch's merchandising_changed: readers reload on their next request."""
    try:
        writer_client().incr(redis_keys.MERCH_CONFIG_VERSION)
    except Exception:
        logger.exception("Could not announce a merchandising change to readers")


def current(
    version: str | None,
) -> tuple[dict[str, PlacementConfig], list[RuleConfig], list[ExperimentConfig]]:
    """Placements, active rules and running or paused experiments, reloaded when the version
    read from Redis changed (None: Redis is down, keep what we have)."""
    global _placements, _rules, _experiments, _version, _loaded
    if _loaded and (version is None or version == _version):
        return _placements, _rules, _experiments
    with _lock:
        try:
            placements, rules = merchandising_config()
            experiments = experiments_config()
        except Exception:
            logger.exception("Could not load merchandising configuration; using the cached copy")
            return _placements, _rules, _experiments
        _placements, _rules, _experiments = placements, rules, experiments
        _version, _loaded = version, True
    return _placements, _rules, _experiments


def clear() -> None:
    global _placements, _rules, _experiments, _version, _loaded
    _placements, _rules, _experiments, _version, _loaded = {}, [], [], None, False


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
