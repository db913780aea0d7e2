"""Attribution rollups: what shoppers did after an experiment's lists, per variant and hour.

A worker joins the served-list log with the event log. A shopper belongs to the variant and
the UTC hour of their first exposure; what they do afterwards (within ATTRIBUTION_WINDOW_HOURS
of a list) counts there. Impressions count for a variant when they carry one of its rec_ids;
clicks and add-to-carts too, or when they concern a product it showed that shopper; purchases
count as conversion and revenue, and as recommended revenue when the product was shown to them.
Shadow lists are compared with the shown list they were scored beside: overlap, and how many
of the products the shopper then viewed, carted or bought anywhere in the shop each list held
in its top k (k: the shorter list's length, the same cut-off for both). Events reached through
the experiment's shown lists (they carry one of its rec_ids) are left out of those outcomes:
counting them would credit the shown list with what it caused, and a shadow could never win.
Each shopper's activity in the EXPERIMENT_CUPED_LOOKBACK_DAYS before their first exposure is
summed beside their outcomes, for CUPED (recs.experiments.cuped).
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import transaction

from aisle.conf import aisle_settings
from merch.selectors.experiments import ExperimentConfig
from recs.models import Event, ServedList, SessionLink, VariantHourlyStats

# What a shopper did next anywhere in the shop, for the shadow comparison.
OUTCOME_TYPES = ("view", "add_to_cart", "purchase")
# A shopper's activity before the experiment, for CUPED.
ACTIVITY_TYPES = ("view", "click", "add_to_cart", "purchase")


@dataclass
class _Exposure:
    variant: str
    first_at: datetime
    shown: dict[str, datetime] = field(default_factory=dict)  # sku -> first shown
    revenue: float = 0.0
    converted: bool = False
    pre_events: int = 0  # before first_at, within the CUPED lookback
    pre_revenue: float = 0.0


@dataclass
class _Row:
    exposed_subjects: int = 0
    lists_served: int = 0
    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    converting_subjects: int = 0
    revenue: float = 0.0
    revenue_squares: float = 0.0
    recommended_revenue: float = 0.0
    pre_activity: float = 0.0
    pre_activity_squares: float = 0.0
    pre_activity_conversion: float = 0.0
    pre_revenue: float = 0.0
    pre_revenue_squares: float = 0.0
    pre_revenue_revenue: float = 0.0
    shadow_lists: int = 0
    shadow_overlap: float = 0.0
    outcomes: int = 0
    shadow_hits: int = 0
    served_hits: int = 0
    model_versions: dict[str, int] = field(default_factory=dict)


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _subjects_of(event: Event, links: dict[str, str]) -> list[str]:
    """Who an event may belong to: its user, its session, and a session's linked user."""
    subjects = []
    if event.user_id:
        subjects.append(event.user_id)
    if event.session_id:
        subjects.append(f"session:{event.session_id}")
        if event.session_id in links:
            subjects.append(links[event.session_id])
    return subjects


