"""recs.learners.collaborative: item kNN, EASE and bought-together on tiny data with known answers."""

import joblib
import numpy as np
import pytest
from scipy import sparse

from recs.learners.base import CatalogItem, Interactions, keep_top_per_row
from recs.learners.collaborative import BoughtTogetherLearner, EASELearner, ItemKNNLearner
from recs.learners.item_matrices import cosine_neighbours, distinct_pairs, top_per_row

DAY = 86400.0
MINUTE = 60.0


def events(rows, with_orders=True):
    """rows: (user, item, kind, minute[, order])."""
    columns = {
        "user_ids": [r[0] for r in rows],
        "item_ids": [r[1] for r in rows],
        "event_types": [r[2] for r in rows],
        "timestamps": [r[3] * MINUTE for r in rows],
    }
    if with_orders:
        columns["order_ids"] = [r[4] if len(r) > 4 else "" for r in rows]
    return Interactions.from_columns(**columns)


def skus(ranked):
    return [sku for sku, _ in ranked]


# Many shoppers buy A and B together; D is bought a lot, but by other people.
CO_BOUGHT = events(
    [(f"u{n}", "A", "purchase", 10, f"o{n}") for n in range(8)]
    + [(f"u{n}", "B", "purchase", 10, f"o{n}") for n in range(8)]
    + [(f"v{n}", "D", "purchase", 2000, f"p{n}") for n in range(12)]
    + [(f"v{n}", "C", "purchase", 2000, f"p{n}") for n in range(3)]
    + [("w", "E", "purchase", 9000, "r"), ("w2", "E", "purchase", 9000, "r2")]
)
CATALOG = [CatalogItem(sku, sku) for sku in "ABCDEF"]


def test_distinct_pairs_sum_repeats_and_rank_by_recency():
    pairs = distinct_pairs(
        np.array([0, 0, 1, 0, 0]), np.array([5, 7, 5, 5, 9]), np.ones(5), n_cols=10
    )
    assert pairs.rows.tolist() == [0, 0, 0, 1]
    assert pairs.cols.tolist() == [5, 7, 9, 5]
    assert pairs.totals.tolist() == [2.0, 1.0, 1.0, 1.0]
    # User 0 touched 7, then 5 again, then 9 last.
    assert pairs.recency.tolist() == [1, 2, 0, 0]


def test_distinct_pairs_are_the_same_when_aggregated_in_chunks_of_users():
    rng = np.random.default_rng(5)
    rows, cols = rng.integers(0, 30, 500), rng.integers(0, 20, 500)
    weights = rng.random(500).astype(np.float32)
    whole = distinct_pairs(rows, cols, weights, 20)
    chunked = distinct_pairs(rows, cols, weights, 20, chunk_events=40)
    for name in ("rows", "cols", "recency"):
        assert getattr(chunked, name).tolist() == getattr(whole, name).tolist()
    assert np.allclose(chunked.totals, whole.totals)


@pytest.mark.parametrize("learner", [ItemKNNLearner(), EASELearner(l2=1.0)])
def test_collaborative_learners_recommend_what_similar_shoppers_bought(learner):
    learner.fit(CO_BOUGHT, CATALOG)
    assert skus(learner.recommend("new-shopper", ["A"], 1)) == ["B"]
    assert "A" not in skus(learner.recommend("u1", ["A"], 5))  # already bought
    assert skus(learner.similar_items("A", 1)) == ["B"]
    assert learner.similar_items("F", 3) == []  # in the catalog, never seen


@pytest.mark.parametrize("learner", [ItemKNNLearner(), EASELearner(l2=1.0)])
def test_recommend_many_gives_each_known_user_their_own_list(learner):
    learner.fit(CO_BOUGHT, CATALOG)
    lists = learner.recommend_many(["v1", "w", "nobody"], 3)
    assert lists["v1"] == learner.recommend("v1", [], 3)
    assert lists["w"] == learner.recommend("w", [], 3)
    assert lists["nobody"] == []


def test_item_knn_learns_from_views_and_clicks_too():
    browsing = events(
        [(f"u{n}", "A", "view", n * 100) for n in range(5)]
        + [(f"u{n}", "B", "click", n * 100 + 1) for n in range(5)]
        + [(f"v{n}", "C", "view", n * 100) for n in range(5)],
        with_orders=False,
    )
    learner = ItemKNNLearner(shrink=0).fit(browsing, [])
    assert skus(learner.similar_items("A", 2)) == ["B"]


