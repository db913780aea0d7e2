"""Where the cores went during a bench run: CPU time of the world's processes by role, read
from /proc (Linux), so a report can show why a rate was or was not reached on this machine.

The roles are found from the running world itself: Redis answers its own process id, a
PostgreSQL server names its data directory (whose postmaster.pid holds the server's id), and
gunicorn and the Celery workers are children of this bench process; everything else under it
is the bench and its load clients.
"""

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

ROLES = ("load clients and bench", "web (gunicorn)", "event workers", "Redis", "PostgreSQL")
PROC = Path("/proc")


@dataclass(frozen=True)
class CpuSnapshot:
    at_s: float  # monotonic seconds since boot, from /proc/uptime
    by_role: dict[str, dict[int, float]]  # CPU seconds of each live process, by role
    machine_busy_s: float  # CPU seconds of all cores not idle, machine-wide


def available() -> bool:
    return (PROC / "stat").exists()


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                parent = int(_stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    return children


def _descendants(root: int, children: dict[int, list[int]]) -> set[int]:
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: state, ppid, ... (utime is index 11)."""
    return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for pid in pids:
        try:
            fields = _stat_fields(pid)
            seconds[pid] = (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
    return seconds


def _cmdline(pid: int) -> str:
    try:
        return (
            (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _postgres_server_pid() -> int | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SHOW data_directory")
        data_dir = Path(cursor.fetchone()[0])
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def role_pids(redis_client) -> dict[str, set[int]]:
    """The processes of each role now (call it when the world is up: workers and web started)."""
    children = _children()
    mine = _descendants(os.getpid(), children)
    by_role = {role: set() for role in ROLES}
    for pid in mine:
        command = _cmdline(pid)
        if "gunicorn" in command:
            by_role["web (gunicorn)"].add(pid)
        elif "celery" in command and " worker" in command:
            by_role["event workers"].add(pid)
        else:
            by_role["load clients and bench"].add(pid)
    by_role["Redis"] = {int(redis_client.info("server")["process_id"])}
    server = _postgres_server_pid()
    if server is not None:
        by_role["PostgreSQL"] = _descendants(server, children)
    return by_role


def snapshot(redis_client) -> CpuSnapshot:
    pids = role_pids(redis_client)
    fields = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    ticks = os.sysconf("SC_CLK_TCK")
    values = [int(v) for v in fields]
    idle = values[3] + values[4]  # idle and iowait
    return CpuSnapshot(
        at_s=float((PROC / "uptime").read_text().split()[0]),
        by_role={role: _cpu_seconds(p) for role, p in pids.items()},
        machine_busy_s=(sum(values[:8]) - idle) / ticks,  # user .. steal
    )


def shares(start: CpuSnapshot, end: CpuSnapshot) -> dict[str, float]:
    """Per role, and for the whole machine, the share of one core used between two snapshots
    (100 = one core busy all the time). A process started meanwhile counts all its time; one
    that exited meanwhile is not counted."""
    elapsed = end.at_s - start.at_s
    if elapsed <= 0:
        return {}
    out = {}
    for role in ROLES:
        before = start.by_role.get(role, {})
        used = sum(seconds - before.get(pid, 0.0) for pid, seconds in end.by_role[role].items())
        out[role] = max(used, 0.0) / elapsed * 100
    out["machine"] = (end.machine_busy_s - start.machine_busy_s) / elapsed * 100
    return out
