"""The demo's processes under supervisord (scripts/supervisord.conf) and the faults they must heal
from by themselves: a process killed, the broker's Redis restarted.

Used by `manage.py bench_supervision` and by tests/bench/test_supervision.py: both start the very
config demo.sh runs, in a directory of their own, against a Redis of their own.
"""

import json
import os
import pwd
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from string import Template
from urllib.parse import urlparse

import redis as redis_py
from supervisor.xmlrpc import SupervisorTransport

from bench.harness import BASE_DIR, start_redis_server, wait_until
from recs import redis_keys

TEMPLATE = BASE_DIR / "scripts" / "supervisord.conf"
PROGRAMS = ("web", "worker", "beat")
VENV_BIN = Path(sys.executable).parent  # supervisord, gunicorn and celery of this virtualenv


@dataclass(frozen=True)
class Layout:
    """Where one supervised world keeps its config, socket, pid file and logs."""

    workdir: Path
    port: int

    @property
    def config(self) -> Path:
        return self.workdir / "run" / "supervisord.conf"

    @property
    def socket(self) -> Path:
        return self.workdir / "run" / "supervisor.sock"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def render_config(layout: Layout, web_workers: int = 3, worker_concurrency: int = 2) -> Path:
    """scripts/supervisord.conf filled in as demo.sh does, for this layout."""
    for directory in (layout.config.parent, layout.log_dir):
        directory.mkdir(parents=True, exist_ok=True)
    text = Template(TEMPLATE.read_text()).substitute(
        PROJECT_DIR=BASE_DIR, VENV_DIR=VENV_BIN.parent, RUN_DIR=layout.config.parent,
        LOG_DIR=layout.log_dir, USER_NAME=pwd.getpwuid(os.getuid()).pw_name,
        BIND="127.0.0.1", PORT=layout.port, WEB_WORKERS=web_workers,
        WORKER_CONCURRENCY=worker_concurrency,
    )  # fmt: skip
    layout.config.write_text(text)
    return layout.config


