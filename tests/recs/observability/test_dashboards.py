"""recs.observability.views, formatting: the experiment results page, the health panel and the
admin home's links."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from merch.models import Placement
from merch.services.experiments import VariantSpec, create_experiment
from recs import redis_keys
from recs.candidates import store
from recs.events.retention import archive_expired_events
from recs.models import ModelVersion, VariantHourlyStats
from recs.observability import heartbeat
from recs.observability.formatting import byte_size
from recs.observability.selectors import event_table_size
from tests.factories import EventFactory
from tests.private_redis import _free_port

HOUR = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def experiment(default_placements):
    return create_experiment(
        "Home <EASE> test",
        Placement.objects.get(key="home"),
        [
            VariantSpec("control", "auto", 0, is_control=True),
            VariantSpec("ease", "ease", 50),
            VariantSpec("knn-shadow", "item_knn", 0, is_shadow=True),
        ],
    )


@pytest.fixture
def rollups(experiment):
    for offset in range(3):
        hour = HOUR + timedelta(hours=offset)
        VariantHourlyStats.objects.create(
            experiment_id=experiment.pk, variant="control", hour=hour, exposed_subjects=400,
            lists_served=600, impressions=500, clicks=40, add_to_carts=8, converting_subjects=30,
            revenue=900.0, revenue_squares=50000.0, recommended_revenue=120.0,
        )  # fmt: skip
        VariantHourlyStats.objects.create(
            experiment_id=experiment.pk, variant="ease", hour=hour, exposed_subjects=400,
            lists_served=610, impressions=500, clicks=70, add_to_carts=15, converting_subjects=45,
            revenue=1400.0, revenue_squares=80000.0, recommended_revenue=380.0,
        )  # fmt: skip
        VariantHourlyStats.objects.create(
            experiment_id=experiment.pk, variant="knn-shadow", hour=hour, shadow_lists=300,
            shadow_overlap=120.0, outcomes=40, shadow_hits=12, served_hits=9,
        )  # fmt: skip


@pytest.fixture
def redis_down(settings):
    """Point the dashboards' Redis client at a port nobody listens on."""
    settings.AISLE = {
        **settings.AISLE,
        "REDIS_URL": f"redis://127.0.0.1:{_free_port()}/0",
    }  # clients follow the setting


def dashboard_url(pk: int) -> str:
    return reverse("aisle:recs-experiment-dashboard", args=[pk])


# --- Experiment dashboard --------------------------------------------------------------------


def test_staff_sees_variants_lift_shadow_comparison_and_charts(admin_client, experiment, rollups):
    response = admin_client.get(dashboard_url(experiment.pk))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Home &lt;EASE&gt; test" in html and "Home <EASE>" not in html
    assert "control 50 %" in html and "ease 50 %" in html
    assert "8.00 %" in html  # control CTR 120 / 1500
    assert "14.00 %" in html  # ease CTR 210 / 1500
    assert "better than control (always-valid p &lt; 0.001)" in html
    assert "40.0 %" in html  # shadow mean overlap 360 / 900
    assert "30.00 %" in html and "22.50 %" in html  # shadow vs served hit rate
    assert html.count('class="aisle-chart"') == 4
    assert "No data yet" not in html
    assert "worker" in html and "rollups" in html


def test_a_sample_ratio_mismatch_shows_its_shares_and_the_acknowledge_button(
    admin_client, experiment
):
    from merch.selectors.experiments import experiment_by_id
    from merch.services.experiments import start_experiment
    from recs.experiments.watch import watch_experiment

    start_experiment(experiment)
    for variant, exposed in (("control", 640), ("ease", 360)):
        VariantHourlyStats.objects.create(
            experiment_id=experiment.pk, variant=variant, hour=HOUR, exposed_subjects=exposed
        )
    before = admin_client.get(dashboard_url(experiment.pk)).content.decode()
    assert 'id="srm-banner"' in before  # the page's own check shows it at once ...
    assert "The workers record it at their next rollup" in before
    assert "Acknowledge the mismatch" not in before
    watch_experiment(experiment_by_id(experiment.pk))
    html = admin_client.get(dashboard_url(experiment.pk)).content.decode()
    assert 'id="srm-banner"' in html  # ... and once the workers have, promotion waits for it
    assert "Of 1,000 shoppers first exposed since the start" in html
    assert "64.0 %" in html and "36.0 %" in html and "50.0 %" in html  # seen and set
    assert "Acknowledge the mismatch" in html
    assert reverse("admin:merch_experiment_acknowledge_srm", args=[experiment.pk]) in html