def test_item_knn_shrinkage_damps_pairs_seen_by_few_shoppers():
    # A with R: one shopper (cosine 1/sqrt(10)); A with P: 5 of P's 40 shoppers (cosine
    # 5/sqrt(400)): raw cosine prefers the one-off pair, shrinkage the well-supported one.
    rows = [(f"a{n}", "A", "purchase", n) for n in range(10)]
    rows += [("a0", "R", "purchase", 1)]
    rows += [(f"a{n}", "P", "purchase", 100 + n) for n in range(1, 6)]
    rows += [(f"p{n}", "P", "purchase", 200 + n) for n in range(35)]
    data = events(rows, with_orders=False)
    assert skus(ItemKNNLearner(shrink=0).fit(data, []).similar_items("A", 1)) == ["R"]
    assert skus(ItemKNNLearner(shrink=10).fit(data, []).similar_items("A", 1)) == ["P"]


def test_item_knn_time_decay_favours_recent_co_occurrence():
    # A+B by five shoppers long ago, A+C by three shoppers lately.
    rows = [(f"old{n}", sku, "purchase", 0) for n in range(5) for sku in "AB"]
    rows += [(f"new{n}", sku, "purchase", 100 * DAY / MINUTE) for n in range(3) for sku in "AC"]
    data = events(rows, with_orders=False)
    assert skus(ItemKNNLearner(shrink=0).fit(data, []).similar_items("A", 1)) == ["B"]
    decayed = ItemKNNLearner(shrink=0, half_life_days=10).fit(data, [])
    assert skus(decayed.similar_items("A", 1)) == ["C"]


def test_item_knn_counts_only_a_heavy_users_latest_items():
    rows = [("heavy", f"X{n}", "view", n) for n in range(5)]
    rows += [("other", "X0", "view", 10), ("other", "X1", "view", 11)]
    learner = ItemKNNLearner(shrink=0, max_user_items=2).fit(events(rows, False), [])
    assert skus(learner.similar_items("X3", 5)) == ["X4"]  # the heavy user's two latest
    assert skus(learner.similar_items("X0", 5)) == ["X1"]  # from the other shopper only
    assert learner.user_items.shape == (2, 5)  # recommendations still see every item


def test_cosine_neighbours_are_the_same_whatever_the_block_size():
    rng = np.random.default_rng(3)
    matrix = (rng.random((60, 40)) < 0.2).astype(np.float32)
    matrix = sparse.csr_matrix(matrix)
    whole = cosine_neighbours(matrix, 5, shrink=1.0, block_work=10**9)
    blocked = cosine_neighbours(matrix, 5, shrink=1.0, block_work=10)
    assert (abs(whole - blocked) > 1e-6).nnz == 0
    assert np.diff(whole.indptr).max() <= 5
    assert whole.diagonal().max() == 0


def test_top_per_row_keeps_what_base_keep_top_per_row_keeps():
    rng = np.random.default_rng(11)
    values = rng.random((50, 30)) * (rng.random((50, 30)) < 0.5)
    values[3, :12] = 0.5  # ties go to the lower column
    matrix = sparse.csr_matrix(values.astype(np.float32))
    for keep in (1, 4, 10, 40):
        fast, reference = top_per_row(matrix, keep), keep_top_per_row(matrix, keep)
        assert (fast != reference).nnz == 0
        assert np.diff(fast.indptr).max() <= keep


def test_ease_keeps_only_the_most_popular_items_and_still_scores_over_the_full_index():
    # Ten items; only the 4 most popular enter EASE.
    rows = []
    for n in range(30):
        rows += [(f"u{n}", "A", "purchase", n), (f"u{n}", "B", "purchase", n)]
        if n < 20:
            rows += [(f"u{n}", "C", "view", n)]
        if n < 15:
            rows += [(f"u{n}", "D", "view", n)]
    rows += [(f"t{n}", f"T{n}", "view", 99) for n in range(6)]
    learner = EASELearner(l2=1.0, max_items=4).fit(events(rows, False), [])
    n_items = len(learner.index.items)
    assert n_items == 10
    assert learner.similarity.shape == (4, 4)  # never items x items
    assert sorted(learner.index.items[learner.pruned]) == ["A", "B", "C", "D"]
    scores = learner.score_rows(learner._row("new", ["A"]))
    assert scores.shape == (1, n_items)
    outside = np.setdiff1d(np.arange(n_items), learner.pruned)
    assert not scores[0, outside].any()
    assert skus(learner.recommend("new", ["A"], 1)) == ["B"]
    assert learner.similar_items("T0", 3) == []  # outside the pruned set: no notion of it
    assert skus(learner.similar_items("A", 1)) == ["B"]


