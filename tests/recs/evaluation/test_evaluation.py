"""recs.evaluation: metrics by hand, leak-free splits, tuning on validation only, failure
isolation, the served replay and the evaluate command, on synthetic and real data."""

import math

import pytest
from django.core.management import call_command

from recs.datasets.synthetic.generate import generate
from recs.datasets.synthetic.options import SyntheticOptions
from recs.evaluation.data import load_interactions_csv
from recs.evaluation.metrics import coverage, hit_rate_at, ndcg_at, recall_at
from recs.evaluation.offline import ListScorer, shoppers_to_score, summarise, tier_of
from recs.evaluation.run import run_evaluation
from recs.evaluation.split import Split, catalog_at, protocol_splits, temporal_split
from recs.learners import LEARNERS
from recs.learners.base import CatalogItem, Interactions
from recs.learners.popularity import PopularityLearner
from recs.serving import blend_table
from tests.recs.learners.test_learners import CATALOG, CO_BOUGHT

DAY = 86400.0


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A small synthetic shop: views, carts, purchases, sessions, orders, launches over 60 days."""
    folder = tmp_path_factory.mktemp("synthetic")
    events, catalog = folder / "events.csv", folder / "catalog.csv"
    generate(
        SyntheticOptions(items=400, users=1500, events=40_000, days=60, seed=3), events, catalog
    )
    return events, catalog


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


def test_the_validation_split_lies_wholly_before_the_test_cut():
    daily = Interactions.from_columns(
        user_ids=[f"u{d % 4}" for d in range(20)], item_ids=[f"I{d % 5}" for d in range(20)],
        event_types=["view"] * 20, timestamps=[d * DAY for d in range(20)],
    )  # fmt: skip
    protocol = protocol_splits(daily, CATALOG, holdout_days=3)
    validation, test = protocol.validation, protocol.test
    assert validation.train.timestamps.max() < validation.cutoff
    assert validation.test.timestamps.min() >= validation.cutoff
    assert validation.test.timestamps.max() < test.cutoff <= test.test.timestamps.min()


def test_the_catalog_at_a_cut_holds_no_product_launched_after_it():
    launched = [
        CatalogItem("OLD", "old", launched_at=1 * DAY),
        CatalogItem("UNTOUCHED", "never bought", launched_at=2 * DAY),
        CatalogItem("LATER", "launched in the test period", launched_at=9 * DAY),
        CatalogItem("A", "no launch date, seen in training"),
        CatalogItem("E", "no launch date, first seen in the test period"),
    ]
    train, _, cutoff = temporal_split(CO_BOUGHT, holdout_days=3)
    skus = {item.sku for item in catalog_at(launched, cutoff, train)}
    assert skus == {"OLD", "UNTOUCHED", "A"}


def test_no_learner_recommends_a_product_first_seen_in_the_test_period(synthetic):
    interactions, catalog = load_interactions_csv(synthetic[0], progress=False)
    protocol = protocol_splits(interactions, catalog, holdout_days=6)
    at_cut = {item.sku for item in protocol.test.catalog}
    later = {item.sku for item in catalog} - at_cut
    assert later, "the synthetic shop launches products during the test period"
    scorer = ListScorer(protocol.test, shoppers_to_score(protocol.test.train, protocol.test.test))
    for learner in (PopularityLearner(), LEARNERS["content"]()):
        learner.fit(protocol.test.train, protocol.test.catalog)
        shown = {sku for ranked in scorer.lists(learner) for sku in ranked}
        assert shown and not shown & later


def test_test_shoppers_are_scored_after_their_first_event_on_items_new_to_them():
    log = Interactions.from_columns(
        user_ids=["old", "old", "old", "old", "new", "new", "once"],
        item_ids=["A", "B", "C", "A", "D", "E", "A"],
        event_types=["purchase", "view", "view", "view", "view", "add_to_cart", "view"],
        timestamps=[1 * DAY, 2 * DAY, 8 * DAY, 9 * DAY, 8 * DAY, 9 * DAY, 8 * DAY],
    )  # fmt: skip
    train, test, _ = temporal_split(log, holdout_days=3)
    shoppers = {s.user_id: s for s in shoppers_to_score(train, test)}
    assert set(shoppers) == {"new"}, "'old' only re-touched A; 'once' had one event, revealed"
    new = shoppers["new"]
    assert new.history == ["D"] and new.revealed_kind == "view" and new.relevant == {"E"}
    assert new.interaction_count == 0 and new.tier == "0"
    assert tier_of(0) == "0" and tier_of(5) == "1-9" and tier_of(10) == "10+"


def test_evaluation_scores_a_model_that_knows_the_answer_higher():
    extra = Interactions.from_columns(
        user_ids=["u1", "u1", "x", "x"], item_ids=["A", "C", "D", "C"],
        event_types=["view"] * 4, timestamps=[9 * DAY, 9.5 * DAY, 9 * DAY, 9.5 * DAY],
    )  # fmt: skip
    log = Interactions.from_columns(
        user_ids=[*CO_BOUGHT.user_ids, *extra.user_ids],
        item_ids=[*CO_BOUGHT.item_ids, *extra.item_ids],
        event_types=[*CO_BOUGHT.event_types, *extra.event_types],
        timestamps=[*CO_BOUGHT.timestamps, *extra.timestamps],
    )  # fmt: skip
    train, test, cutoff = temporal_split(log, holdout_days=3)
    split = Split(train, test, cutoff, CATALOG)

    class Oracle(PopularityLearner):
        def recommend(self, user_id, history, k, *, exclude=(), context=None):
            return [("C", 1.0)]

    shoppers = shoppers_to_score(train, test)
    scorer = ListScorer(split, shoppers)
    results = {
        name: summarise(name, scorer.lists(learner.fit(train, CATALOG)), shoppers, len(CATALOG))
        for name, learner in (("oracle", Oracle()), ("popularity", PopularityLearner()))
    }
    assert results["oracle"].overall["ndcg@10"] == 1.0
    assert results["popularity"].overall["ndcg@10"] < 1.0


class _SeesTime(PopularityLearner):
    """Popularity that remembers the newest event of every fit it was given."""

    key = "sees_time"
    search_space = {"recent_fraction": [1.0, 0.5, 0.25]}
    fitted_until: list[float] = []

    def fit(self, interactions, catalog):
        type(self).fitted_until.append(float(interactions.timestamps.max()))
        return super().fit(interactions, catalog)


class _RunsOutOfMemory(PopularityLearner):
    key = "runs_out_of_memory"

    def fit(self, interactions, catalog):
        raise MemoryError("Unable to allocate 22.7 GiB for an array with shape (55209, 55209)")


@pytest.fixture
def extra_learners(monkeypatch):
    monkeypatch.setitem(LEARNERS, "sees_time", _SeesTime)
    monkeypatch.setitem(LEARNERS, "runs_out_of_memory", _RunsOutOfMemory)
    _SeesTime.fitted_until = []


def test_tuning_never_sees_the_test_period_and_a_failing_learner_is_skipped(
    synthetic, extra_learners
):
    interactions, catalog = load_interactions_csv(synthetic[0], progress=False)
    run = run_evaluation(
        interactions, catalog, keys=["runs_out_of_memory", "sees_time", "popularity"],
        holdout_days=6, budget=3, seeds=1, served=False,
    )  # fmt: skip
    cut = run.protocol.test.cutoff
    tuning_fits, final_fit = _SeesTime.fitted_until[:-1], _SeesTime.fitted_until[-1]
    assert len(tuning_fits) == 3, "every configuration of the budget was tried"
    assert max(tuning_fits) < run.protocol.validation.cutoff < cut
    assert final_fit < cut
    failed = run.result("runs_out_of_memory")
    assert "MemoryError: Unable to allocate 22.7 GiB" in failed.failed
    assert run.result("popularity").overall["recall@20"] > 0
    assert run.result("sees_time").overall["recall@20"] > 0


def test_the_served_pipeline_is_replayed_through_the_render_path(synthetic):
    interactions, catalog = load_interactions_csv(synthetic[0], progress=False)
    run = run_evaluation(
        interactions, catalog, keys=["popularity", "trending", "content", *_hybrid_parts()],
        holdout_days=6, budget=1, seeds=1, max_shoppers=300,
    )  # fmt: skip
    assert run.served is not None and not run.served.failed, run.served
    assert set(run.blend) == {"anonymous", "content", "collaborative"}
    assert run.served.overall["recall@20"] > run.result("popularity").overall["recall@20"] * 0.5
    assert run.served.coverage_at_10 > 0


def _hybrid_parts():
    from recs.learners.hybrid import COMPONENTS

    return [*COMPONENTS, "hybrid"]


def test_the_csv_loader_names_missing_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("user,item\n1,2\n")
    with pytest.raises(ValueError, match="user_id, item_id, event_type, timestamp"):
        load_interactions_csv(path)


@pytest.mark.django_db
def test_the_evaluate_command_writes_a_report_section_per_data_set(synthetic, tmp_path, capsys):
    events, catalog = synthetic
    output = tmp_path / "QUALITY.md"
    output.write_text("# Offline quality\n\nHand-written introduction.\n")
    call_command(
        "evaluate", "--events", str(events), "--catalog", str(catalog), "--holdout-days", "6",
        "--budget", "1", "--seeds", "1", "--max-shoppers", "200", "--output", str(output),
        "--name", "Synthetic shop",
    )  # fmt: skip
    report = output.read_text()
    assert report.startswith("# Offline quality\n\nHand-written introduction.")
    assert "## Synthetic shop" in report and "**served pipeline**" in report
    assert "(baseline: implicit ALS)" in report and "(baseline: global popularity)" in report
    assert "event kinds: view" in report and "add_to_cart" in report
    assert "Recall@20 vs tuned implicit ALS" in report
    assert "served" in capsys.readouterr().out
    # Running it again replaces its own section and keeps the rest.
    call_command(
        "evaluate", "--events", str(events), "--holdout-days", "6", "--budget", "1", "--seeds",
        "1", "--max-shoppers", "100", "--only", "popularity", "--output", str(output),
        "--name", "Synthetic shop",
    )  # fmt: skip
    again = output.read_text()
    assert again.count("## Synthetic shop") == 1 and "Hand-written introduction." in again


def test_a_log_too_short_for_the_protocol_is_refused_with_the_reason():
    tiny = Interactions.from_columns(
        user_ids=["u", "u"], item_ids=["A", "B"], event_types=["view", "view"],
        timestamps=[0.0, 60.0],
    )  # fmt: skip
    with pytest.raises(ValueError, match="leaves no"):
        protocol_splits(tiny, CATALOG, holdout_days=30)


def test_every_learner_runs_on_real_purchases_and_the_served_pipeline_beats_popularity():
    from recs.evaluation.data import load_online_retail

    interactions, catalog = load_online_retail(limit=50_000)  # its first days of December 2010
    run = run_evaluation(interactions, catalog, holdout_days=2, budget=1, seeds=1, max_shoppers=150)
    assert [r.name for r in run.results if r.failed] == []
    assert {r.name for r in run.results} == set(LEARNERS)
    served, popularity = run.served.overall, run.result("popularity").overall
    assert served["recall@20"] > popularity["recall@20"]
    # Purchases only: nothing was viewed, so the view-based sources had no evidence and keep
    # their defaults instead of being tuned away for shops that do send views.
    defaults = blend_table.default_table()
    for tier in ("content", "collaborative"):
        for source in ("content", "viewed_neighbours"):
            assert run.blend[tier][source] == defaults[tier][source]
