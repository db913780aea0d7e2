"""bench.cpu_shares: CPU time of a running world's processes, by role, from /proc."""

import subprocess
import sys
import time

import pytest
import redis

from bench import cpu_shares
from tests.private_redis import _free_port, start_redis_server

pytestmark = pytest.mark.skipif(not cpu_shares.available(), reason="needs Linux /proc")

BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass\n"


@pytest.fixture
def private_redis(tmp_path):
    port = _free_port()
    server = start_redis_server(port, str(tmp_path))
    yield redis.Redis(port=port), server.pid
    server.terminate()
    server.wait(timeout=10)


def test_a_busy_child_counts_for_the_bench_and_redis_is_found_by_its_own_pid(private_redis):
    client, redis_pid = private_redis
    assert cpu_shares.role_pids(client)["Redis"] == {redis_pid}
    child = subprocess.Popen([sys.executable, "-c", BUSY.format(s=1.5)])
    try:
        time.sleep(0.2)
        start = cpu_shares.snapshot(client)
        time.sleep(1.0)
        end = cpu_shares.snapshot(client)
    finally:
        child.wait(timeout=10)
    shares = cpu_shares.shares(start, end)
    assert 60 <= shares["load clients and bench"] <= 140  # one busy process: about one core
    assert shares["Redis"] < 20 and shares["web (gunicorn)"] == 0
    assert shares["machine"] >= shares["load clients and bench"] - 10


def test_a_process_started_between_snapshots_counts_all_its_time(private_redis):
    client, _ = private_redis
    start = cpu_shares.snapshot(client)
    child = subprocess.Popen([sys.executable, "-c", BUSY.format(s=1.5)])
    try:
        time.sleep(1.0)
        end = cpu_shares.snapshot(client)
    finally:
        child.wait(timeout=10)
    assert cpu_shares.shares(start, end)["load clients and bench"] >= 40
