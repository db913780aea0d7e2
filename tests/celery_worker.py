"""Run a real Celery worker process against the private test Redis and test database."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from django.conf import settings
from django.db import connection

from aisle.conf import aisle_settings

BASE_DIR = Path(settings.BASE_DIR)


def worker_environment() -> dict[str, str]:
    """The worker must use the test database that pytest-django created, not the dev one."""
    env = dict(os.environ)
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        )
    env["REDIS_URL"] = aisle_settings.REDIS_URL
    env.pop("CELERY_BROKER_URL", None)
    return env


@contextmanager
def celery_worker(
    queues: str = "default,events,scoring,training",
    concurrency: int = 1,
    extra_env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen]:
    """Start `celery worker` as a subprocess in its own process group (so a test can kill the
    worker and its pool children at once); yields the process and stops it afterwards."""
    log_path = Path(settings.VAR_DIR) / f"test-worker-{os.getpid()}-{time.monotonic_ns()}.log"
    log = open(log_path, "w")  # noqa: SIM115 - kept open for the subprocess's lifetime
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
         "--concurrency", str(concurrency), "--pool", "prefork", "--loglevel", "INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=BASE_DIR,
        env={**worker_environment(), **(extra_env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    except BaseException:
        log.flush()
        sys.stderr.write(f"--- worker log tail ({log_path.name}) ---\n")
        sys.stderr.write(log_path.read_text()[-4000:])
        raise
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                kill_worker(process)
        log.close()
        log_path.unlink(missing_ok=True)


def kill_worker(process: subprocess.Popen) -> None:
    """SIGKILL the worker and its pool children, as a crash or power loss would."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_for(predicate, timeout_s: float = 30.0, interval_s: float = 0.1):
    """Poll until predicate() is truthy; returns its value or raises with the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s")
