"""Pytest plugin: start a private redis-server on a free port before Django reads its settings.

Loaded with `-p tests.private_redis` (pyproject addopts) so it runs before pytest-django sets
Django up; it exports REDIS_URL, so the tests never touch a developer's or the demo's Redis.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

_server: subprocess.Popen | None = None
_workdir: str | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_ready(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"private redis-server on port {port} did not answer within {timeout_s}s")


def start_redis_server(port: int, workdir: str) -> subprocess.Popen:
    """Start redis-server on loopback with no persistence; used by this plugin and by tests."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise pytest.UsageError(
            "redis-server is not installed; run `bash scripts/test.sh`, which installs it."
        )
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir, "--logfile", os.path.join(workdir, f"redis-{port}.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_until_ready(port)
    return process


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    global _server, _workdir
    if not os.environ.get("AISLE_TEST_REDIS_URL"):
        _workdir = tempfile.mkdtemp(prefix="aisle-test-redis-")
        port = _free_port()
        _server = start_redis_server(port, _workdir)
        os.environ["AISLE_TEST_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    os.environ["REDIS_URL"] = os.environ["AISLE_TEST_REDIS_URL"]
    # The render path's 50 ms budget is for production; on a loaded CI machine a busy core can
    # exceed it and turn a test's answer into a fallback. Tests of the fallback stop Redis for
    # real (connection refused), which does not depend on this timeout.
    # Development defaults for what settings derive from DEBUG at import (plain HTTP test
    # server, unhashed static files); pytest-django still runs the tests with DEBUG off.
    os.environ.setdefault("DJANGO_DEBUG", "true")
    os.environ.setdefault("REDIS_SOCKET_TIMEOUT_S", "2")
    os.environ.setdefault("REDIS_CONNECT_TIMEOUT_S", "2")
    os.environ.pop("CELERY_BROKER_URL", None)
    return (yield)


def pytest_unconfigure(config):
    if _server is not None:
        _server.terminate()
        _server.wait(timeout=10)
    if _workdir is not None:
        shutil.rmtree(_workdir, ignore_errors=True)