def rollup_experiment(experiment: ExperimentConfig) -> int:
    """Recompute every hourly row of one experiment from the logs; returns the rows written.
    Idempotent: running it again gives the same rows."""
    window = timedelta(hours=aisle_settings.ATTRIBUTION_WINDOW_HOURS)
    served = list(
        ServedList.objects.filter(experiment_id=experiment.id).order_by("served_at", "rec_id")
    )
    shown = [s for s in served if not s.is_shadow]
    exposures: dict[str, _Exposure] = {}
    variant_of_rec: dict[str, str] = {}
    subject_of_rec: dict[str, str] = {}
    rows: dict[tuple[str, datetime], _Row] = defaultdict(_Row)
    for entry in shown:
        exposure = exposures.setdefault(entry.subject_id, _Exposure(entry.variant, entry.served_at))
        variant_of_rec[entry.rec_id] = exposure.variant
        subject_of_rec[entry.rec_id] = entry.subject_id
        for sku in entry.skus:
            exposure.shown.setdefault(sku, entry.served_at)
        row = rows[(exposure.variant, _hour(exposure.first_at))]
        row.lists_served += 1
        if entry.model_version:
            row.model_versions[entry.model_version] = (
                row.model_versions.get(entry.model_version, 0) + 1
            )
    if not exposures:
        return _write(experiment.id, {})

    start = min(e.first_at for e in exposures.values())
    user_ids = [s for s in exposures if not s.startswith("session:")]
    session_ids = [s.removeprefix("session:") for s in exposures if s.startswith("session:")]
    links = dict(SessionLink.objects.filter(session_id__in=session_ids).values_list(
        "session_id", "user_id"))  # fmt: skip
    events = (
        Event.objects.filter(occurred_at__gte=start)
        .filter(event_type__in=("impression", "view", "click", "add_to_cart", "purchase"))
        .order_by("occurred_at")
    )
    events = events.filter(user_id__in=user_ids) | events.filter(session_id__in=session_ids)
    outcomes_after: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for event in events.iterator(chunk_size=5000):
        rec_id = sent_rec_id = (event.context or {}).get("rec_id", "")
        # A rec_id counts only for the shopper it was served to: anyone can copy one.
        own_subjects = _subjects_of(event, links)
        rec_subject = subject_of_rec.get(rec_id)
        if rec_subject not in own_subjects:
            rec_id, rec_subject = "", None
        subject = rec_subject or next((s for s in own_subjects if s in exposures), None)
        if subject is None:
            continue
        exposure = exposures[subject]
        if event.occurred_at < exposure.first_at:
            continue
        row = rows[(exposure.variant, _hour(exposure.first_at))]
        ours = rec_id in variant_of_rec
        if event.event_type == "impression" and ours:
            row.impressions += 1
        elif event.event_type in ("click", "add_to_cart"):
            shown_at = exposure.shown.get(event.product_sku)
            if ours or (shown_at and shown_at <= event.occurred_at <= shown_at + window):
                if event.event_type == "click":
                    row.clicks += 1
                else:
                    row.add_to_carts += 1
        elif event.event_type == "purchase" and event.occurred_at <= exposure.first_at + window:
            amount = float(event.price or 0) * (event.quantity or 1)
            exposure.revenue += amount
            exposure.converted = True
            if ours or event.product_sku in exposure.shown:
                row.recommended_revenue += amount
        reached_through_a_shown_list = sent_rec_id in variant_of_rec
        if (
            event.event_type in OUTCOME_TYPES
            and event.product_sku
            and not reached_through_a_shown_list
        ):
            outcomes_after[subject].append((event.occurred_at, event.product_sku))

    _add_pre_exposure_activity(exposures, links, user_ids, session_ids)
    for exposure in exposures.values():
        row = rows[(exposure.variant, _hour(exposure.first_at))]
        row.exposed_subjects += 1
        row.converting_subjects += int(exposure.converted)
        row.revenue += exposure.revenue
        row.revenue_squares += exposure.revenue**2
        activity = math.log1p(exposure.pre_events)
        row.pre_activity += activity
        row.pre_activity_squares += activity**2
        row.pre_activity_conversion += activity * int(exposure.converted)
        row.pre_revenue += exposure.pre_revenue
        row.pre_revenue_squares += exposure.pre_revenue**2
        row.pre_revenue_revenue += exposure.pre_revenue * exposure.revenue

    shown_by_rec = {entry.rec_id: entry for entry in shown}
    for shadow in (s for s in served if s.is_shadow):
        base = shown_by_rec.get(shadow.shadow_of)
        if base is None:
            continue
        exposure = exposures[base.subject_id]
        row = rows[(shadow.variant, _hour(exposure.first_at))]
        row.shadow_lists += 1
        base_set, shadow_set = set(base.skus), set(shadow.skus)
        row.shadow_overlap += len(base_set & shadow_set) / len(base_set) if base_set else 0.0
        later = {
            sku
            for at, sku in outcomes_after.get(base.subject_id, [])
            if base.served_at <= at <= base.served_at + window
        }
        cutoff = min(len(base.skus), len(shadow.skus))
        row.outcomes += len(later)
        row.shadow_hits += len(later & set(shadow.skus[:cutoff]))
        row.served_hits += len(later & set(base.skus[:cutoff]))
    return _write(experiment.id, rows)


def _add_pre_exposure_activity(
    exposures: dict[str, _Exposure],
    links: dict[str, str],
    user_ids: list[str],
    session_ids: list[str],
) -> None:
    """Count each shopper's events and revenue in the lookback before their first exposure: the
    covariate CUPED needs. A session that logged in brings its user's history with it."""
    lookback = timedelta(days=aisle_settings.EXPERIMENT_CUPED_LOOKBACK_DAYS)
    if not lookback or not exposures:
        return
    sessions_of_user: dict[str, list[str]] = defaultdict(list)
    for session_id, user_id in links.items():
        sessions_of_user[user_id].append(f"session:{session_id}")
    users = {*user_ids, *sessions_of_user}
    first = min(e.first_at for e in exposures.values())
    last = max(e.first_at for e in exposures.values())
    events = Event.objects.filter(
        occurred_at__gte=first - lookback, occurred_at__lt=last, event_type__in=ACTIVITY_TYPES
    ).only("event_type", "occurred_at", "user_id", "session_id", "price", "quantity")
    events = events.filter(user_id__in=users) | events.filter(session_id__in=session_ids)
    for event in events.iterator(chunk_size=5000):
        subjects = {*_subjects_of(event, links), *sessions_of_user.get(event.user_id, ())}
        for subject in subjects:
            exposure = exposures.get(subject)
            if exposure is None or not (
                exposure.first_at - lookback <= event.occurred_at < exposure.first_at
            ):
                continue
            exposure.pre_events += 1
            if event.event_type == "purchase":
                exposure.pre_revenue += float(event.price or 0) * (event.quantity or 1)


@transaction.atomic
def _write(experiment_id: int, rows: dict[tuple[str, datetime], _Row]) -> int:
    VariantHourlyStats.objects.filter(experiment_id=experiment_id).delete()
    VariantHourlyStats.objects.bulk_create(
        [
            VariantHourlyStats(
                experiment_id=experiment_id, variant=variant, hour=hour, **row.__dict__
            )
            for (variant, hour), row in sorted(rows.items())
        ]
    )
    return len(rows)