def test_acknowledging_needs_a_post_and_takes_the_block_off(admin_client, experiment):
    from merch.services.experiments import record_sample_ratio_check, start_experiment

    start_experiment(experiment)
    record_sample_ratio_check(experiment.pk, 1e-8, flagged=True)
    url = reverse("admin:merch_experiment_acknowledge_srm", args=[experiment.pk])
    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url)
    assert response.status_code == 302 and response.url == dashboard_url(experiment.pk)
    experiment.refresh_from_db()
    assert experiment.srm_acknowledged_by == "admin" and not experiment.srm_blocks_promotion
    assert (
        "Acknowledged by admin" in admin_client.get(dashboard_url(experiment.pk)).content.decode()
    )


def test_dashboard_of_an_experiment_without_rollups_says_no_data(admin_client, experiment):
    response = admin_client.get(dashboard_url(experiment.pk))

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count(">No data yet</text>") == 4
    assert "not enough data yet" in html
    assert "none yet" in html  # last rollup


def test_anonymous_visitor_is_sent_to_the_admin_login(client, experiment):
    response = client.get(dashboard_url(experiment.pk))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_signed_in_non_staff_user_is_sent_to_the_admin_login(client, django_user_model, experiment):
    client.force_login(django_user_model.objects.create_user("shopper", password="x"))

    response = client.get(dashboard_url(experiment.pk))

    assert response.status_code == 302


def test_unknown_experiment_is_404(admin_client, db):
    assert admin_client.get(dashboard_url(999_999)).status_code == 404


# --- Health panel ----------------------------------------------------------------------------


def seed_serving_hours() -> None:
    client = store.writer_client()
    now = time.time()
    for back, (anonymous, collaborative) in enumerate(((30, 10), (50, 10))):
        hour = time.strftime("%Y%m%d%H", time.gmtime(now - back * 3600))
        requests = anonymous + collaborative
        client.hset(
            redis_keys.serving_hourly(hour),
            mapping={
                "requests": requests, "tier:anonymous": anonymous,
                "tier:collaborative": collaborative, "source:popular": anonymous,
                "source:user": collaborative, "fallback:user_list_missing": requests // 4,
                "age:lt_1h": requests - 2, "age:unknown": 2, "empty": 1,
            },
        )  # fmt: skip
    # Older than 24 hours: not counted.
    old = time.strftime("%Y%m%d%H", time.gmtime(now - 30 * 3600))
    client.hset(redis_keys.serving_hourly(old), mapping={"requests": 1000, "tier:anonymous": 1000})
    client.hset(
        redis_keys.EVENTS_METRICS,
        mapping={"last_lag_s": "0.250", "last_applied_at": f"{now - 5:.3f}",
                 "applied_total": 40, "lag_seconds_total": "20.0"},
    )  # fmt: skip
    client.hset(
        redis_keys.CANDIDATES_META, mapping={"user": "hybrid#8", "generated_at": str(now - 600)}
    )


@pytest.fixture
def serving_version(db):
    return ModelVersion.objects.create(
        key="hybrid", training_run="r1", artifact_path="x", artifact_sha256="0" * 64,
        metrics={"recall@20": 0.1234}, status=ModelVersion.Status.SERVING,
        promoted_at=timezone.now(),
    )  # fmt: skip


def test_health_panel_shows_the_last_24_hours_lag_models_and_heartbeat(
    admin_client, serving_version
):
    seed_serving_hours()
    heartbeat.record_heartbeat()

    response = admin_client.get(reverse("aisle:recs-health"))

    assert response.status_code == 200
    snapshot = response.context["snapshot"]
    assert snapshot.redis_up
    assert snapshot.requests == 100  # the 30-hour-old 1000 is outside the window
    assert {row.name: row.count for row in snapshot.by_tier} == {
        "anonymous": 80, "collaborative": 20,
    }  # fmt: skip
    assert [(row.name, row.count, row.share) for row in snapshot.fallbacks] == [
        ("user_list_missing", 25, 0.25)
    ]
    assert snapshot.event_lag.mean_lag_s == pytest.approx(0.5)
    assert 590 < snapshot.cache_age_s < 700
    assert snapshot.heartbeat.status == "ok"
    html = response.content.decode()
    assert "25.0 %" in html  # fallback rate
    assert "80.0 %" in html  # anonymous share
    assert "under an hour" in html
    assert "250 ms" in html and "500 ms" in html  # last and mean lag
    assert f"#{serving_version.pk}" in html and "0.1234" in html
    assert "10 min ago" in html  # candidate cache age
    assert "Requests per hour by tier" in html and "<polyline" in html


