"""manage.py bench_experiments at tiny sizes: every section is reported and the docs stay as they are."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from bench.management.commands.bench_experiments import REPORT


def test_tiny_run_reports_every_section_without_touching_the_docs():
    before = REPORT.read_text() if REPORT.exists() else None
    out = StringIO()
    call_command(
        "bench_experiments", simulations=10, shoppers=500, planted_shoppers=2_000, looks=10,
        no_report=True, stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    for heading in (
        "## Sequential tests, SRM and CUPED",
        "### A/A tests: false alarms",
        "### Sample ratio mismatch",
        "### CUPED: time to find a planted effect",
    ):
        assert heading in text
    assert "| conversion (z-test) |" in text and "| revenue |" in text
    assert "treatment loses 5.0 % of its shoppers" in text
    assert "Report written" not in text
    assert (REPORT.read_text() if REPORT.exists() else None) == before


def test_sizes_too_small_for_the_looks_are_refused():
    with pytest.raises(CommandError):
        call_command("bench_experiments", shoppers=10, looks=10, no_report=True, stdout=StringIO())
