"""Every value of an event comes back from the log as it was sent, on SQLite and PostgreSQL
(each writes its own way: recs.events.log), a repeated event id keeps its first copy, and
aisle.sql.in_values finds rows by the same values; a session keeps its first link."""

import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from bench.harness import world_environment
from bench.private_postgres import postgres_binaries_available, private_postgres
from tests.recs.events.log_round_trip import awkward_records

pytestmark = pytest.mark.integration

BASE_DIR = Path(settings.BASE_DIR)
CHUNK = 1000  # recs.events.log.INSERT_CHUNK_SIZE, read by the helper itself


def _round_trip(workdir: Path, database_url: str) -> dict:
    env = world_environment(str(workdir), REDIS_URL="redis://127.0.0.1:1/0")  # never used
    env.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="config.settings")
    done = subprocess.run(
        [sys.executable, "-m", "tests.recs.events.log_round_trip"], cwd=BASE_DIR, env=env,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def _expected_row(record, batch_id: str) -> dict:
    return {
        "event_id": record.event_id,
        "event_type": record.event_type,
        "user_id": record.user_id,
        "session_id": record.session_id,
        "product_sku": record.product_sku,
        "quantity": record.quantity,
        "price": None if record.price is None else str(record.price.quantize(Decimal("0.01"))),
        "order_id": record.order_id,
        "country": record.country,
        "device": record.device,
        "context": record.context,
        "occurred_at": record.occurred_at.astimezone(UTC).isoformat(),
        "received_at": True,  # set
        "ingest_batch_id": batch_id,
    }


def _assert_round_trip(result: dict) -> None:
    first = awkward_records(30, "e")
    new = awkward_records(CHUNK + 5, "f")
    assert result["counts"] == [30, CHUNK + 5]
    expected = [_expected_row(r, "b1") for r in first] + [_expected_row(r, "b2") for r in new]
    rows = result["rows"]
    for row in rows:  # SQLite keeps a decimal's scale as sent; compare at the column's scale
        if row["price"] is not None:
            row["price"] = str(Decimal(row["price"]).quantize(Decimal("0.01")))
        row["occurred_at"] = datetime.fromisoformat(row["occurred_at"]).astimezone(UTC).isoformat()
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert row == want
    first_links, _, stored_links = result["links"]
    assert first_links == {"s-1": "o'brien", "s-2": "Zoë ✓"}
    assert stored_links == {"s-1": "o'brien", "s-2": "Zoë ✓", "s-3": 'say "hi"'}
    assert result["found_by_user"] == sorted(
        r.event_id for r in [*first, *new] if r.user_id != "back\\slash"
    )


def test_every_value_survives_the_log_write_on_sqlite(tmp_path):
    result = _round_trip(tmp_path, f"sqlite:///{tmp_path}/log.sqlite3")
    assert result["vendor"] == "sqlite"
    _assert_round_trip(result)
    # SQLite answers with every link of the sessions, as stored (the first one of s-2).
    assert result["links"][1] == {"s-2": "Zoë ✓", "s-3": 'say "hi"'}


@pytest.mark.skipif(
    not postgres_binaries_available(),
    reason="PostgreSQL is not installed; scripts/test.sh installs it",
)
def test_every_value_survives_the_log_write_on_postgresql(tmp_path):
    with private_postgres(str(tmp_path)) as database_url:
        result = _round_trip(tmp_path, database_url)
    assert result["vendor"] == "postgresql"
    _assert_round_trip(result)
    # PostgreSQL answers with the links its statement stored: s-2 was linked already.
    assert result["links"][1] == {"s-3": 'say "hi"'}
