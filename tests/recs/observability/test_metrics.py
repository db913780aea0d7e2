"""recs.observability.prometheus and views: Prometheus /metrics from Redis and the database, and
who may read it; the selectors' Redis read."""

import time
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from recs import redis_keys
from recs.candidates import store
from recs.models import ModelVersion, VariantHourlyStats
from recs.observability.selectors import hour_starts, read_redis_metrics
from tests.private_redis import _free_port

PUBLIC_ADDRESS = "203.0.113.7"  # TEST-NET-3: neither loopback nor private


@pytest.fixture(autouse=True)
def debug_without_token(settings):
    """The local set-up: DEBUG on, no token; the production rules are tested explicitly."""
    settings.AISLE = {**settings.AISLE, "METRICS_TOKEN": ""}
    settings.DEBUG = True


@pytest.fixture
def seeded(db):
    client = store.writer_client()
    client.hset(
        redis_keys.SERVING_TOTALS,
        mapping={
            "requests": 120, "tier:anonymous": 70, "tier:content": 20, "tier:collaborative": 30,
            "source:popular": 70, "source:user": 50, "fallback:user_list_missing": 9,
            "fallback:redis_down": 2, "age:lt_1m": 100, "age:unknown": 20, "empty": 3,
            "variant:control": 60,
        },
    )  # fmt: skip
    client.hset(
        redis_keys.EVENTS_METRICS,
        mapping={"last_lag_s": "0.125", "last_applied_at": f"{time.time():.3f}",
                 "applied_total": 50, "lag_seconds_total": "10.0"},
    )  # fmt: skip
    client.hset(
        redis_keys.CANDIDATES_META,
        mapping={"user": "hybrid#8", "generated_at": str(time.time() - 90)},
    )
    version = ModelVersion.objects.create(
        key="hybrid", training_run="r1", artifact_path="x", artifact_sha256="0" * 64,
        status=ModelVersion.Status.SERVING,
    )  # fmt: skip
    ModelVersion.objects.create(
        key="hybrid", training_run="r0", artifact_path="y", artifact_sha256="1" * 64,
        status=ModelVersion.Status.RETIRED,
    )  # fmt: skip
    for hour, exposed, converting, revenue in ((9, 100, 5, 250.0), (10, 50, 2, 80.5)):
        VariantHourlyStats.objects.create(
            experiment_id=7, variant="ease", hour=datetime(2026, 3, 2, hour, tzinfo=UTC),
            exposed_subjects=exposed, converting_subjects=converting, revenue=revenue,
        )  # fmt: skip
    return version


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    response = client.get(reverse("aisle:metrics"), **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_metrics_expose_serving_counters_lag_cache_models_and_experiments(client, seeded):
    samples = scrape(client)

    assert samples[("aisle_recommendations_served_total", (("tier", "anonymous"),))] == 70
    assert samples[("aisle_recommendations_served_total", (("tier", "collaborative"),))] == 30
    assert samples[("aisle_recommendations_by_source_total", (("source", "user"),))] == 50
    assert samples[
        ("aisle_recommendation_fallbacks_total", (("reason", "user_list_missing"),))
    ] == 9  # fmt: skip
    assert samples[("aisle_recommendations_empty_total", ())] == 3
    assert samples[("aisle_recommendations_list_age_total", (("bucket", "lt_1m"),))] == 100
    assert samples[("aisle_events_applied_total", ())] == 50
    assert samples[("aisle_event_lag_seconds", ())] == 0.125
    assert samples[("aisle_event_lag_seconds_mean", ())] == 0.2
    assert 89 <= samples[("aisle_candidate_cache_age_seconds", ())] < 120
    model_labels = (("key", "hybrid"), ("version", f"hybrid#{seeded.pk}"))
    assert samples[("aisle_model_version_info", model_labels)] == 1
    assert len([name for name, _ in samples if name == "aisle_model_version_info"]) == 1
    experiment = (("experiment", "7"), ("variant", "ease"))
    assert samples[("aisle_experiment_exposed_subjects", experiment)] == 150
    assert samples[("aisle_experiment_converting_subjects", experiment)] == 7
    assert samples[("aisle_experiment_revenue", experiment)] == 330.5
    assert samples[("aisle_redis_up", ())] == 1


def test_metrics_with_redis_down_report_it_and_still_answer(client, seeded, settings):
    settings.AISLE = {
        **settings.AISLE,
        "REDIS_URL": f"redis://127.0.0.1:{_free_port()}/0",
    }  # clients follow the setting
    samples = scrape(client)

    assert samples[("aisle_redis_up", ())] == 0
    assert not any(name == "aisle_recommendations_served_total" for name, _ in samples)
    assert samples[("aisle_experiment_exposed_subjects", (("experiment", "7"),
                                                          ("variant", "ease")))] == 150  # fmt: skip


def test_metrics_of_a_fresh_install_are_zero_not_errors(client, db):
    samples = scrape(client)

    assert samples[("aisle_redis_up", ())] == 1
    assert samples[("aisle_recommendations_empty_total", ())] == 0
    assert samples[("aisle_events_applied_total", ())] == 0
    assert ("aisle_event_lag_seconds_mean", ()) not in samples  # nothing to average yet
    assert ("aisle_candidate_cache_age_seconds", ()) not in samples


# --- Access ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.1.2.3", "172.20.0.4", "192.168.0.9", "::1", "fd00::5",
                "::ffff:10.0.0.8"],
)  # fmt: skip
def test_without_a_token_loopback_and_private_addresses_may_scrape(client, db, address):
    assert client.get(reverse("aisle:metrics"), REMOTE_ADDR=address).status_code == 200


