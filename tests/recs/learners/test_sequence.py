"""recs.learners.sequence: what shoppers open next, on tiny sessions with known answers."""

import joblib
import pytest

from recs.learners.base import Interactions
from recs.learners.sequence import SequenceLearner

MINUTE = 60.0


def sessions(*paths, kind="view", gap_minutes=120):
    """One session per path (a string of SKUs, or (sku, kind) pairs), each by its own shopper
    unless a path is (user, steps); sessions are separated by more than the inactivity gap."""
    rows = []
    for n, path in enumerate(paths):
        user, steps = path if isinstance(path, tuple) else (f"s{n}", path)
        for i, step in enumerate(steps):
            sku, step_kind = step if isinstance(step, tuple) else (step, kind)
            rows.append((user, sku, step_kind, n * gap_minutes + i))
    return Interactions.from_columns(
        user_ids=[r[0] for r in rows], item_ids=[r[1] for r in rows],
        event_types=[r[2] for r in rows], timestamps=[r[3] * MINUTE for r in rows],
    )  # fmt: skip


def skus(ranked):
    return [sku for sku, _ in ranked]


def test_after_a_comes_b():
    learner = SequenceLearner().fit(sessions(*["ABC"] * 5, "DE"), [])
    assert skus(learner.similar_items("A", 2)) == ["B", "C"]
    assert skus(learner.similar_items("B", 1)) == ["C"]
    assert skus(learner.recommend(None, ["A"], 1)) == ["B"]


def test_transitions_follow_the_direction_unless_backward_weight_is_set():
    data = sessions(*["ABC"] * 5)
    assert SequenceLearner().fit(data, []).similar_items("C", 3) == []  # nothing after C
    learner = SequenceLearner(backward_weight=0.5).fit(data, [])
    assert skus(learner.similar_items("C", 1)) == ["B"]


def test_window_limits_how_far_ahead_a_transition_reaches():
    data = sessions(*["ABC"] * 3)
    assert skus(SequenceLearner(window=1).fit(data, []).similar_items("A", 3)) == ["B"]
    assert skus(SequenceLearner(window=2).fit(data, []).similar_items("A", 3)) == ["B", "C"]


def test_repeated_events_on_one_item_are_one_step():
    data = sessions(*[["A", "B", ("B", "click"), ("B", "add_to_cart"), "C"]] * 3)
    assert "C" in skus(SequenceLearner(window=2).fit(data, []).similar_items("A", 3))


def test_a_step_toward_a_purchase_counts_more_than_one_toward_a_view():
    data = sessions(*["XV"] * 3, *[["X", ("P", "purchase")]] * 2)
    assert skus(SequenceLearner().fit(data, []).similar_items("X", 1)) == ["P"]
    views_only = SequenceLearner(event_weights={"view": 1, "purchase": 1}).fit(data, [])
    assert skus(views_only.similar_items("X", 1)) == ["V"]


def test_sessions_do_not_run_into_each_other():
    # The same shopper opens A, then comes back hours later for Z.
    data = sessions(("u", "A"), ("u", "Z"), *["AB"] * 2)
    assert skus(SequenceLearner().fit(data, []).similar_items("A", 3)) == ["B"]


def test_the_latest_history_item_weighs_most():
    data = sessions(*["AB"] * 3, *["DE"] * 3)
    learner = SequenceLearner(recency_decay=0.5).fit(data, [])
    assert skus(learner.recommend(None, ["A", "D"], 2)) == ["E", "B"]
    assert skus(learner.recommend(None, ["D", "A"], 2)) == ["B", "E"]


def test_history_and_excluded_items_are_not_recommended():
    learner = SequenceLearner().fit(sessions(*["ABC"] * 3), [])
    assert skus(learner.recommend(None, ["B", "A"], 3)) == ["C"]
    assert learner.recommend(None, ["A"], 3, exclude={"B", "C"}) == []


def test_known_shoppers_are_served_from_their_last_training_items():
    data = sessions(*["ABC"] * 3, ("last-on-a", "XA"), ("x", "XY"))
    learner = SequenceLearner(backward_weight=0.0).fit(data, [])
    assert skus(learner.recommend("last-on-a", [], 1)) == ["B"]
    lists = learner.recommend_many(["last-on-a", "x", "nobody"], 3)
    assert lists["last-on-a"] == learner.recommend("last-on-a", [], 3)
    assert lists["x"] == learner.recommend("x", [], 3)
    assert lists["nobody"] == []
    assert learner.recommend("nobody", [], 3) == []


def test_only_the_last_history_size_items_are_kept_per_shopper():
    data = sessions(("u", "ABCDEF"))
    learner = SequenceLearner(history_size=2).fit(data, [])
    row = learner.user_history[learner.index.user_position["u"]]
    latest = dict(zip(learner.index.items[row.indices], row.data, strict=True))
    assert latest == {"F": 1.0, "E": 2.0}  # 1 = the latest


def test_sequence_survives_a_joblib_round_trip(tmp_path):
    learner = SequenceLearner(backward_weight=0.5).fit(sessions(*["ABC"] * 3, ("u", "AB")), [])
    joblib.dump(learner, tmp_path / "sequence.joblib")
    restored = joblib.load(tmp_path / "sequence.joblib")
    assert restored.recommend("u", [], 3) == learner.recommend("u", [], 3)
    assert restored.recommend(None, ["B"], 3) == learner.recommend(None, ["B"], 3)
    assert restored.similar_items("A", 3) == learner.similar_items("A", 3)


@pytest.mark.parametrize("name", sorted(SequenceLearner.search_space))
def test_search_space_names_are_constructor_keywords(name):
    value = SequenceLearner.search_space[name][0]
    assert SequenceLearner(**{name: value}).params()[name] == value


def test_fitting_on_no_usable_events_gives_an_empty_model_not_an_error():
    searches_only = Interactions.from_columns(
        user_ids=["u"], item_ids=["A"], event_types=["search"], timestamps=[1.0]
    )
    learner = SequenceLearner().fit(searches_only, [])
    assert learner.recommend("u", ["A"], 3) == []
    assert learner.recommend_many(["u"], 3) == {"u": []}
