"""The event write path and the merchandiser's stock saves share one database without errors.

Each backend gets a world of its own (fresh database, private Redis); an events worker applies
batches at full speed in one process while the admin saves stock 100 times in another.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from bench.harness import world_environment
from bench.private_postgres import postgres_binaries_available, private_postgres
from tests.private_redis import _free_port, start_redis_server

pytestmark = pytest.mark.integration

BASE_DIR = Path(settings.BASE_DIR)
HELPER = "tests.recs.events.concurrent_writers"
STOCK_SAVES = 100
BATCH_SIZE = 300  # events per batch, as a worker takes them from the queue


def _start_helper(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", HELPER, *args], cwd=BASE_DIR, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _output(process: subprocess.Popen) -> tuple[str, str]:
    try:
        return process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def _report(process: subprocess.Popen, output: tuple[str, str]) -> dict:
    stdout, stderr = output
    assert process.returncode == 0, f"{process.args[3]} exited {process.returncode}:\n" + (
        stdout[-2000:] + stderr[-3000:]
    )
    return json.loads(stdout.splitlines()[-1])


def _writers_in_parallel(workdir: Path, database_url: str, redis_url: str) -> tuple[dict, dict]:
    """Migrate and seed a fresh database, then run the worker and the admin saves side by side
    (the saves start once the worker has applied its first batch); their reports."""
    env = world_environment(str(workdir), REDIS_URL=redis_url)
    # The admin pages need the development static files storage (no collectstatic here).
    env.update(
        DATABASE_URL=database_url, DJANGO_DEBUG="true", DJANGO_SETTINGS_MODULE="config.settings"
    )
    prepare = _start_helper(["prepare", "--products", "100"], env)
    _report(prepare, _output(prepare))
    ready_file, stop_file = workdir / "worker-ready", workdir / "worker-stop"
    worker = _start_helper(["worker", "--batch-size", str(BATCH_SIZE), "--ready-file",
                            str(ready_file), "--stop-file", str(stop_file)], env)  # fmt: skip
    admin = _start_helper(["admin", "--saves", str(STOCK_SAVES), "--start-file", str(ready_file)],
                          env)  # fmt: skip
    try:
        admin_output = _output(admin)
    finally:
        stop_file.touch()  # the worker stops after its current batch
    # The worker's first: when it failed, the admin only waited for it in vain.
    return _report(worker, _output(worker)), _report(admin, admin_output)


def _assert_no_lock_errors(worker: dict, admin: dict) -> None:
    assert admin["errors"] == 0, admin["error_samples"]
    assert worker["errors"] == 0, worker["error_samples"]
    assert admin["persisted"] == STOCK_SAVES
    during_saves = [
        t for t in worker["batch_finished_at"] if admin["started_at"] <= t <= admin["finished_at"]
    ]
    assert during_saves, "the worker applied no batch while the admin saved: no overlap tested"


@pytest.fixture
def private_redis_url(tmp_path):
    port = _free_port()
    server = start_redis_server(port, str(tmp_path))
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=10)


def test_stock_saves_and_event_batches_never_meet_a_lock_error_on_sqlite(
    tmp_path, private_redis_url
):
    worker, admin = _writers_in_parallel(
        tmp_path, f"sqlite:///{tmp_path}/writers.sqlite3", private_redis_url
    )
    _assert_no_lock_errors(worker, admin)


@pytest.mark.skipif(
    not postgres_binaries_available(),
    reason="PostgreSQL is not installed; scripts/test.sh installs it",
)
def test_stock_saves_and_event_batches_never_meet_a_lock_error_on_postgresql(
    tmp_path, private_redis_url
):
    with private_postgres(str(tmp_path)) as database_url:
        worker, admin = _writers_in_parallel(tmp_path, database_url, private_redis_url)
    _assert_no_lock_errors(worker, admin)
