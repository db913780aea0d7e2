"""recs.learners: each learner on tiny data where the right answer is known."""

import joblib
import pytest

from recs.learners import LEARNERS, get_learner
from recs.learners.base import CatalogItem, Interactions
from recs.learners.collaborative import BoughtTogetherLearner, EASELearner, ItemKNNLearner
from recs.learners.content import ContentLearner
from recs.learners.hybrid import HybridLearner
from recs.learners.popularity import DemographicLearner, PopularityLearner, TrendingLearner

DAY = 86400.0

CATALOG = [
    CatalogItem("A", "Red heart lantern", category_path="home/candles", price=3.0),
    CatalogItem("B", "White heart lantern", category_path="home/candles", price=3.5),
    CatalogItem("C", "Regency cake stand", category_path="kitchen/baking", price=12.0),
    CatalogItem("D", "Jumbo shopper bag", category_path="bags/bags", price=2.0),
    CatalogItem("E", "Pink cake tin", category_path="kitchen/baking", price=4.0),
]


def purchases(rows):
    """rows: (user, item, day, order, country)."""
    return Interactions.from_columns(
        user_ids=[r[0] for r in rows], item_ids=[r[1] for r in rows],
        event_types=["purchase"] * len(rows), timestamps=[r[2] * DAY for r in rows],
        order_ids=[r[3] for r in rows], countries=[r[4] for r in rows],
    )  # fmt: skip


# Many shoppers buy A and B together; D is bought a lot, but by other people.
CO_BOUGHT = purchases(
    [(f"u{n}", "A", 1, f"o{n}", "UK") for n in range(8)]
    + [(f"u{n}", "B", 1, f"o{n}", "UK") for n in range(8)]
    + [(f"v{n}", "D", 2, f"p{n}", "Germany") for n in range(12)]
    + [(f"v{n}", "C", 2, f"p{n}", "Germany") for n in range(3)]
    + [("w", "E", 9, "r", "France"), ("w2", "E", 9, "r2", "France")]
)


def skus(ranked):
    return [sku for sku, _ in ranked]


@pytest.mark.parametrize("learner_class", [ItemKNNLearner, EASELearner, HybridLearner])
def test_collaborative_learners_recommend_what_similar_shoppers_bought(learner_class):
    learner = learner_class(l2=1.0) if learner_class is not ItemKNNLearner else learner_class()
    learner.fit(CO_BOUGHT, CATALOG)
    assert skus(learner.recommend("new-shopper", ["A"], 1)) == ["B"]
    assert "A" not in skus(learner.recommend("u1", [], 5))  # already bought


def test_bought_together_uses_items_of_the_same_order():
    learner = BoughtTogetherLearner().fit(CO_BOUGHT, CATALOG)
    assert skus(learner.similar_items("A", 3)) == ["B"]
    assert skus(learner.recommend(None, ["D"], 2)) == ["C"]
    assert learner.recommend(None, ["E"], 2) == []  # E never shared an order


def test_popularity_is_global_and_per_segment():
    learner = PopularityLearner().fit(CO_BOUGHT, CATALOG)
    assert skus(learner.popular(None, 1)) == ["D"]
    assert skus(learner.popular("country:UK", 2)) == ["A", "B"]
    assert skus(learner.popular("category:kitchen", 2)) == ["C", "E"]
    assert skus(learner.popular("country:Nowhere", 1)) == ["D"]  # backfilled from global


def test_trending_favours_what_sold_recently():
    learner = TrendingLearner(half_life_hours=24).fit(CO_BOUGHT, CATALOG)
    assert skus(learner.recommend(None, [], 1)) == ["E"]  # two sales a week after the rest


def test_demographic_picks_the_visitors_country_list():
    learner = DemographicLearner().fit(CO_BOUGHT, CATALOG)
    learner_small_segments = skus(learner.recommend(None, [], 2, context={"country": "UK"}))
    # Segments with fewer than MIN_SEGMENT_ITEMS items back off to the global list.
    assert learner_small_segments == skus(learner.popular(None, 2))
    learner.segment_lists["country:UK"] = [(s, 1.0) for s in "ABCDE"] * 5
    assert skus(learner.recommend(None, [], 2, context={"country": "UK"}))[0] == "A"


def test_content_finds_products_with_the_same_words_and_category():
    learner = ContentLearner().fit(CO_BOUGHT, CATALOG)
    assert skus(learner.similar_items("A", 1)) == ["B"]
    assert skus(learner.similar_items("C", 1)) == ["E"]
    assert skus(learner.recommend(None, ["C"], 1)) == ["E"]


def test_content_gives_a_product_nobody_bought_yet_exposure():
    catalog = [
        *CATALOG,
        CatalogItem("NEW", "Red heart lantern large", category_path="home/candles"),
    ]
    learner = ContentLearner().fit(CO_BOUGHT, catalog)
    assert "NEW" in skus(learner.similar_items("A", 2))


@pytest.mark.parametrize("key", sorted(LEARNERS))
def test_every_learner_survives_a_joblib_round_trip(key, tmp_path):
    learner = get_learner(key)().fit(CO_BOUGHT, CATALOG)
    path = tmp_path / f"{key}.joblib"
    joblib.dump(learner, path)
    restored = joblib.load(path)
    assert restored.recommend("u1", ["A"], 3) == learner.recommend("u1", ["A"], 3)


def test_unknown_learner_keys_are_refused():
    with pytest.raises(KeyError, match="known"):
        get_learner("magic")