def test_health_panel_renders_with_redis_down(admin_client, serving_version, redis_down):
    response = admin_client.get(reverse("aisle:recs-health"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Redis unavailable" in html
    assert "unavailable" in html
    assert f"#{serving_version.pk}" in html  # the database part still shows


def test_health_panel_without_any_traffic_says_so(admin_client, db):
    response = admin_client.get(reverse("aisle:recs-health"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing served in the last 24 hours." in html
    assert "No model version is serving yet." in html
    assert "never" in html  # no heartbeat, no candidate lists
    assert "No data yet" in html


def test_health_panel_is_staff_only(client, db):
    response = client.get(reverse("aisle:recs-health"))
    assert response.status_code == 302


# --- Health panel: the event log ------------------------------------------------------------


@pytest.fixture
def retention(settings, tmp_path):
    settings.AISLE = {
        **settings.AISLE,
        "EVENT_RETENTION_DAYS": 180,
        "EVENT_ARCHIVE_DIR": tmp_path / "archive",
    }


def events_aged(*days_ago: float) -> None:
    for days in days_ago:
        EventFactory(occurred_at=timezone.now() - timedelta(days=days))


def analysed() -> None:
    """PostgreSQL's row estimate is as fresh as its statistics: take them as autovacuum would."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE recs_event")


def test_health_panel_shows_the_event_log_size_oldest_event_and_last_archive(
    admin_client, retention
):
    events_aged(200, 200, 20, 10, 1)
    archive_expired_events()
    analysed()

    response = admin_client.get(reverse("aisle:recs-health"))

    assert response.status_code == 200
    event_log = response.context["snapshot"].event_log
    assert event_log.size.rows == 3
    assert event_log.oldest_event_at.date() == (timezone.now() - timedelta(days=20)).date()
    assert event_log.last_archive.deleted == 2 and not event_log.archive_overdue
    html = response.content.decode()
    assert "Event log" in html
    rows = "about 3" if connection.vendor == "postgresql" else '<td class="num">3</td>'
    assert rows in html
    assert f"{event_log.oldest_event_at:%Y-%m-%d %H:%M} UTC, 20.0 days ago" in html
    assert "180 days" in html
    assert "2 events of 1 day archived, 2 deleted" in html
    assert "archive_events --dry-run" in html


def test_health_panel_says_when_events_past_the_window_are_still_stored(admin_client, retention):
    events_aged(200, 1)

    response = admin_client.get(reverse("aisle:recs-health"))

    assert response.context["snapshot"].event_log.archive_overdue
    html = response.content.decode()
    assert "is the archive task running?" in html
    assert "200.0 days ago" in html


def test_health_panel_with_retention_off_says_events_stay(admin_client, settings):
    settings.AISLE = {**settings.AISLE, "EVENT_RETENTION_DAYS": 0}
    events_aged(400)

    html = admin_client.get(reverse("aisle:recs-health")).content.decode()

    assert "forever" in html and "every event stays in the database" in html
    assert "is the archive task running?" not in html


def test_event_table_size_counts_rows_and_measures_bytes(db):
    events_aged(3, 2, 1)
    analysed()

    size = event_table_size()

    assert size.rows == 3 and size.estimated == (connection.vendor == "postgresql")
    assert size.size_bytes > 0


def test_byte_sizes_read_in_binary_units():
    assert [byte_size(n) for n in (None, 512, 2048, 5 * 1024**3, 3 * 1024**4)] == [
        "\u2013", "512 bytes", "2.0 KiB", "5.0 GiB", "3.0 TiB",
    ]  # fmt: skip


# --- Admin home ------------------------------------------------------------------------------


def test_admin_home_links_to_the_dashboards(admin_client):
    response = admin_client.get(reverse("admin:index"))

    html = response.content.decode()
    assert "Dashboards" in html
    assert reverse("aisle:recs-health") in html
    assert reverse("aisle:recs-preview") in html
    assert reverse("admin:merch_experiment_changelist") in html
    assert "app-recs" in html  # the apps are still listed
