"""An isolated world for a benchmark: a private Redis, a scratch database, servers on loopback.

A bench command re-runs itself inside this world (`--inner`), so it never touches the demo's
data, and starts the real servers (gunicorn, Celery workers) as subprocesses against it.
"""

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from bench.private_postgres import private_postgres

BASE_DIR = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout_s: float, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis_server(workdir: str, port: int | None = None) -> tuple[subprocess.Popen, int]:
    """A redis-server without persistence on a loopback port (a free one unless given),
    answering; (process, port)."""
    port = port or free_port()
    process = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
         "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    if not wait_until(lambda: _redis_answers(port), 10):
        process.kill()
        raise RuntimeError("the bench redis-server did not start")
    return process, port


def world_environment(workdir: str, **overrides: str) -> dict[str, str]:
    """The environment of a bench world's processes: scratch SQLite in `workdir`, production
    settings over plain HTTP on loopback, throttles out of the way of the load."""
    env = dict(os.environ)
    for name in ("REDIS_CLUSTER", "CACHE_URL", "CELERY_BROKER_URL"):
        env.pop(name, None)
    env.update(
        DATABASE_URL=f"sqlite:///{workdir}/bench.sqlite3",
        AISLE_VAR_DIR=workdir,
        DJANGO_DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        EVENTS_THROTTLE_RATE="100000000/min",
        SERVER_KEY_THROTTLE_RATE="100000000/min",
        LOG_LEVEL="WARNING",
    )
    env.update(overrides)
    return env


DATABASES = ("sqlite", "postgresql")


@contextmanager
def isolated_world(database: str = "sqlite") -> Iterator[dict[str, str]]:
    """Start a private redis-server and a scratch database (a SQLite file, or a private
    PostgreSQL cluster: bench.private_postgres); yields the environment for processes of that
    world, and removes it all afterwards."""
    if database not in DATABASES:
        raise ValueError(f"database {database!r}: use one of {', '.join(DATABASES)}")
    workdir = tempfile.mkdtemp(prefix="aisle-bench-")
    redis, port = start_redis_server(workdir)
    try:
        with ExitStack() as stack:
            overrides = {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
            if database == "postgresql":
                overrides["DATABASE_URL"] = stack.enter_context(private_postgres(workdir))
            env = world_environment(workdir, **overrides)
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
                cwd=BASE_DIR, env=env, check=True,
            )  # fmt: skip
            yield env
    finally:
        redis.terminate()
        redis.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def run_inner(command: str, args: Sequence[str], env: dict[str, str]) -> int:
    """Run a management command inside the isolated world, streaming its output."""
    return subprocess.call(
        [sys.executable, "manage.py", command, "--inner", *args], cwd=BASE_DIR, env=env
    )


WORKER_CLASSES = ("sync", "gthread")


def gunicorn_worker_args(workers: int, worker_class: str = "sync", threads: int = 1) -> list[str]:
    """gunicorn's options for a worker model. gunicorn quietly turns sync workers with threads
    into gthread ones, so that is refused here: a report must name the model that ran."""
    if worker_class not in WORKER_CLASSES:
        raise ValueError(f"worker class {worker_class!r}: use one of {', '.join(WORKER_CLASSES)}")
    if workers < 1 or threads < 1:
        raise ValueError("workers and threads must be at least 1")
    if worker_class == "sync" and threads != 1:
        raise ValueError("sync workers have no threads (gunicorn would run gthread instead)")
    args = ["--workers", str(workers), "--worker-class", worker_class]
    return args + (["--threads", str(threads)] if worker_class == "gthread" else [])


@contextmanager
def gunicorn_server(
    workers: int = 2, app: str = "config.wsgi", extra_env: dict[str, str] | None = None,
    worker_class: str = "sync", threads: int = 1,
) -> Iterator[str]:  # fmt: skip
    """gunicorn serving this project on a free loopback port (environment inherited, plus
    `extra_env`); `app` may name a bench wrapper of the project's WSGI application.
    `worker_class` "sync" closes the connection after each response (one request per worker
    at a time); "gthread" runs `threads` threads per worker and keeps HTTP/1.1 connections
    alive between requests."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
         *gunicorn_worker_args(workers, worker_class, threads), "--log-level", "warning"],
        cwd=BASE_DIR, env={**os.environ, **(extra_env or {})},
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        # One probe in flight at a time (a long timeout: the master accepts before the workers
        # boot): probes that timed out would queue and reach a gthread worker's threads all at
        # once, and drf-spectacular's first schema generation is not thread-safe (500s).
        try:
            urllib.request.urlopen(f"{base_url}/api/v1/schema/", timeout=10)
            return True
        except OSError:
            return False

    try:
        if not wait_until(answers, 30):
            raise RuntimeError("gunicorn did not start")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def celery_worker_process(
    queues: str, concurrency: int, extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A Celery worker for `queues` (environment inherited, plus `extra_env`, e.g. a fault)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
         "--concurrency", str(concurrency), "--loglevel", "WARNING", "--without-gossip",
         "--without-mingle", "--without-heartbeat"],
        cwd=BASE_DIR, env={**os.environ, **(extra_env or {})},
    )  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def celery_beat_process(schedule_dir: str) -> Iterator[subprocess.Popen]:
    """Celery beat, as production runs it beside the workers (its schedule file in `schedule_dir`)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING",
         "--schedule", os.path.join(schedule_dir, "celerybeat-schedule")],
        cwd=BASE_DIR,
    )  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> "LatencySummary":
        ordered = sorted(seconds)
        if not ordered:
            return cls(0, 0.0, 0.0, 0.0, 0.0)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

        return cls(
            len(ordered), statistics.median(ordered) * 1000, pct(95), pct(99), ordered[-1] * 1000
        )


def load_note(load_at_start: float, load_at_end: float) -> str:
    """A warning for the report when other work was running as the bench started (the load
    at the end includes the bench's own servers and clients, so only the start tells)."""
    cores = os.cpu_count() or 1
    if load_at_start <= cores / 2:
        return ""
    return (
        f"**The machine was busy with other work when this run started** (1-minute load "
        f"average {load_at_start:.1f} on {cores} cores before the bench's own processes, "
        f"{load_at_end:.1f} at the end with them): "
        "absolute latencies and rates are pessimistic; rows measured one after the other in the "
        "same run remain comparable with each other."
    )


def write_report_section(path: Path, section: str, body: str) -> None:
    """Replace (or append) the section between its markers in a Markdown report."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    text = path.read_text() if path.exists() else "# Performance\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def run_in_isolated_world(
    command: str,
    extra_env: dict[str, str] | None = None,
    database: str = "sqlite",
    extra_args: Sequence[str] = (),
) -> None:
    """The outer half of every bench command: run it again with --inner in a fresh isolated
    world (exits with the inner run's status when it failed)."""
    with isolated_world(database) as env:
        forwarded = [a for a in sys.argv[2:] if a != "--inner"]
        code = run_inner(command, [*forwarded, *extra_args], {**env, **(extra_env or {})})
    if code:
        sys.exit(code)


def command_line(command: str) -> str:
    """The command as a user typed it, for the report."""
    return " ".join([f"python manage.py {command}", *(a for a in sys.argv[2:] if a != "--inner")])
