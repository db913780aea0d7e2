"""A throwaway PostgreSQL cluster on a free loopback port, for tests and benchmarks.

Like the private redis-server of the tests, it never touches a PostgreSQL the machine runs
already (the demo's or a developer's on 5432): its own data directory, port and socket.
"""

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

DATABASE_NAME = "aisle"
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; as root the cluster runs as this system user (the Debian
# package creates it).
SYSTEM_USER = "postgres"
# The longest unix socket path the kernel takes is 107 bytes; past it the cluster listens on TCP
# only (pg_ctl -w checks readiness through postmaster.pid, not the socket).
_MAX_SOCKET_PATH = 100
# Durability off: the cluster is thrown away, and fsync per commit would make the database, not
# the code under test, the bottleneck of a benchmark.
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name)) or (0,)


def postgres_bin_dir() -> Path | None:
    """The directory of initdb, pg_ctl and postgres: from PATH, else the newest Debian install
    (/usr/lib/postgresql/<version>/bin, which the Debian package leaves off PATH)."""
    on_path = shutil.which("initdb")
    if on_path:
        bin_dir = Path(on_path).resolve().parent  # /usr/local/bin/initdb may be a symlink
        if (bin_dir / "pg_ctl").exists() and (bin_dir / "postgres").exists():
            return bin_dir
    installed = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    installed = [d for d in installed if (d / "pg_ctl").exists() and (d / "postgres").exists()]
    return max(installed, key=_version_key) if installed else None


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _system_user_exists() -> bool:
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        return False
    return True


def postgres_binaries_available() -> bool:
    """Whether private_postgres can start a cluster here (as root it also needs the postgres
    system user and runuser)."""
    if postgres_bin_dir() is None:
        return False
    return not _running_as_root() or (_system_user_exists() and shutil.which("runuser") is not None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_cluster_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", SYSTEM_USER, "--", *command] if _running_as_root() else command


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(
        _as_cluster_owner(command), cwd=cwd, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


def _cluster_home(workdir: str) -> Path:
    """A directory the cluster's owner can write: `workdir/postgres`, or as root, when the
    postgres user cannot reach into `workdir` (pytest's temp dirs are private to root), a fresh
    one under the system temp dir."""
    home = Path(workdir) / "postgres"
    home.mkdir(mode=0o700)
    if not _running_as_root():
        return home
    shutil.chown(home, SYSTEM_USER, SYSTEM_USER)
    if subprocess.run(_as_cluster_owner(["test", "-w", str(home)]), check=False).returncode == 0:
        return home
    home.rmdir()
    home = Path(tempfile.mkdtemp(prefix="aisle-postgres-"))
    shutil.chown(home, SYSTEM_USER, SYSTEM_USER)
    return home


def _wait_until_answering(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _start_cluster(bin_dir: Path, home: Path, port: int, timeout_s: float) -> None:
    data_dir, log_file = home / "data", home / "postgres.log"
    socket_dir = str(home) if len(f"{home}/.s.PGSQL.{port}") <= _MAX_SOCKET_PATH else ""
    try:
        _run([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "-E", "UTF8",
              "--locale=C", "--auth=trust", "--no-sync"], cwd=home)  # fmt: skip
        settings = {**_SERVER_SETTINGS, "port": port, "unix_socket_directories": f"'{socket_dir}'"}
        with open(data_dir / "postgresql.conf", "a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        # Trust the private socket and loopback only (initdb's file also lets in replication).
        (data_dir / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        _run([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log_file), "-w",
              "-t", str(int(timeout_s)), "start"], cwd=home)  # fmt: skip
    except Exception as error:
        if (data_dir / "postmaster.pid").exists():  # started but not ready in time
            subprocess.run(_as_cluster_owner([str(bin_dir / "pg_ctl"), "-D", str(data_dir),
                           "-m", "immediate", "stop"]), cwd=home, capture_output=True)  # fmt: skip
        if log_file.exists():
            error.add_note(f"{log_file}:\n{log_file.read_text()[-2000:]}")
        raise


@contextmanager
def private_postgres(workdir: str, timeout_s: float = 30.0) -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster in `workdir` and yield the DATABASE_URL of an empty
    database in it (trust auth, loopback only); stop the cluster and remove its files on exit."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL is not installed (initdb not found); scripts/test.sh does it"
        )
    home = _cluster_home(workdir)
    port = _free_port()
    try:
        _start_cluster(bin_dir, home, port, timeout_s)
        try:
            server_url = f"postgres://{SUPERUSER}@127.0.0.1:{port}"
            _wait_until_answering(f"{server_url}/postgres", timeout_s)
            with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            yield f"{server_url}/{DATABASE_NAME}"
        finally:
            _run([str(bin_dir / "pg_ctl"), "-D", str(home / "data"), "-m", "fast", "-w", "stop"],
                 cwd=home)  # fmt: skip
    finally:
        shutil.rmtree(home, ignore_errors=True)
