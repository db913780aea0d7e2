"""A simulated A/B test end to end: the real API serves and takes events, real Celery workers
ingest them, drain the served-list log, score the shadow and roll up; the dashboard's numbers
must equal the simulation's, and the variant that converts better by construction must win."""

import pytest

from merch.models import Placement
from merch.selectors.experiments import experiment_by_id
from merch.services.experiments import VariantSpec, create_experiment, start_experiment
from recs import redis_keys
from recs.api_keys import create_api_key
from recs.candidates import store
from recs.experiments.report import experiment_report
from recs.experiments.tasks import drain_served_log_task, rollup_experiments_task
from recs.models import Event, ServedList, VariantHourlyStats
from tests.celery_worker import celery_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SHOPPERS = 240
PRICE = 4.95


def converts(variant: str, n: int) -> bool:
    """By construction: trending converts two shoppers in three, control one in five."""
    return n % 3 != 0 if variant == "trending" else n % 5 == 0


def test_simulated_ab_test_through_api_and_workers_matches_the_dashboard(
    shop, client, admin_client
):
    store.write_lists(
        [(redis_keys.TRENDING_ALL, [("B4", 3.0), ("C6", 2.0), ("K6", 1.0), ("B3", 0.5)])]
    )
    experiment = create_experiment(
        "Trending on home", Placement.objects.get(key="home"),
        [VariantSpec("control", "popular", 0, is_control=True),
         VariantSpec("trending", "trending", 50),
         VariantSpec("challenger", "personal", 0, is_shadow=True)],
        planned_shoppers_per_arm=SHOPPERS // 2,
    )  # fmt: skip
    start_experiment(experiment)
    _, key = create_api_key("simulation", "secret", ["read", "write"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    expected = {v: {"exposed": 0, "converting": 0, "impressions": 0, "clicks": 0}
                for v in ("control", "trending")}  # fmt: skip
    events, posted = [], 0
    for n in range(SHOPPERS):
        session = f"sim-{n}"
        served = client.get(
            "/api/v1/recommendations",
            {"placement": "home", "session_id": session, "limit": 4},
            **auth,
        ).json()
        variant, rec_id, skus = (
            served["variant"],
            served["rec_id"],
            [i["sku"] for i in served["items"]],
        )
        expected[variant]["exposed"] += 1
        expected[variant]["impressions"] += len(skus)
        for position, sku in enumerate(skus):
            events.append(
                {
                    "event_id": f"{session}-imp-{position}",
                    "type": "impression",
                    "session_id": session,
                    "product_id": sku,
                    "context": {"rec_id": rec_id},
                }
            )
        if converts(variant, n):
            expected[variant]["converting"] += 1
            expected[variant]["clicks"] += 1
            events.append(
                {
                    "event_id": f"{session}-click",
                    "type": "click",
                    "session_id": session,
                    "product_id": skus[0],
                    "context": {"rec_id": rec_id},
                }
            )
            events.append(
                {
                    "event_id": f"{session}-buy",
                    "type": "purchase",
                    "session_id": session,
                    "product_id": skus[0],
                    "quantity": 1,
                    "price": str(PRICE),
                    "context": {"rec_id": rec_id},
                    "order_id": f"o-{n}",
                }
            )
        if len(events) >= 400 or n == SHOPPERS - 1:
            response = client.post(
                "/api/v1/events", {"events": events}, content_type="application/json", **auth
            )
            assert response.status_code == 202 and response.json()["rejected"] == []
            posted += len(events)
            events = []
    assert expected["control"]["exposed"] > 60 and expected["trending"]["exposed"] > 60

    with celery_worker(queues="default,events,scoring", concurrency=2):
        wait_for(lambda: Event.objects.count() == posted, timeout_s=120)
        drain_served_log_task.delay()  # beat's job: stores the log, queues the shadow scoring
        wait_for(lambda: ServedList.objects.filter(is_shadow=True).count() == SHOPPERS,
                 timeout_s=120)  # fmt: skip
        rollup_experiments_task.delay()
        wait_for(lambda: VariantHourlyStats.objects.filter(experiment_id=experiment.pk).exists(),
                 timeout_s=60)  # fmt: skip

    report = experiment_report(experiment_by_id(experiment.pk))
    results = {v.name: v for v in report.variants}
    for name, numbers in expected.items():
        result = results[name]
        assert result.exposed_subjects == numbers["exposed"]
        assert result.impressions == numbers["impressions"]
        assert result.ctr.successes == numbers["clicks"]
        assert result.conversion.successes == numbers["converting"]
        assert result.revenue_per_subject.total == pytest.approx(numbers["converting"] * PRICE)
    assert results["trending"].conversion_vs_control.p_value < 0.01
    assert results["trending"].conversion_vs_control.verdict.startswith("better")
    (shadow,) = report.shadows
    assert shadow.lists_scored == SHOPPERS

    page = admin_client.get(f"/admin/recs/experiments/{experiment.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Trending on home" in html and "<svg" in html
    for numbers in expected.values():
        conversion = numbers["converting"] / numbers["exposed"]
        assert f"{conversion * 100:.2f} %" in html, "the table shows the simulated conversion"
