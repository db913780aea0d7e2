"""The training-at-scale bench: every learner timed and sized, failures reported, lists counted."""

import re

import pytest
from django.core.management import call_command

import recs.learners
from recs.datasets.synthetic.generate import generate
from recs.datasets.synthetic.options import SyntheticOptions
from recs.evaluation.scale.report import budget_for
from recs.learners.base import Learner


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    events, catalog = folder / "events.csv", folder / "catalog.csv"
    generate(SyntheticOptions(items=300, users=800, events=15000, days=30, seed=1), events, catalog)
    return events, catalog


class BrokenLearner(Learner):
    key = "broken"

    def __init__(self):
        pass

    def fit(self, interactions, catalog):
        raise MemoryError("cannot allocate 80 GiB for an items x items array")

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        return []


def _fit_row(report: str, key: str) -> str:
    return next(line for line in report.splitlines() if line.startswith(f"| `{key}` |"))


def test_every_learner_is_timed_and_a_failing_one_is_reported_while_the_rest_go_on(
    synthetic, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(recs.learners.LEARNERS, "broken", BrokenLearner)
    events, catalog = synthetic
    output = tmp_path / "QUALITY.md"
    output.write_text("# Offline quality\n\nIntroduction.\n")
    call_command(
        "bench_training", "--events", str(events), "--catalog", str(catalog),
        "--name", "small shop", "--output", str(output), verbosity=0,
    )  # fmt: skip
    report = output.read_text()
    assert report.startswith("# Offline quality\n\nIntroduction.")
    assert "## Training at scale: small shop" in report
    for key in recs.learners.LEARNERS:
        if key == "broken":
            continue
        row = _fit_row(report, key)
        # a fit time in seconds and an artifact size in MiB, not "failed" or "-"
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert re.fullmatch(r"[\d,]+\.\d\d", cells[1]), row
        assert re.fullmatch(r"[\d,]+\.\d\d", cells[5]), row
    broken = _fit_row(report, "broken")
    assert "failed after" in broken and "MemoryError: cannot allocate 80 GiB" in broken
    assert "FAILED" in capsys.readouterr().out
    # Every learner the precompute needs was fitted, so every kind of list is counted.
    assert re.search(r"Precompute total: [\d,]+ lists, [\d,]+ entries", report)
    for role in ("user", "similar_cf", "similar_content", "bought_together", "popular"):
        assert re.search(rf"^\| {role} \| `\w+` \| [1-9][\d,]* \|", report, re.M), role
    assert "Maximum resident set size" in report
    assert "Budgets: none at 300 catalog items" in report


def test_a_precompute_over_its_time_limit_runs_on_a_sample_labelled_extrapolated(
    synthetic, tmp_path
):
    events, catalog = synthetic
    output = tmp_path / "QUALITY.md"
    call_command(
        "bench_training", "--events", str(events), "--catalog", str(catalog),
        "--only", "content", "bought_together", "popularity", "trending",
        "--precompute-limit-min", "0", "--precompute-sample", "250", "--output", str(output),
        verbosity=0,
    )  # fmt: skip
    report = output.read_text()
    assert "| `als` |" not in report and "| `content` |" in report
    assert "- user lists skipped: `hybrid` was not fitted." in report
    assert "seeded sample of at most 250 users" in report
    row = next(line for line in report.splitlines() if line.startswith("| similar_content |"))
    written, computed = (int(c.strip().replace(",", "")) for c in row.split("|")[3:5])
    assert computed == 250 < written and "(extrapolated)" in row
    assert "min for every list (extrapolated)" in report


def test_the_stricter_budget_applies_by_catalog_size():
    assert budget_for(199_999) is None
    assert budget_for(200_000) == (200_000, 300, 3072)
    assert budget_for(1_000_000) == (1_000_000, 1200, 8192)
