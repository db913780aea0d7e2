"""bench.private_postgres: a throwaway cluster of its own, gone after use."""

import socket
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

from bench.private_postgres import postgres_binaries_available, private_postgres

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not postgres_binaries_available(),
        reason="PostgreSQL is not installed; scripts/test.sh installs it",
    ),
]


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_a_private_cluster_listens_on_loopback_without_fsync_and_is_removed_on_exit(tmp_path):
    with private_postgres(str(tmp_path)) as database_url:
        url = urlparse(database_url)
        assert url.hostname == "127.0.0.1"
        assert url.port != 5432, "never the machine's own PostgreSQL"
        with psycopg.connect(database_url) as conn:
            settings = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]
                for name in ("listen_addresses", "fsync", "synchronous_commit")
            }
            assert conn.execute("SELECT current_database()").fetchone()[0] == url.path[1:]
            data_directory = Path(conn.execute("SHOW data_directory").fetchone()[0])
        assert settings == {
            "listen_addresses": "127.0.0.1",
            "fsync": "off",
            "synchronous_commit": "off",
        }
    assert not _answers(url.port)
    assert not data_directory.parent.exists()
    assert list(tmp_path.iterdir()) == []
