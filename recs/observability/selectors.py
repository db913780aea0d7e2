"""Selectors of the read side: serving and event counters from Redis, serving model versions
and the event log's size and age from the database, and the health panel's snapshot built from
them."""

# Nothing here counts anything: the render path (recs.serving.counters), the event workers and
# the rollup worker already keep counters in Redis and the database; these functions only read
# them, at request time, so any number of processes agree. A Redis outage reads as None (or
# redis_up False) instead of an error.

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from django.db import connections, router

from aisle.conf import aisle_settings
from recs import redis_keys
from recs.candidates.store import writer_client
from recs.events.retention import ArchiveRunSummary, last_archive_run, retention_cutoff
from recs.models import Event, ModelVersion
from recs.observability.heartbeat import Heartbeat, heartbeat_status
from recs.redis_clients import CONNECTION_ERRORS

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


# --- Counters in Redis -----------------------------------------------------------------------


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
            pipe.hgetall(redis_keys.serving_hourly(time.strftime("%Y%m%d%H", time.gmtime(start))))
        pipe.hgetall(redis_keys.SERVING_TOTALS)
        pipe.hgetall(redis_keys.EVENTS_METRICS)
        pipe.hgetall(redis_keys.CANDIDATES_META)
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


# --- Serving model versions, from the database -----------------------------------------------


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


# --- The event log: size, age, retention -----------------------------------------------------

# The daily archive run leaves up to a day beyond the window; older events mean runs are missed.
ARCHIVE_OVERDUE_SLACK = timedelta(days=2)


@dataclass(frozen=True)
class TableSize:
    rows: int
    estimated: bool  # from PostgreSQL's statistics (pg_class.reltuples), not a count
    size_bytes: int | None
    size_of: str  # what size_bytes measures


def event_table_size() -> TableSize:
    """Rows and bytes of the event log. PostgreSQL answers from its statistics at once, where a
    COUNT(*) would scan millions of rows on every page view; SQLite has no statistics to ask, so
    it counts, and the size is its database file's (with its write-ahead log)."""
    connection = connections[router.db_for_read(Event)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint, pg_total_relation_size(oid) FROM pg_class "
                "WHERE oid = %s::regclass",
                [connection.ops.quote_name(Event._meta.db_table)],
            )
            rows, size_bytes = cursor.fetchone()
        of = "table with indexes and TOAST"
        if rows >= 0:  # -1: never vacuumed or analysed yet
            return TableSize(rows, True, size_bytes, of)
        return TableSize(Event.objects.count(), False, size_bytes, of)
    size_bytes = None
    if connection.vendor == "sqlite":
        path = Path(str(connection.settings_dict["NAME"]))
        if path.is_file():  # else in memory
            wal = path.with_name(path.name + "-wal")
            size_bytes = sum(f.stat().st_size for f in (path, wal) if f.is_file())
    return TableSize(Event.objects.count(), False, size_bytes, "whole database file")


def oldest_event_at() -> datetime | None:
    """When the oldest event in the log happened (occurred_at is indexed: one index probe)."""
    return Event.objects.order_by("occurred_at").values_list("occurred_at", flat=True).first()


@dataclass(frozen=True)
class EventLogStatus:
    size: TableSize
    oldest_event_at: datetime | None
    retention_days: float  # 0: events are kept forever
    archive_dir: str
    last_archive: ArchiveRunSummary | None  # None: no run recorded, or Redis unreadable
    archive_overdue: bool  # the log holds events well past the window


def event_log_status(now: datetime) -> EventLogStatus:
    """The event log's size and oldest event against the retention window, and the last run of
    the archive."""
    oldest = oldest_event_at()
    cutoff = retention_cutoff(now)
    try:
        last_archive = last_archive_run()
    except (redis.RedisError, *CONNECTION_ERRORS):
        logger.warning("Redis unavailable for the last archive run", exc_info=True)
        last_archive = None
    return EventLogStatus(
        size=event_table_size(),
        oldest_event_at=oldest,
        retention_days=float(aisle_settings.EVENT_RETENTION_DAYS),
        archive_dir=str(aisle_settings.EVENT_ARCHIVE_DIR),
        last_archive=last_archive,
        archive_overdue=bool(cutoff and oldest and oldest < cutoff - ARCHIVE_OVERDUE_SLACK),
    )


# --- The health panel ------------------------------------------------------------------------


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
    event_log: EventLogStatus | None = None


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
    serving model versions, the background heartbeat and the event log's size and retention."""
    now_s = time.time() if now_s is None else now_s
    now = datetime.fromtimestamp(now_s, tz=UTC)
    common = {
        "now": now,
        "model_versions": serving_model_versions(),
        "heartbeat": heartbeat_status(),
        "event_log": event_log_status(now),
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
