"""Health panel and Prometheus /metrics: read at request time, so any number of processes agree."""

# Nothing here counts anything: the render path, the event workers and the rollup worker already
# keep counters in Redis and the database. A Redis outage shows as "unavailable" (and
# aisle_redis_up 0) instead of an error page.

import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from recs import health
from recs.candidates.store import META_KEY, writer_client
from recs.events.services import EVENTS_METRICS_KEY
from recs.experiments.report import variant_totals
from recs.models import ModelVersion
from recs.redis_clients import CONNECTION_ERRORS
from recs.serving.counters import HOURLY_KEY, TOTAL_KEY

logger = logging.getLogger(__name__)

HOUR_S = 3600
# Age of the candidate lists behind served answers (recs.serving.counters.age_bucket), in order.
AGE_BUCKET_LABELS = {
    "lt_1m": "under a minute",
    "lt_1h": "under an hour",
    "lt_1d": "under a day",
    "ge_1d": "a day or more",
    "unknown": "unknown (no generation time)",
}
HEARTBEAT_STALE_INTERVALS = 3  # missed beats before the heartbeat counts as stale


# --- Reads -----------------------------------------------------------------------------------


def _counts(raw: dict) -> dict[str, int]:
    return {key.decode(): int(value) for key, value in raw.items()}


def _text(raw: dict) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in raw.items()}


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def hour_starts(hours: int, now_s: float) -> list[float]:
    """Epoch starts of the last `hours` UTC hours, the current one included, oldest first."""
    current = int(now_s // HOUR_S) * HOUR_S
    return [current - HOUR_S * back for back in range(hours - 1, -1, -1)]


@dataclass(frozen=True)
class EventLag:
    last_lag_s: float | None
    mean_lag_s: float | None  # lag_seconds_total / applied_total: per event, since the start
    last_applied_at: datetime | None
    applied_total: int
    lag_seconds_total: float


@dataclass(frozen=True)
class RedisMetrics:
    """Everything the panels read from Redis, fetched in one pipelined round trip."""

    hours: list[datetime]  # UTC hour starts, oldest first
    hourly: list[dict[str, int]]  # serving counters of each of those hours
    total: dict[str, int]  # serving counters since the store began
    event_lag: EventLag
    cache_meta: dict[str, str]

    def window(self) -> Counter[str]:
        """Serving counters summed over the hours read."""
        summed: Counter[str] = Counter()
        for counts in self.hourly:
            summed.update(counts)
        return summed

    @property
    def cache_generated_at(self) -> float | None:
        return _float(self.cache_meta.get("generated_at"))


def event_lag_from(raw: dict[str, str]) -> EventLag:
    applied_total = int(_float(raw.get("applied_total")) or 0)
    lag_seconds_total = _float(raw.get("lag_seconds_total")) or 0.0
    last_applied_at = _float(raw.get("last_applied_at"))
    return EventLag(
        last_lag_s=_float(raw.get("last_lag_s")),
        mean_lag_s=lag_seconds_total / applied_total if applied_total else None,
        last_applied_at=(
            datetime.fromtimestamp(last_applied_at, tz=UTC) if last_applied_at else None
        ),
        applied_total=applied_total,
        lag_seconds_total=lag_seconds_total,
    )


def read_redis_metrics(hours: int = 24, now_s: float | None = None) -> RedisMetrics | None:
    """The serving counters of the last `hours` hours and since the start, the event lag and the
    candidate cache's meta; None when Redis does not answer."""
    starts = hour_starts(hours, time.time() if now_s is None else now_s) if hours else []
    try:
        pipe = writer_client().pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(HOURLY_KEY.format(hour=time.strftime("%Y%m%d%H", time.gmtime(start))))
        pipe.hgetall(TOTAL_KEY)
        pipe.hgetall(EVENTS_METRICS_KEY)
        pipe.hgetall(META_KEY)
        replies = pipe.execute()
    except (redis.RedisError, *CONNECTION_ERRORS):
        logger.warning("Redis unavailable for the metrics read", exc_info=True)
        return None
    *hourly, total, events, meta = replies
    return RedisMetrics(
        hours=[datetime.fromtimestamp(start, tz=UTC) for start in starts],
        hourly=[_counts(raw) for raw in hourly],
        total=_counts(total),
        event_lag=event_lag_from(_text(events)),
        cache_meta=_text(meta),
    )


@dataclass(frozen=True)
class ServingVersion:
    key: str
    pk: int
    recall_at_20: float | None
    promoted_at: datetime | None

    @property
    def label(self) -> str:
        """How the API's model_version and the cache meta name it: key#pk."""
        return f"{self.key}#{self.pk}"


def serving_model_versions() -> list[ServingVersion]:
    """The model versions serving now, one per learner key."""
    rows = ModelVersion.objects.filter(status=ModelVersion.Status.SERVING).order_by("key")
    return [
        ServingVersion(
            key=row.key,
            pk=row.pk,
            recall_at_20=_float(row.metrics.get("recall@20")),
            promoted_at=row.promoted_at,
        )
        for row in rows.only("key", "metrics", "promoted_at")
    ]


@dataclass(frozen=True)
class Heartbeat:
    status: str  # ok | stale | never | unavailable
    age_s: float | None
    interval_s: float


def heartbeat() -> Heartbeat:
    """Beat schedules the heartbeat task and a worker runs it: one fresh timestamp proves
    beat, the broker and a worker all run."""
    schedule = settings.CELERY_BEAT_SCHEDULE.get("record-beat-heartbeat", {})
    interval_s = float(schedule.get("schedule", 30.0))
    try:
        age_s = health.seconds_since_heartbeat()
    except Exception:  # the cache backend raises its own errors when Redis is down
        logger.warning("Heartbeat unreadable", exc_info=True)
        return Heartbeat("unavailable", None, interval_s)
    if age_s is None:
        return Heartbeat("never", None, interval_s)
    return Heartbeat(
        "ok" if age_s <= HEARTBEAT_STALE_INTERVALS * interval_s else "stale", age_s, interval_s
    )


@dataclass(frozen=True)
class Share:
    name: str
    label: str
    count: int
    share: float | None  # of the requests in the window


@dataclass(frozen=True)
class HealthSnapshot:
    now: datetime
    redis_up: bool
    hours: list[datetime] = field(default_factory=list)
    requests: int = 0
    empty: int = 0
    by_tier: list[Share] = field(default_factory=list)
    by_source: list[Share] = field(default_factory=list)
    fallbacks: list[Share] = field(default_factory=list)
    list_ages: list[Share] = field(default_factory=list)
    tier_series: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)
    event_lag: EventLag | None = None
    cache_meta: dict[str, str] = field(default_factory=dict)
    cache_age_s: float | None = None
    model_versions: list[ServingVersion] = field(default_factory=list)
    heartbeat: Heartbeat | None = None


