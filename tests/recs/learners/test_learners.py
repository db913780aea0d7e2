"""recs.learners: the registry, what every learner promises, and the hybrid's tuned blend."""

import joblib
import numpy as np
import pytest

from recs.learners import LEARNERS, get_learner
from recs.learners.base import CatalogItem, Interactions, keep_top_per_row
from recs.learners.hybrid import HybridLearner

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

# Views only, no orders, no countries: a click log.
CLICKS = Interactions.from_columns(
    user_ids=[f"s{n // 3}" for n in range(30)],
    item_ids=["A", "B", "C"] * 10,
    event_types=["view"] * 30,
    timestamps=[n * 60.0 for n in range(30)],
)


def skus(ranked):
    return [sku for sku, _ in ranked]


@pytest.mark.parametrize("key", sorted(LEARNERS))
def test_every_learner_survives_a_joblib_round_trip(key, tmp_path):
    learner = get_learner(key)().fit(CO_BOUGHT, CATALOG)
    path = tmp_path / f"{key}.joblib"
    joblib.dump(learner, path)
    restored = joblib.load(path)
    assert restored.recommend("u1", ["A"], 3) == learner.recommend("u1", ["A"], 3)


@pytest.mark.parametrize("key", sorted(LEARNERS))
def test_every_learner_fits_a_click_log_without_orders_and_recommends_known_products(key):
    learner = get_learner(key)().fit(CLICKS, CATALOG)
    ranked = learner.recommend("s1", ["A"], 5, exclude={"A"})
    assert "A" not in skus(ranked)
    assert set(skus(ranked)) <= {item.sku for item in CATALOG}


@pytest.mark.parametrize("key", sorted(LEARNERS))
def test_every_learner_declares_a_search_space_of_its_own_parameters(key):
    cls = get_learner(key)
    for name in cls.search_space:
        assert name in cls.__init__.__code__.co_varnames, f"{key}: {name} is not a parameter"
    if cls.stochastic:
        assert "seed" in cls.__init__.__code__.co_varnames


def test_the_hybrid_recommends_what_similar_shoppers_bought_and_never_what_they_had():
    learner = HybridLearner().fit(CO_BOUGHT, CATALOG)
    assert skus(learner.recommend("new-shopper", ["A"], 1)) == ["B"]
    assert not {"A", "B"} & set(skus(learner.recommend("u1", [], 5)))  # u1 bought both


def test_the_hybrid_keeps_going_when_a_component_fails():
    learner = HybridLearner(component_params={"als": {"no_such_parameter": 1}})
    learner.fit(CO_BOUGHT, CATALOG)
    assert "als" in learner.failed_components and "als" not in learner.components
    assert skus(learner.recommend("new-shopper", ["A"], 1)) == ["B"]


class _Shoppers:
    """What tune_blend reads of a scorer: shoppers with a history, relevant items, a tier."""

    def __init__(self, shoppers, allowed):
        self.shoppers, self.allowed = shoppers, allowed


class _Shopper:
    def __init__(self, user_id, history, relevant):
        self.user_id, self.history, self.relevant, self.context = user_id, history, relevant, {}


def test_the_hybrid_tunes_each_tiers_weights_towards_the_component_that_predicts_it():
    # Sessions always go A -> B -> C, and C is also the most bought overall: for shoppers who
    # just saw B, only the sequence component puts C first *and* D (popular) nowhere.
    rows = []
    for n in range(20):
        for step, item in enumerate("ABC"):
            rows.append((f"u{n}", item, n * 1.0 + step / 1000))
    for n in range(30):
        rows.append((f"p{n}", "D", 30 + n / 100))
    log = Interactions.from_columns(
        user_ids=[r[0] for r in rows], item_ids=[r[1] for r in rows],
        event_types=["view"] * len(rows), timestamps=[r[2] * DAY for r in rows],
    )  # fmt: skip
    learner = HybridLearner(candidates=5).fit(log, CATALOG)
    shoppers = [_Shopper(f"x{n}", ["A", "B"], {"C"}) for n in range(5)]
    chosen = learner.tune_blend(_Shoppers(shoppers, {item.sku for item in CATALOG}))
    weights = chosen["tier_weights"]["1-9"]
    assert weights["sequence"] > 0
    assert skus(learner.recommend("x", ["A", "B"], 1)) == ["C"]


def test_keep_top_per_row_keeps_the_largest_entries():
    from scipy import sparse

    matrix = sparse.csr_matrix(np.array([[1.0, 3.0, 2.0, 0.0], [0.0, 0.0, 5.0, 1.0]]))
    kept = keep_top_per_row(matrix, 1).toarray()
    assert kept.tolist() == [[0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 5.0, 0.0]]


def test_unknown_learner_keys_are_refused():
    with pytest.raises(KeyError, match="known"):
        get_learner("magic")


def test_als_folds_in_what_a_known_shopper_touched_after_the_fit():
    from recs.learners.als import ALSLearner

    groups = [(f"a{n}", item, 1, f"o{n}", "UK") for n in range(10) for item in "AB"]
    groups += [(f"d{n}", item, 1, f"q{n}", "UK") for n in range(10) for item in "DE"]
    learner = ALSLearner(factors=2, iterations=20, seed=1).fit(purchases(groups), CATALOG)
    # Nothing a1 did points at the D/E group yet: its products score about zero (which of
    # them ranks first among such ties differs between BLAS builds, so no order is asserted).
    before = dict(learner.recommend("a1", ["A", "B"], 5, exclude={"A", "B"}))
    assert before.get("E", 0.0) < 0.01
    # a1 bought A and B, then looks at D: folding D in brings its group's E to the top.
    after = learner.recommend("a1", ["A", "B", "D"], 1)
    assert skus(after) == ["E"] and after[0][1] > 0.1


def test_the_hybrids_precomputed_lists_equal_its_one_at_a_time_lists():
    learner = HybridLearner().fit(CO_BOUGHT, CATALOG)
    users = ["u1", "v2", "w"]
    many = learner.recommend_many(users, 3)
    for user in users:
        assert skus(many[user]) == skus(learner.recommend(user, [], 3))


@pytest.mark.parametrize("key", sorted(LEARNERS))
def test_every_learners_batch_neighbours_equal_its_one_at_a_time_neighbours(key):
    learner = get_learner(key)().fit(CO_BOUGHT, CATALOG)
    many = learner.similar_items_many(["A", "C", "unknown"], 3)
    assert many["unknown"] == []
    for sku in ("A", "C"):
        assert skus(many[sku]) == skus(learner.similar_items(sku, 3))


def test_content_neighbours_of_a_large_catalog_come_from_the_same_category(monkeypatch):
    from recs.learners import content

    learner = content.ContentLearner().fit(CO_BOUGHT, CATALOG)
    monkeypatch.setattr(content, "FULL_SEARCH_ITEMS", 2)  # as if the catalog were huge
    neighbours = learner.similar_items_many(["A", "C", "D"], 3)
    assert skus(neighbours["A"]) == ["B"] and skus(neighbours["C"]) == ["E"]
    assert neighbours["D"] == []  # alone in its category
