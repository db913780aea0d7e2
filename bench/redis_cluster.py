"""A throwaway Redis Cluster on loopback ports, for the cluster tests and `bench_cluster`.

Starts N `redis-server --cluster-enabled yes` processes without persistence in a scratch
directory, joins them with `redis-cli --cluster create` (all primaries, no replicas) and waits
until every node reports `cluster_state:ok`.
"""

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalCluster:
    ports: tuple[int, ...]
    workdir: Path

    @property
    def url(self) -> str:
        """REDIS_URL naming every node as a startup node."""
        return ",".join(f"redis://127.0.0.1:{port}/0" for port in self.ports)


def _free_ports(count: int) -> list[int]:
    # A cluster node also listens on port + 10000 (the cluster bus): both must be free.
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def _ask(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
        conn.sendall(command)
        return conn.recv(4096)


def _wait(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


@contextmanager
def local_redis_cluster(nodes: int = 3, timeout_s: float = 20.0) -> Iterator[LocalCluster]:
    """Start a `nodes`-primary Redis Cluster on free loopback ports; stop and remove it after."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not server or not cli:
        raise RuntimeError("redis-server and redis-cli are needed for a local Redis Cluster")
    workdir = Path(tempfile.mkdtemp(prefix="aisle-redis-cluster-"))
    ports = _free_ports(nodes)
    processes: list[subprocess.Popen] = []
    try:
        for port in ports:
            command = [
                server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "5000",
                "--save", "", "--appendonly", "no", "--dir", str(workdir),
                "--logfile", str(workdir / f"redis-{port}.log"),
            ]  # fmt: skip
            processes.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        for port in ports:
            if not _wait(lambda port=port: _ask(port, b"PING\r\n").startswith(b"+PONG"), 10):
                raise RuntimeError(f"cluster node on port {port} did not start")
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=timeout_s,
        )  # fmt: skip
        for port in ports:
            if not _wait(
                lambda port=port: b"cluster_state:ok" in _ask(port, b"CLUSTER INFO\r\n"), timeout_s
            ):
                raise RuntimeError(f"cluster node on port {port} never reached cluster_state:ok")
        yield LocalCluster(tuple(ports), workdir)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
