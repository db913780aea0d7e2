"""The HTTP views of observability: the staff-only admin dashboards (experiment results, site
health) and the Prometheus /metrics endpoint with its access rules."""

import ipaddress
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.crypto import constant_time_compare
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aisle.conf import aisle_settings
from merch.models import ExperimentGuardrail
from merch.selectors.experiments import experiment_by_id
from recs.experiments.charts import line_chart, percent_format
from recs.experiments.report import experiment_report
from recs.observability.formatting import (
    DASH,
    duration,
    epoch_datetime,
    event_log_rows,
    p_value_text,
    percent,
    rate_interval,
    sample_ratio_box,
    share_rows,
    variant_row,
)
from recs.observability.heartbeat import Heartbeat
from recs.observability.prometheus import registry
from recs.observability.selectors import health_snapshot

# --- Admin dashboards ------------------------------------------------------------------------


def experiment_dashboard_view(request: HttpRequest, pk: int) -> HttpResponse:
    """One experiment's variants side by side, with intervals, tests against the control, the
    shadow comparison and how it developed over time."""
    experiment = experiment_by_id(pk)
    if experiment is None:
        raise Http404("No experiment with this id.")
    report = experiment_report(experiment)
    series = report.series
    charts = [
        line_chart(series.get("exposed", {}), "Shoppers first exposed per hour", "shoppers"),
        line_chart(
            series.get("conversion", {}),
            "Conversion per shopper (cumulative)",
            "conversion",
            y_format=percent_format,
        ),
        line_chart(
            series.get("revenue_per_subject", {}),
            "Revenue per shopper (cumulative)",
            "revenue per shopper",
        ),
        line_chart(series.get("ctr", {}), "CTR (cumulative)", "CTR", y_format=percent_format),
    ]
    context = {
        **admin.site.each_context(request),
        "title": f"Experiment: {experiment.name}",
        "experiment": experiment,
        "starts_at": epoch_datetime(experiment.starts_at),
        "ends_at": epoch_datetime(experiment.ends_at),
        "report": report,
        "sample_ratio": sample_ratio_box(report.sample_ratio, experiment.srm_blocks_promotion),
        "srm_acknowledged_at": epoch_datetime(experiment.srm_acknowledged_at),
        "srm_flagged_at": epoch_datetime(experiment.srm_flagged_at),
        "srm_recorded_p": p_value_text(experiment.srm_p_value),
        "paused_variants": [
            {"name": v.name, "at": epoch_datetime(v.paused_at), "reason": v.paused_reason}
            for v in experiment.variants
            if v.paused_at is not None
        ],
        "guardrails": [
            {
                "metric": ExperimentGuardrail.Metric(g.metric).label,
                "max_drop": f"{g.max_drop_percent:g} %",
            }
            for g in experiment.guardrails
        ],
        "variant_rows": [variant_row(result) for result in report.variants],
        "shadow_rows": [
            {
                "name": shadow.name,
                "strategy": shadow.strategy or DASH,
                "in_config": shadow.in_config,
                "lists_scored": f"{shadow.lists_scored:,}",
                "mean_overlap": percent(shadow.mean_overlap, 1),
                "outcomes": f"{shadow.outcomes:,}",
                "shadow_hit_rate": percent(shadow.shadow_hit_rate.value),
                "shadow_hit_interval": rate_interval(shadow.shadow_hit_rate),
                "served_hit_rate": percent(shadow.served_hit_rate.value),
                "served_hit_interval": rate_interval(shadow.served_hit_rate),
            }
            for shadow in report.shadows
        ],
        # The chart module escapes every label, so its SVG is safe to insert as is.
        "charts": [mark_safe(svg) for svg in charts],
    }
    return render(request, "admin/recs/experiment_dashboard.html", context)


def health_view(request: HttpRequest) -> HttpResponse:
    """Is the site serving well right now: tiers, fallbacks, freshness, lag, models, workers,
    and how big and how old the event log is."""
    snapshot = health_snapshot()
    lag = snapshot.event_lag
    context = {
        **admin.site.each_context(request),
        "title": "Recommendation health",
        "snapshot": snapshot,
        "requests": f"{snapshot.requests:,}",
        "by_tier": share_rows(snapshot.by_tier),
        "fallbacks": share_rows(snapshot.fallbacks),
        "list_ages": share_rows(snapshot.list_ages),
        "event_lag": None
        if lag is None
        else {
            "last": duration(lag.last_lag_s),
            "mean": duration(lag.mean_lag_s),
            "last_applied_at": lag.last_applied_at,
            "applied_total": f"{lag.applied_total:,}",
        },
        "cache_age": duration(snapshot.cache_age_s),
        "heartbeat_age": duration(snapshot.heartbeat.age_s if snapshot.heartbeat else None),
        "worker_down_since": worker_down_since(snapshot.heartbeat, snapshot.now),
        "event_log": event_log_rows(snapshot.event_log, snapshot.now),
        "chart": mark_safe(
            line_chart(snapshot.tier_series, "Requests per hour by tier, last 24 h", "requests")
        ),
    }
    return render(request, "admin/recs/health.html", context)


def worker_down_since(heartbeat: Heartbeat | None, now: datetime) -> str | None:
    """When the last worker ran the heartbeat, once it is overdue ('2026-12-03 05:12:03 UTC')."""
    if heartbeat is None or heartbeat.status != "stale":
        return None
    return f"{now.astimezone(UTC) - timedelta(seconds=heartbeat.age_s):%Y-%m-%d %H:%M:%S} UTC"


# --- Prometheus /metrics ---------------------------------------------------------------------


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
    token = aisle_settings.METRICS_TOKEN
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
    """Prometheus text exposition of the collector's counters and gauges."""
    denied = access_denied(request)
    if denied is not None:
        return denied
    response = HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
