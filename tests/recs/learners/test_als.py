"""recs.learners.als: implicit's ALS on data whose two shopper groups never mix."""

import joblib
import numpy as np
import pytest

from recs.learners.als import ALSLearner
from recs.learners.base import Interactions

GROUPS = {"g": "ABCD", "h": "WXYZ"}


def block_data() -> Interactions:
    """Two groups of 24 shoppers; each shopper bought three of their group's four items and
    skipped the one at (shopper number mod 4)."""
    rows = [
        (f"{group}{n}", item)
        for group, items in GROUPS.items()
        for n in range(24)
        for position, item in enumerate(items)
        if position != n % 4
    ]
    return Interactions.from_columns(
        user_ids=[user for user, _ in rows], item_ids=[item for _, item in rows],
        event_types=["purchase"] * len(rows), timestamps=np.arange(len(rows), dtype=float),
    )  # fmt: skip


DATA = block_data()


def fitted(**params) -> ALSLearner:
    """Two factors: one per group, so the test data's answer is unambiguous."""
    return ALSLearner(**{"factors": 2, "regularization": 0.1, **params}).fit(DATA, [])


def skus(ranked):
    return [sku for sku, _ in ranked]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_als_recommends_the_item_the_shoppers_group_co_consumes(seed):
    learner = fitted(seed=seed)
    assert skus(learner.recommend("g1", [], 1)) == ["B"]  # g1 skipped B
    assert skus(learner.recommend("h6", [], 1)) == ["Y"]  # h6 skipped Y
    assert not {"A", "C", "D"} & set(skus(learner.recommend("g1", [], 4)))  # already bought


def test_als_folds_in_an_unknown_shopper_from_their_history():
    learner = fitted()
    ranked = skus(learner.recommend("new-shopper", ["W", "X"], 2))
    assert sorted(ranked) == ["Y", "Z"]
    assert skus(learner.recommend(None, ["A", "B", "C"], 1)) == ["D"]
    assert learner.recommend("new-shopper", [], 3) == []
    assert learner.recommend(None, ["NOT-AN-ITEM"], 3) == []


def test_als_leaves_out_excluded_items():
    learner = fitted()
    assert "B" not in skus(learner.recommend("g1", [], 5, exclude={"B"}))
    assert "Y" not in skus(learner.recommend(None, ["W", "X"], 5, exclude={"Y"}))


def test_als_recommend_many_equals_recommend_for_known_users():
    learner = fitted()
    users = ["g0", "g1", "h2", "h7", "stranger"]
    lists = learner.recommend_many(users, 3, block=2)
    for user in users[:-1]:
        single = learner.recommend(user, [], 3)
        # A block is scored by one matrix product, a shopper by a vector product: they differ
        # in the last bits, which may reorder the near-zero scores of the other group's items.
        assert lists[user][0][0] == single[0][0]
        assert [s for _, s in lists[user]] == pytest.approx([s for _, s in single], abs=1e-6)
    assert lists["stranger"] == []


def test_als_similar_items_stay_in_their_group():
    learner = fitted()
    similar = skus(learner.similar_items("A", 3))
    assert "A" not in similar
    assert set(similar) == {"B", "C", "D"}


def test_als_caps_factors_on_tiny_data():
    tiny = Interactions.from_columns(
        user_ids=["u", "u", "v"], item_ids=["A", "B", "B"], event_types=["view"] * 3,
        timestamps=[1.0, 2.0, 3.0],
    )  # fmt: skip
    learner = ALSLearner(factors=64).fit(tiny, [])
    assert learner.fitted_factors == 1
    assert learner.model.item_factors.dtype == np.float32
    assert skus(learner.recommend("v", [], 2)) in (["A"], [])


def test_als_is_reproducible_by_seed_and_survives_joblib(tmp_path):
    learner = fitted(seed=7, num_threads=1)
    again = fitted(seed=7, num_threads=1)
    assert learner.recommend("g1", [], 4) == again.recommend("g1", [], 4)
    joblib.dump(learner, tmp_path / "als.joblib")
    restored = joblib.load(tmp_path / "als.joblib")
    assert restored.recommend("g1", [], 4) == learner.recommend("g1", [], 4)
    assert restored.recommend(None, ["W"], 3) == learner.recommend(None, ["W"], 3)


def test_als_search_space_names_init_keywords():
    assert ALSLearner.stochastic
    for name, values in ALSLearner.search_space.items():
        learner = ALSLearner(**{name: values[0]}, iterations=2).fit(DATA, [])
        assert learner.params()[name] == values[0]
