"""recs.observability.heartbeat: the heartbeat that proves broker, worker (and beat) are running."""

import pytest

from recs.observability import heartbeat
from tests.celery_worker import celery_worker, wait_for


def test_no_heartbeat_means_unknown():
    assert heartbeat.seconds_since_heartbeat() is None


def test_heartbeat_task_records_a_fresh_timestamp():
    heartbeat.record_heartbeat()
    assert 0 <= heartbeat.seconds_since_heartbeat() < 5


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_consumes_the_heartbeat_from_the_redis_broker():
    heartbeat.record_heartbeat.apply_async(queue="default")
    assert heartbeat.seconds_since_heartbeat() is None  # nothing ran in-process
    with celery_worker(queues="default"):
        wait_for(lambda: heartbeat.seconds_since_heartbeat() is not None, timeout_s=60)
