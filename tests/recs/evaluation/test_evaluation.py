"""recs.evaluation: metrics by hand, a leak-free split, the CSV loader and the evaluate command."""

import csv
import math

import pytest
from django.core.management import call_command

from recs.evaluation.data import load_interactions_csv
from recs.evaluation.metrics import coverage, hit_rate_at, ndcg_at, recall_at
from recs.evaluation.offline import evaluate_learners, shoppers_to_score, tier_of
from recs.evaluation.split import temporal_split
from recs.learners.popularity import PopularityLearner
from tests.recs.learners.test_learners import CATALOG, CO_BOUGHT


def test_metrics_by_hand():
    ranked, relevant = ["a", "b", "c", "d"], {"b", "d", "z"}
    assert recall_at(ranked, relevant, 2) == pytest.approx(1 / 3)
    assert recall_at(ranked, relevant, 4) == pytest.approx(2 / 3)
    assert hit_rate_at(ranked, relevant, 1) == 0.0 and hit_rate_at(ranked, relevant, 2) == 1.0
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at(ranked, relevant, 4) == pytest.approx(dcg / ideal)
    assert coverage([["a", "b"], ["b", "c"]], 10, 2) == pytest.approx(0.3)


def test_temporal_split_has_no_leakage():
    train, test, cutoff = temporal_split(CO_BOUGHT, holdout_days=3)
    assert train.timestamps.max() < cutoff <= test.timestamps.min()
    assert len(train) + len(test) == len(CO_BOUGHT)


def test_test_shoppers_only_count_items_new_to_them():
    train, test, _ = temporal_split(CO_BOUGHT, holdout_days=3)
    shoppers = {s.user_id: s for s in shoppers_to_score(train, test)}
    assert shoppers["w"].relevant == {"E"} and shoppers["w"].interaction_count == 0
    assert tier_of(0) == "0" and tier_of(5) == "1-9" and tier_of(10) == "10+"


def test_evaluation_scores_a_model_that_knows_the_answer_higher():
    train, test, _ = temporal_split(CO_BOUGHT, holdout_days=3)

    class Oracle(PopularityLearner):
        def recommend(self, user_id, history, k, *, exclude=(), context=None):
            return [("E", 1.0)]

    results = {r.name: r for r in evaluate_learners(
        {"oracle": Oracle(), "popularity": PopularityLearner()}, train, test, CATALOG)}  # fmt: skip
    assert results["oracle"].overall["recall@10"] == 1.0
    assert results["popularity"].overall["recall@10"] < 1.0


def test_the_csv_loader_names_missing_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("user,item\n1,2\n")
    with pytest.raises(ValueError, match="user_id, item_id, event_type, timestamp"):
        load_interactions_csv(path)


def write_csv(path):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "event_type", "timestamp", "category"])
        for user, item, ts in zip(
            CO_BOUGHT.user_ids, CO_BOUGHT.item_ids, CO_BOUGHT.timestamps, strict=True
        ):
            writer.writerow([user, item, "purchase", ts, "home"])


def test_the_csv_loader_reads_iso_and_epoch_times(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text(
        "user_id,item_id,event_type,timestamp\nu,A,view,2011-01-01T00:00:00+00:00\nu,B,click,0\n"
    )
    interactions, catalog = load_interactions_csv(path)
    assert list(interactions.item_ids) == ["B", "A"]  # sorted by time
    assert {c.sku for c in catalog} == {"A", "B"}


@pytest.mark.django_db
def test_the_evaluate_command_writes_the_report(tmp_path, capsys):
    events, output = tmp_path / "events.csv", tmp_path / "QUALITY.md"
    write_csv(events)
    call_command(
        "evaluate", "--events", str(events), "--holdout-days", "3", "--output", str(output)
    )
    report = output.read_text()
    assert "| hybrid |" in report and "implicit_als (baseline)" in report
    assert "Recall@20 per tier" in report
    assert "hybrid" in capsys.readouterr().out
