"""How the admin dashboards show numbers: percentages, intervals, durations and the table rows
built from the selectors' and the experiment report's output."""

from datetime import UTC, datetime

from recs.experiments.report import Comparison, Mean, Rate, SampleRatio, VariantResult
from recs.observability.selectors import EventLogStatus, Share

DASH = "\u2013"  # an en dash: "no value"


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


def byte_size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return DASH
    if size_bytes < 1024:
        return f"{size_bytes} bytes"
    value = size_bytes / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} TiB"


def event_log_rows(status: EventLogStatus, now: datetime) -> dict:
    """The health panel's event log box: size, oldest event, retention, the last archive run."""
    size, oldest, last = status.size, status.oldest_event_at, status.last_archive
    return {
        "rows": f"{'about ' if size.estimated else ''}{size.rows:,}",
        "size": f"{byte_size(size.size_bytes)} ({size.size_of})",
        "oldest_at": oldest,
        "oldest_age": duration((now - oldest).total_seconds()) if oldest else DASH,
        "retention": f"{status.retention_days:g} days" if status.retention_days else "forever",
        "archive_dir": status.archive_dir,
        "overdue": status.archive_overdue,
        "last_archive": None
        if last is None
        else {
            "finished_at": last.finished_at,
            "summary": f"{last.archived:,} events of {last.days} day{'' if last.days == 1 else 's'}"
            f" archived, {last.deleted:,} deleted, in {duration(last.seconds)}",
        },
    }


def share_rows(shares: list[Share]) -> list[dict]:
    return [
        {"label": share.label, "count": f"{share.count:,}", "share": percent(share.share, 1)}
        for share in shares
    ]


def comparison_row(metric: str, comparison: Comparison | None, *, as_percent: bool) -> dict:
    if comparison is None:
        return {"metric": metric, "verdict": "not enough data yet", "tone": "neutral"}

    def shown(value: float | None) -> str:
        if value is None:
            return DASH
        return f"{value * 100:+.2f} points" if as_percent else f"{value:+,.2f}"

    interval = (
        DASH
        if comparison.low is None or comparison.high is None
        else f"{shown(comparison.low)} to {shown(comparison.high)}"
    )
    tone = "neutral"
    if comparison.verdict.startswith("better"):
        tone = "better"
    elif comparison.verdict.startswith("worse"):
        tone = "worse"
    return {
        "metric": metric,
        "difference": shown(comparison.difference),
        "lift": DASH if comparison.relative_lift is None else f"{comparison.relative_lift:+.1%}",
        "interval": interval,
        "always_valid_p": p_value_text(comparison.always_valid_p),
        "p_value": p_value_text(comparison.p_value),
        "variance_reduction": percent(comparison.variance_reduction, 0),
        "verdict": comparison.verdict,
        "tone": tone,
    }


def p_value_text(p_value: float | None) -> str:
    if p_value is None:
        return DASH
    return "< 0.001" if p_value < 0.001 else f"{p_value:.3f}"


def sample_ratio_box(check: SampleRatio | None, blocks_promotion: bool) -> dict | None:
    """The dashboard's sample ratio panel: observed against expected shares, overall and on the
    worst day, and whether it holds promotion back."""
    if check is None:
        return None
    overall = check.result.overall
    worst = check.result.worst_day
    return {
        "flagged": check.flagged,
        "blocks_promotion": blocks_promotion,
        "p_value": p_value_text(overall.p_value),
        "reason": overall.reason,
        "since": check.since,
        "shoppers": f"{overall.total:,}",
        "cells": [
            {
                "variant": cell.variant,
                "observed": f"{cell.observed:,}",
                "observed_share": percent(cell.observed_share, 1),
                "expected_share": percent(cell.expected_share, 1),
            }
            for cell in overall.cells
        ],
        "worst_day": None
        if worst is None
        else {"day": worst.day, "p_value": p_value_text(worst.test.p_value)},
        "days_tested": sum(1 for d in check.result.days if d.test.p_value is not None),
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
