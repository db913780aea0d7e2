"""Admin dashboards (experiment results, site health): thin views that format selectors' output."""

from datetime import UTC, datetime

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from merch import selectors as merch_selectors
from recs.experiments.charts import line_chart, percent_format
from recs.experiments.report import Comparison, Mean, Rate, VariantResult, experiment_report
from recs.metrics import Share, health_snapshot

DASH = "\u2013"  # an en dash: "no value"


# --- Formatting ------------------------------------------------------------------------------


def percent(value: float | None, digits: int = 2) -> str:
    return DASH if value is None else f"{value * 100:.{digits}f} %"


def rate_interval(rate: Rate) -> str:
    if rate.low is None or rate.high is None:
        return ""
    return f"{rate.low * 100:.2f} to {rate.high * 100:.2f} %"


def number(value: float | None, digits: int = 2) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def mean_interval(mean: Mean) -> str:
    if mean.low is None or mean.high is None:
        return ""
    return f"{mean.low:,.2f} to {mean.high:,.2f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def epoch_datetime(epoch_s: float | None) -> datetime | None:
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, tz=UTC)


def share_rows(shares: list[Share]) -> list[dict]:
    return [
        {"label": share.label, "count": f"{share.count:,}", "share": percent(share.share, 1)}
        for share in shares
    ]


def comparison_row(metric: str, comparison: Comparison | None, *, as_percent: bool) -> dict:
    if comparison is None:
        return {"metric": metric, "verdict": "not enough data yet", "tone": "neutral"}
    difference = comparison.difference
    if difference is None:
        shown_difference = DASH
    elif as_percent:
        shown_difference = f"{difference * 100:+.2f} points"
    else:
        shown_difference = f"{difference:+,.2f}"
    tone = "neutral"
    if comparison.verdict.startswith("better"):
        tone = "better"
    elif comparison.verdict.startswith("worse"):
        tone = "worse"
    return {
        "metric": metric,
        "difference": shown_difference,
        "lift": DASH if comparison.relative_lift is None else f"{comparison.relative_lift:+.1%}",
        "p_value": DASH if comparison.p_value is None else f"{comparison.p_value:.3g}",
        "verdict": comparison.verdict,
        "tone": tone,
    }


def variant_row(result: VariantResult) -> dict:
    return {
        "name": result.name,
        "strategy": result.strategy or DASH,
        "traffic": f"{result.traffic_percent:g} %",
        "is_control": result.is_control,
        "in_config": result.in_config,
        "exposed": f"{result.exposed_subjects:,}",
        "lists_served": f"{result.lists_served:,}",
        "impressions": f"{result.impressions:,}",
        "ctr": percent(result.ctr.value),
        "ctr_interval": rate_interval(result.ctr),
        "add_to_cart": percent(result.add_to_cart_rate.value),
        "add_to_cart_interval": rate_interval(result.add_to_cart_rate),
        "conversion": percent(result.conversion.value),
        "conversion_interval": rate_interval(result.conversion),
        "revenue_per_subject": number(result.revenue_per_subject.value),
        "revenue_interval": mean_interval(result.revenue_per_subject),
        "recommended_revenue": number(result.recommended_revenue),
        "comparisons": []
        if result.is_control
        else [
            comparison_row("CTR", result.ctr_vs_control, as_percent=True),
            comparison_row("Conversion per shopper", result.conversion_vs_control, as_percent=True),
            comparison_row("Revenue per shopper", result.revenue_vs_control, as_percent=False),
        ],
    }


# --- Views -----------------------------------------------------------------------------------


def experiment_dashboard_view(request: HttpRequest, pk: int) -> HttpResponse:
    """One experiment's variants side by side, with intervals, tests against the control, the
    shadow comparison and how it developed over time."""
    experiment = merch_selectors.experiment_by_id(pk)
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
    """Is the site serving well right now: tiers, fallbacks, freshness, lag, models, workers."""
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
        "chart": mark_safe(
            line_chart(snapshot.tier_series, "Requests per hour by tier, last 24 h", "requests")
        ),
    }
    return render(request, "admin/recs/health.html", context)