class Supervisor:
    """A running supervisord, asked through its XML-RPC interface on the unix socket."""

    def __init__(self, layout: Layout, process: subprocess.Popen) -> None:
        self.layout = layout
        self.process = process

    def _rpc(self):
        transport = SupervisorTransport(None, None, f"unix://{self.layout.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def info(self, name: str) -> dict:
        """supervisord's view of a program: its `pid` (0 when not running), `statename` ..."""
        return self._rpc().getProcessInfo(name)

    def pid(self, name: str) -> int:
        try:
            return int(self.info(name)["pid"])
        except (OSError, xmlrpc.client.Error):
            return 0

    def all_running(self) -> bool:
        try:
            return all(p["statename"] == "RUNNING" for p in self._rpc().getAllProcessInfo())
        except (OSError, xmlrpc.client.Error):
            return False


@contextmanager
def supervised(
    layout: Layout, env: dict[str, str], web_workers: int = 3, worker_concurrency: int = 2,
    timeout_s: float = 60,
) -> Iterator[Supervisor]:  # fmt: skip
    """supervisord with the demo's config for `layout`, its programs in environment `env`; up
    once all three run, the web answers and the worker runs tasks. Stopped (all three) on
    leaving."""
    config = render_config(layout, web_workers, worker_concurrency)
    process = subprocess.Popen(
        [VENV_BIN / "supervisord", "--configuration", config, "--nodaemon"], cwd=BASE_DIR,
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    supervisor = Supervisor(layout, process)
    worker_ready = worker_serving(broker_url_of(env), env["REDIS_URL"])
    try:
        up = wait_until(
            lambda: supervisor.all_running()
            and web_answers(layout.base_url)
            and worker_ready(0.0),
            timeout_s, 0.2,
        )  # fmt: skip
        if not up:
            raise RuntimeError(f"the supervised processes did not start; see {layout.log_dir}")
        yield supervisor
    finally:
        process.terminate()  # supervisord stops its programs first
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def web_answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/admin/login/", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


# --- A process killed


@dataclass(frozen=True)
class Recovery:
    program: str
    seconds: float | None  # from the SIGKILL until serving again; None: not within the timeout
    old_pid: int
    new_pid: int


def kill_and_wait(
    supervisor: Supervisor, program: str, serving: Callable[[float], bool], timeout_s: float = 30
) -> Recovery:
    """SIGKILL the program's process, as a crash or the OOM killer would, and time how long it
    takes until its orphaned children have gone too (gunicorn's workers would otherwise go on
    answering for it) and supervisord has started a new one that `serving(killed_at)` says
    works."""
    old_pid = supervisor.pid(program)
    orphans = child_pids(old_pid)
    killed_at = time.time()
    started = time.perf_counter()
    os.kill(old_pid, signal.SIGKILL)
    back = wait_until(
        lambda: supervisor.pid(program) not in (0, old_pid)
        and not any(alive(pid) for pid in orphans)
        and serving(killed_at),
        timeout_s, 0.1,
    )  # fmt: skip
    seconds = time.perf_counter() - started if back else None
    return Recovery(program, seconds, old_pid, supervisor.pid(program))


def child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def web_serving(base_url: str) -> Callable[[float], bool]:
    return lambda killed_at: web_answers(base_url)


def worker_serving(broker_url: str, redis_url: str) -> Callable[[float], bool]:
    """Whether a worker ran a heartbeat task after the kill: one is queued at the first call and
    waits in the broker until a worker takes it."""
    queued = []

    def serving(killed_at: float) -> bool:
        if not queued:
            send_heartbeat(broker_url)
            queued.append(True)
        last = redis_client(redis_url).get(redis_keys.WORKER_HEARTBEAT)
        return last is not None and float(last) >= killed_at

    return serving


def broker_url_of(env: dict[str, str]) -> str:
    return env.get("CELERY_BROKER_URL") or env["REDIS_URL"]


def send_heartbeat(broker_url: str) -> None:
    from config.celery import app

    with app.connection_for_write(broker_url) as connection:
        app.send_task("recs.health.record_heartbeat", queue="default", connection=connection)


def redis_client(url: str) -> redis_py.Redis:
    return redis_py.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


# --- The broker's Redis restarted


def redis_answers(url: str) -> bool:
    try:
        return bool(redis_client(url).ping())
    except redis_py.RedisError:
        return False


def kill_redis(url: str) -> int:
    """SIGKILL the redis-server behind `url` (found by the pid it reports); returns the pid."""
    pid = int(redis_client(url).info("server")["process_id"])
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not redis_answers(url), 5)
    return pid


def start_redis(port: int, workdir: Path) -> subprocess.Popen:
    """A new, empty redis-server on `port` (no persistence, as the killed one ran)."""
    process, _ = start_redis_server(str(workdir), port)
    return process


@dataclass(frozen=True)
class RedisRestart:
    down_s: float
    worker_kept: bool  # the same worker process before and after: it rode out the restart
    web_kept: bool
    accepted_after_s: float | None  # from the restart until the events API accepted a batch
    applied_after_s: float | None  # ... until all its events were in the event log
    events: int
    applied: int


def restart_redis_and_post(
    supervisor: Supervisor, redis_url: str, workdir: Path, api_key: str, sku: str,
    applied_count: Callable[[str], int], down_s: float = 3.0, events: int = 20,
    timeout_s: float = 60,
) -> tuple[RedisRestart, subprocess.Popen]:  # fmt: skip
    """Kill the broker's Redis, start an empty one on the same port `down_s` later, then post
    `events` events through the API and wait until the worker has stored them all
    (`applied_count(prefix)` counts them). Returns the result and the new redis-server, which
    the caller stops."""
    port = urlparse(redis_url).port
    worker_pid, web_pid = supervisor.pid("worker"), supervisor.pid("web")
    kill_redis(redis_url)
    time.sleep(down_s)
    process = start_redis(port, workdir)
    restarted = time.perf_counter()
    prefix = f"sup-{os.getpid()}-{time.time_ns()}"
    batch = event_batch(prefix, sku, events)
    accepted = wait_until(
        lambda: post_json(supervisor.layout.base_url, "/api/v1/events", batch, api_key) == 202,
        timeout_s, 0.2,
    )  # fmt: skip
    accepted_after = time.perf_counter() - restarted if accepted else None
    applied = accepted and wait_until(lambda: applied_count(prefix) >= events, timeout_s, 0.2)
    applied_after = time.perf_counter() - restarted if applied else None
    result = RedisRestart(
        down_s=down_s, worker_kept=supervisor.pid("worker") == worker_pid,
        web_kept=supervisor.pid("web") == web_pid, accepted_after_s=accepted_after,
        applied_after_s=applied_after, events=events, applied=applied_count(prefix),
    )  # fmt: skip
    return result, process


def event_batch(prefix: str, sku: str, count: int) -> dict:
    return {
        "events": [
            {"event_id": f"{prefix}-{i}", "type": "view", "session_id": f"{prefix}-s",
             "product_id": sku}
            for i in range(count)
        ]
    }  # fmt: skip


def post_json(base_url: str, path: str, body: dict, api_key: str) -> int:
    """POST a JSON body with a secret key; the HTTP status (0: no answer)."""
    request = urllib.request.Request(
        base_url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def add_product(base_url: str, api_key: str, sku: str) -> None:
    """One product through the catalog API (key scope `catalog`), for the events to name."""
    body = {"products": [{"sku": sku, "title": "Supervision probe", "price": "1.00"}]}
    status = post_json(base_url, "/api/v1/products", body, api_key)
    if status != 200:
        raise RuntimeError(f"POST /api/v1/products answered {status}")