def _shares(
    counts: Counter[str], prefix: str, requests: int, labels: dict[str, str] | None = None
) -> list[Share]:
    names = [key.removeprefix(prefix) for key in counts if key.startswith(prefix)]
    if labels:  # a fixed order, then anything new
        names = [n for n in labels if n in names] + sorted(n for n in names if n not in labels)
    else:
        names.sort(key=lambda n: -counts[prefix + n])
    return [
        Share(
            name=name,
            label=(labels or {}).get(name, name),
            count=counts[prefix + name],
            share=counts[prefix + name] / requests if requests else None,
        )
        for name in names
    ]


def health_snapshot(hours: int = 24, now_s: float | None = None) -> HealthSnapshot:
    """What the health panel shows: the last `hours` of serving, event lag, cache freshness,
    serving model versions and the background heartbeat."""
    now_s = time.time() if now_s is None else now_s
    common = {
        "now": datetime.fromtimestamp(now_s, tz=UTC),
        "model_versions": serving_model_versions(),
        "heartbeat": heartbeat(),
    }
    metrics = read_redis_metrics(hours, now_s)
    if metrics is None:
        return HealthSnapshot(redis_up=False, **common)
    window = metrics.window()
    requests = window.get("requests", 0)
    tiers = sorted(
        {key[5:] for counts in metrics.hourly for key in counts if key.startswith("tier:")}
    )
    generated_at = metrics.cache_generated_at
    return HealthSnapshot(
        redis_up=True,
        hours=metrics.hours,
        requests=requests,
        empty=window.get("empty", 0),
        by_tier=_shares(window, "tier:", requests),
        by_source=_shares(window, "source:", requests),
        fallbacks=_shares(window, "fallback:", requests),
        list_ages=_shares(window, "age:", requests, AGE_BUCKET_LABELS),
        tier_series={
            tier: [
                (hour, float(counts.get(f"tier:{tier}", 0)))
                for hour, counts in zip(metrics.hours, metrics.hourly, strict=True)
            ]
            for tier in tiers
        },
        event_lag=metrics.event_lag,
        cache_meta={k: v for k, v in metrics.cache_meta.items() if k != "generated_at"},
        cache_age_s=max(now_s - generated_at, 0.0) if generated_at else None,
        **common,
    )


# --- Prometheus ------------------------------------------------------------------------------


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
    """Reads Redis and the database at scrape time (see the module docstring)."""

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


# --- The endpoint ----------------------------------------------------------------------------


# Loopback and the private ranges (RFC 1918, IPv6 unique local): a scraper on the same host or
# network. Listed explicitly, since ipaddress's is_private also admits documentation ranges.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128",
                    "fc00::/7")
)  # fmt: skip


def _is_private_address(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in PRIVATE_NETWORKS)


def access_denied(request: HttpRequest) -> HttpResponse | None:
    """A staff login, or the bearer token METRICS_TOKEN. Only with DEBUG on and no token set
    may loopback and private addresses read without one: behind a same-host reverse proxy
    every request comes from loopback, so an address proves nothing in production."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return None
    token = settings.METRICS_TOKEN
    if token:
        if constant_time_compare(request.headers.get("Authorization", ""), f"Bearer {token}"):
            return None
        response = HttpResponse("A valid bearer token is required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if settings.DEBUG and _is_private_address(request.META.get("REMOTE_ADDR")):
        return None
    return HttpResponse(
        "Set METRICS_TOKEN and scrape with `Authorization: Bearer <token>`.\n", status=403
    )


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of the counters and gauges above."""
    denied = access_denied(request)
    if denied is not None:
        return denied
    response = HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
