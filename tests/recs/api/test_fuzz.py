"""Fuzzing every API operation from its OpenAPI schema (schemathesis, against a live server).

Checks (tests/recs/api/schemathesis.toml): no 5xx; status codes, content types, bodies and
headers as documented; schema-invalid input rejected with a 4xx (the schema states the
constraints the API enforces); authentication not ignored; unsupported methods refused. The suite runs
FUZZ_EXAMPLES cases per operation (default 25); `AISLE_FUZZ_EXAMPLES=300 bash scripts/test.sh
tests/recs/api/test_fuzz.py` is the longer run the README ("Security") reports.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recs.api_keys import create_api_key
from tests.factories import CategoryFactory, ProductFactory, StockFactory

FUZZ_EXAMPLES = int(os.environ.get("AISLE_FUZZ_EXAMPLES", "25"))


@pytest.mark.django_db(transaction=True)
def test_every_operation_survives_fuzzing_and_answers_as_documented(
    live_server, default_placements, settings, tmp_path
):
    settings.AISLE = {**settings.AISLE, "SERVER_KEY_THROTTLE_RATE": "1000000/min"}
    category = CategoryFactory(name="Candles", slug="candles", path="candles")
    for sku in ("85123A", "22423", "84406B"):
        StockFactory(product=ProductFactory(sku=sku, category=category), on_hand=10)
    _, key = create_api_key("fuzzer", "secret", ["read", "write", "catalog", "admin"])
    st = Path(sys.executable).parent / "st"
    result = subprocess.run(
        [
            str(st), "--config-file", str(Path(__file__).with_name("schemathesis.toml")),
            "run", f"{live_server.url}/api/v1/schema/?format=json",
            "--url", live_server.url,
            "--header", f"Authorization: Bearer {key}",
            "--max-examples", str(FUZZ_EXAMPLES),
            "--seed", "13",
            "--workers", "1",
            "--request-timeout", "30",
            "--report", "junit", "--report-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
    )  # fmt: skip
    summary = result.stdout[-6000:]
    print(summary[summary.find("SUMMARY") - 40 :])  # shown with -s: the run's figures
    assert result.returncode == 0, summary + result.stderr[-2000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout, summary
