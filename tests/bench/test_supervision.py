"""The demo's processes under supervisord (scripts/supervisord.conf, bench.supervision) heal by
themselves: web and worker killed with SIGKILL serve again within 10 s, and the worker rides out
a restart of the broker's Redis and applies the events posted after it."""

import pytest

from bench import supervision
from bench.harness import free_port, start_redis_server, world_environment
from recs.api_keys import create_api_key
from recs.models import Event
from tests.celery_worker import worker_environment

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BACK_WITHIN_S = 10


def stored_events(prefix: str) -> int:
    return Event.objects.filter(event_id__startswith=f"{prefix}-").count()


def test_killed_processes_come_back_and_the_worker_rides_out_a_redis_restart(tmp_path):
    redis_servers = [start_redis_server(str(tmp_path))]
    redis_url = f"redis://127.0.0.1:{redis_servers[0][1]}/0"
    # The test database, a Redis of its own (this test restarts it), the demo's debug mode.
    env = world_environment(
        str(tmp_path), REDIS_URL=redis_url, DJANGO_DEBUG="true",
        DATABASE_URL=worker_environment()["DATABASE_URL"],
    )  # fmt: skip
    layout = supervision.Layout(tmp_path, free_port())
    _, key = create_api_key("supervision", "secret", ["write", "catalog"])
    try:
        with supervision.supervised(layout, env) as supervisor:
            supervision.add_product(layout.base_url, key, "SUP-1")
            web = supervision.kill_and_wait(
                supervisor, "web", supervision.web_serving(layout.base_url)
            )
            worker = supervision.kill_and_wait(
                supervisor, "worker", supervision.worker_serving(redis_url, redis_url)
            )
            restart, restarted = supervision.restart_redis_and_post(
                supervisor, redis_url, tmp_path, key, "SUP-1", stored_events, down_s=2
            )
            redis_servers.append((restarted, None))
    finally:
        for process, _ in redis_servers:
            process.terminate()
            process.wait(timeout=10)

    for recovery in (web, worker):
        assert recovery.new_pid != recovery.old_pid
        assert recovery.seconds is not None and recovery.seconds < BACK_WITHIN_S, recovery
    assert restart.worker_kept, "the worker exited when Redis restarted"
    assert restart.web_kept
    assert restart.applied == restart.events, restart
