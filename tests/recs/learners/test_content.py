"""recs.learners.content: TF-IDF and tag similarity over the catalog it was fitted with."""

import joblib
import numpy as np

from recs.learners.base import CatalogItem, Interactions
from recs.learners.content import ContentLearner
from tests.recs.learners.test_learners import CATALOG

# Shoppers also touched "GONE", a product no longer in the catalog.
EVENTS = Interactions.from_columns(
    user_ids=["u1", "u1", "u2", "u2"], item_ids=["A", "GONE", "GONE", "C"],
    event_types=["purchase"] * 4, timestamps=[1.0, 2.0, 3.0, 4.0],
)  # fmt: skip


def skus(ranked):
    return [sku for sku, _ in ranked]


def test_content_finds_the_textually_similar_item():
    learner = ContentLearner().fit(EVENTS, CATALOG)
    assert skus(learner.similar_items("A", 1)) == ["B"]
    assert skus(learner.similar_items("C", 1)) == ["E"]
    assert skus(learner.recommend(None, ["C"], 1)) == ["E"]


def test_content_matches_on_category_when_titles_are_ids():
    catalog = [
        CatalogItem("p1", "P1", category_path="garden/tools"),
        CatalogItem("p2", "P2", category_path="garden/tools"),
        CatalogItem("p3", "P3", category_path="kitchen"),
    ]
    learner = ContentLearner().fit(EVENTS, catalog)
    assert skus(learner.similar_items("p1", 5)) == ["p2"]


def test_content_only_recommends_items_of_the_catalog_it_was_fitted_with():
    learner = ContentLearner().fit(EVENTS, CATALOG)
    catalog_skus = {item.sku for item in CATALOG}
    assert learner.similar_items("GONE", 3) == []
    assert learner.recommend("u1", ["GONE"], 3) == []
    ranked = skus(learner.recommend("u1", ["A", "GONE", "C"], 10))
    assert ranked and set(ranked) <= catalog_skus - {"A", "C"}
    later = ContentLearner().fit(EVENTS, CATALOG[:3])
    assert "E" not in skus(later.recommend(None, ["C"], 5))


def test_content_weighs_the_latest_history_item_most():
    learner = ContentLearner(recency_decay=0.5).fit(EVENTS, CATALOG)
    assert skus(learner.recommend(None, ["C", "A"], 1)) == ["B"]
    assert skus(learner.recommend(None, ["A", "C"], 1)) == ["E"]


def test_content_excludes_history_and_asked_items():
    learner = ContentLearner().fit(EVENTS, CATALOG)
    assert "B" not in skus(learner.recommend(None, ["A"], 5, exclude={"B"}))
    assert "A" not in skus(learner.recommend(None, ["A"], 5))


def test_content_caps_its_vocabulary():
    catalog = [CatalogItem(f"s{i}", f"word{chr(97 + i)}x common") for i in range(20)]
    learner = ContentLearner(max_features=3).fit(EVENTS, catalog)
    assert learner.vectors.shape[1] <= 3  # no categories, brands or prices: text only
    assert learner.vectors.dtype == np.float32


def test_content_keeps_one_row_per_sku():
    catalog = [*CATALOG, CatalogItem("A", "Duplicate of A, ignored")]
    learner = ContentLearner().fit(EVENTS, catalog)
    assert learner.vectors.shape[0] == len(CATALOG)
    assert skus(learner.similar_items("A", 1)) == ["B"]


def test_content_has_searchable_keywords_and_survives_joblib(tmp_path):
    for name, values in ContentLearner.search_space.items():
        learner = ContentLearner(**{name: values[0]}).fit(EVENTS, CATALOG)
        joblib.dump(learner, tmp_path / "content.joblib")
        restored = joblib.load(tmp_path / "content.joblib")
        assert restored.recommend(None, ["A", "C"], 3) == learner.recommend(None, ["A", "C"], 3)


def test_content_fits_an_empty_catalog():
    learner = ContentLearner().fit(EVENTS, [])
    assert learner.recommend(None, ["A"], 3) == []
    assert learner.similar_items("A", 3) == []
