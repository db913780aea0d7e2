"""The health page says plainly that the worker is down once its heartbeat is overdue."""

import time
from datetime import UTC, datetime

from django.urls import reverse

from recs import redis_clients, redis_keys
from recs.observability import heartbeat


def health_page(admin_client) -> str:
    response = admin_client.get(reverse("aisle:recs-health"))
    assert response.status_code == 200
    return response.content.decode()


def test_an_overdue_heartbeat_shows_the_worker_down_since_it_last_ran(admin_client, db):
    last = (int(time.time()) // 60 - 10) * 60 + 30  # mid-minute, ten minutes ago
    redis_clients.worker_client().set(redis_keys.WORKER_HEARTBEAT, repr(float(last)))

    html = health_page(admin_client)

    since = datetime.fromtimestamp(last, UTC).strftime("%Y-%m-%d %H:%M")
    assert f"Worker down since {since}" in html
    assert "no heartbeat for 10 min" in html


def test_a_fresh_heartbeat_shows_no_worker_down(admin_client, db):
    heartbeat.record_heartbeat()

    html = health_page(admin_client)

    assert "Worker down" not in html
    assert 'class="status-ok">ok<' in html