def test_without_a_token_public_addresses_are_refused(client, db):
    assert client.get(reverse("aisle:metrics"), REMOTE_ADDR=PUBLIC_ADDRESS).status_code == 403
    assert client.get(reverse("aisle:metrics"), REMOTE_ADDR="172.32.0.1").status_code == 403
    assert client.get(reverse("aisle:metrics"), REMOTE_ADDR="2001:db8::1").status_code == 403
    assert client.get(reverse("aisle:metrics"), REMOTE_ADDR="not an address").status_code == 403


def test_without_a_token_staff_may_scrape_from_anywhere(admin_client):
    assert admin_client.get(reverse("aisle:metrics"), REMOTE_ADDR=PUBLIC_ADDRESS).status_code == 200


def test_with_a_token_the_bearer_token_is_required_from_every_address(client, db, settings):
    settings.AISLE = {**settings.AISLE, "METRICS_TOKEN": "s3cret-token"}
    url = reverse("aisle:metrics")

    missing = client.get(url)
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get(url, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION="s3cret-token").status_code == 401
    ok = client.get(url, REMOTE_ADDR=PUBLIC_ADDRESS, HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert ok.status_code == 200
    assert b"aisle_redis_up" in ok.content


def test_with_a_token_staff_may_still_scrape(admin_client, settings):
    settings.AISLE = {**settings.AISLE, "METRICS_TOKEN": "s3cret-token"}
    assert admin_client.get(reverse("aisle:metrics")).status_code == 200


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "::1"])
def test_with_debug_off_an_address_proves_nothing_the_token_is_needed(
    client, db, settings, address
):
    """Behind a same-host proxy every request comes from loopback."""
    settings.DEBUG = False
    refused = client.get(reverse("aisle:metrics"), REMOTE_ADDR=address)
    assert refused.status_code == 403 and b"METRICS_TOKEN" in refused.content
    settings.AISLE = {**settings.AISLE, "METRICS_TOKEN": "s3cret-token"}
    assert client.get(reverse("aisle:metrics"), REMOTE_ADDR=address).status_code == 401
    ok = client.get(reverse("aisle:metrics"), REMOTE_ADDR=address,
                    HTTP_AUTHORIZATION="Bearer s3cret-token")  # fmt: skip
    assert ok.status_code == 200


def test_metrics_accept_only_get(client, db):
    assert client.post(reverse("aisle:metrics")).status_code == 405


# --- Reads -----------------------------------------------------------------------------------


def test_hour_starts_are_the_last_n_utc_hours_oldest_first():
    now = datetime(2026, 3, 2, 10, 59, tzinfo=UTC).timestamp()
    starts = hour_starts(3, now)
    assert [datetime.fromtimestamp(s, tz=UTC).hour for s in starts] == [8, 9, 10]


def test_redis_read_is_none_when_redis_is_down(settings):
    settings.AISLE = {**settings.AISLE, "REDIS_URL": f"redis://127.0.0.1:{_free_port()}/0"}
    assert read_redis_metrics(hours=2) is None
