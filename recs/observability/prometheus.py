"""The Prometheus collector: serving, event, cache, model and experiment metrics read at scrape
time from the selectors, and the registry that /metrics exposes."""

# Read at scrape time, so every web process answers the same. A Redis outage shows as
# aisle_redis_up 0 instead of an error; a database outage drops only the database's metrics.

import logging
import time
from collections.abc import Iterator

from django.db import DatabaseError
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from recs.experiments.report import variant_totals
from recs.observability.selectors import RedisMetrics, read_redis_metrics, serving_model_versions

logger = logging.getLogger(__name__)


def _families() -> dict[str, Metric]:
    return {
        "served": CounterMetricFamily(
            "aisle_recommendations_served", "Recommendation lists served, by tier.",
            labels=["tier"],
        ),
        "source": CounterMetricFamily(
            "aisle_recommendations_by_source", "Recommendation lists served, by candidate source.",
            labels=["source"],
        ),
        "fallback": CounterMetricFamily(
            "aisle_recommendation_fallbacks", "Fallbacks taken while serving, by reason.",
            labels=["reason"],
        ),
        "empty": CounterMetricFamily(
            "aisle_recommendations_empty", "Requests answered with an empty list."
        ),
        "age": CounterMetricFamily(
            "aisle_recommendations_list_age",
            "Served answers by the age of the candidate lists behind them.",
            labels=["bucket"],
        ),
        "applied": CounterMetricFamily(
            "aisle_events_applied", "Events applied by the event workers."
        ),
        "lag": GaugeMetricFamily(
            "aisle_event_lag_seconds", "Queue-to-applied delay of the last batch applied."
        ),
        "lag_mean": GaugeMetricFamily(
            "aisle_event_lag_seconds_mean", "Mean queue-to-applied delay per event since start."
        ),
        "cache_age": GaugeMetricFamily(
            "aisle_candidate_cache_age_seconds", "Seconds since the candidate lists were generated."
        ),
        "model": GaugeMetricFamily(
            "aisle_model_version_info", "Model versions serving now (value 1).",
            labels=["key", "version"],
        ),
        "exposed": GaugeMetricFamily(
            "aisle_experiment_exposed_subjects", "Shoppers exposed to an experiment variant.",
            labels=["experiment", "variant"],
        ),
        "converting": GaugeMetricFamily(
            "aisle_experiment_converting_subjects",
            "Exposed shoppers who bought afterwards.",
            labels=["experiment", "variant"],
        ),
        "revenue": GaugeMetricFamily(
            "aisle_experiment_revenue", "Revenue of exposed shoppers after exposure.",
            labels=["experiment", "variant"],
        ),
        "redis_up": GaugeMetricFamily(
            "aisle_redis_up", "1 if Redis answered this scrape, else 0."
        ),
    }  # fmt: skip


class AisleCollector(Collector):
    """Reads Redis and the database at scrape time (see the module comment)."""

    def describe(self) -> Iterator[Metric]:
        return iter(_families().values())

    def collect(self) -> Iterator[Metric]:
        families = _families()
        now_s = time.time()
        metrics = read_redis_metrics(hours=0, now_s=now_s)
        families["redis_up"].add_metric([], 0 if metrics is None else 1)
        if metrics is not None:
            self._add_redis(families, metrics, now_s)
        try:
            self._add_database(families)
        except DatabaseError:
            logger.exception("Database unavailable for /metrics")
        yield from families.values()

    @staticmethod
    def _add_redis(families: dict[str, Metric], metrics: RedisMetrics, now_s: float) -> None:
        by_prefix = {"tier:": "served", "source:": "source", "fallback:": "fallback", "age:": "age"}
        for name, value in sorted(metrics.total.items()):
            prefix, _, label = name.partition(":")
            family = by_prefix.get(prefix + ":") if label else None
            if family:
                families[family].add_metric([label], value)
        families["empty"].add_metric([], metrics.total.get("empty", 0))
        lag = metrics.event_lag
        families["applied"].add_metric([], lag.applied_total)
        if lag.last_lag_s is not None:
            families["lag"].add_metric([], lag.last_lag_s)
        if lag.mean_lag_s is not None:
            families["lag_mean"].add_metric([], lag.mean_lag_s)
        if metrics.cache_generated_at is not None:
            families["cache_age"].add_metric([], max(now_s - metrics.cache_generated_at, 0.0))

    @staticmethod
    def _add_database(families: dict[str, Metric]) -> None:
        for version in serving_model_versions():
            families["model"].add_metric([version.key, version.label], 1)
        for (experiment_id, variant), totals in variant_totals().items():
            labels = [str(experiment_id), variant]
            families["exposed"].add_metric(labels, totals.exposed_subjects)
            families["converting"].add_metric(labels, totals.converting_subjects)
            families["revenue"].add_metric(labels, totals.revenue)


registry = CollectorRegistry(auto_describe=False)
registry.register(AisleCollector())