def test_ease_weights_are_the_closed_form_solution():
    learner = EASELearner(l2=2.0).fit(CO_BOUGHT, CATALOG)
    rows = learner.user_items[:, learner.pruned].toarray().astype(np.float64)
    precision = np.linalg.inv(rows.T @ rows + 2.0 * np.eye(rows.shape[1]))
    expected = precision / -np.diag(precision)
    np.fill_diagonal(expected, 0.0)
    assert np.allclose(learner.similarity, expected, atol=1e-5)


def test_bought_together_uses_items_of_the_same_order():
    learner = BoughtTogetherLearner().fit(CO_BOUGHT, CATALOG)
    assert learner.basket_source == "orders"
    assert skus(learner.similar_items("A", 3)) == ["B"]
    assert skus(learner.recommend(None, ["D"], 2)) == ["C"]
    assert learner.recommend(None, ["E"], 2) == []  # E never shared an order


def test_bought_together_without_order_ids_pairs_carts_of_one_session():
    rows = []
    for n in range(5):
        start = n * 1000  # each shopper's visit is its own session
        rows += [(f"u{n}", "V", "view", start), (f"u{n}", "A", "view", start + 1)]
        rows += [(f"u{n}", "A", "add_to_cart", start + 2), (f"u{n}", "B", "add_to_cart", start + 3)]
        # A later visit by the same shopper: a different session.
        rows += [(f"u{n}", "Z", "purchase", start + 500)]
    learner = BoughtTogetherLearner().fit(events(rows, with_orders=False), [])
    assert learner.basket_source == "cart_sessions"
    assert skus(learner.similar_items("A", 3)) == ["B"]  # not V (only viewed), not Z (later)


def test_bought_together_falls_back_to_browsing_sessions_without_carts():
    rows = [(f"u{n}", sku, "view", n * 1000 + i) for n in range(4) for i, sku in enumerate("AB")]
    learner = BoughtTogetherLearner().fit(events(rows, with_orders=False), [])
    assert learner.basket_source == "sessions"
    assert skus(learner.similar_items("A", 3)) == ["B"]


def test_bought_together_caps_huge_baskets_to_their_latest_items():
    rows = [("u", sku, "purchase", i, "o1") for i, sku in enumerate("ABC")]
    rows += [("v", sku, "purchase", 10 + i, "o2") for i, sku in enumerate("ABC")]
    learner = BoughtTogetherLearner(max_basket_items=2).fit(events(rows), [])
    assert learner.similar_items("A", 3) == []  # A fell out of both baskets
    assert skus(learner.similar_items("B", 3)) == ["C"]


def test_bought_together_serves_known_shoppers_from_their_latest_baskets():
    learner = BoughtTogetherLearner().fit(CO_BOUGHT, CATALOG)
    lists = learner.recommend_many(["v1", "nobody"], 3)
    assert skus(lists["v1"]) == []  # bought both C and D already
    assert lists["nobody"] == []
    assert skus(learner.recommend("v5", [], 3)) == ["C"]  # bought D only


@pytest.mark.parametrize(
    "learner", [ItemKNNLearner(), EASELearner(l2=1.0, max_items=3), BoughtTogetherLearner()]
)
def test_collaborative_learners_survive_a_joblib_round_trip(learner, tmp_path):
    learner.fit(CO_BOUGHT, CATALOG)
    joblib.dump(learner, tmp_path / "model.joblib")
    restored = joblib.load(tmp_path / "model.joblib")
    assert restored.recommend("v5", ["A"], 3) == learner.recommend("v5", ["A"], 3)
    assert restored.recommend_many(["u1", "v5"], 3) == learner.recommend_many(["u1", "v5"], 3)
    assert restored.similar_items("A", 3) == learner.similar_items("A", 3)
    assert restored.params() == learner.params()


@pytest.mark.parametrize("learner_class", [ItemKNNLearner, EASELearner, BoughtTogetherLearner])
def test_search_space_names_are_constructor_keywords(learner_class):
    for name, values in learner_class.search_space.items():
        learner = learner_class(**{name: values[0]})
        assert learner.params()[name] == values[0]


@pytest.mark.parametrize("learner_class", [ItemKNNLearner, EASELearner, BoughtTogetherLearner])
def test_fitting_on_no_usable_events_gives_an_empty_model_not_an_error(learner_class):
    nothing = Interactions.from_columns(user_ids=[], item_ids=[], event_types=[], timestamps=[])
    learner = learner_class().fit(nothing, CATALOG)
    assert learner.recommend("u", ["A"], 3) == []
    assert learner.similar_items("A", 3) == []
