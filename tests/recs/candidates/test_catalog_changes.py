"""recs.candidates.catalog_changes and ContentLearner.similar_items_for_new: products created
or changed after training get content neighbours without a refit."""

import io

import joblib
import pytest

from recs import redis_keys
from recs.candidates import store
from recs.candidates.catalog_changes import write_similar_for_products
from recs.learners import content
from recs.learners.base import CatalogItem
from recs.learners.content import ContentLearner
from tests.factories import ProductFactory
from tests.recs.learners.test_content import EVENTS
from tests.recs.learners.test_learners import CATALOG


def names(ranked):
    return [sku for sku, _ in ranked]


@pytest.fixture
def learner():
    return ContentLearner().fit(EVENTS, CATALOG)


def test_a_new_product_gets_neighbours_from_its_text_category_and_price(learner):
    new = CatalogItem("N1", "Blue heart lantern", category_path="home/candles", price=3.2)
    lists = learner.similar_items_for_new([new], 3)
    assert set(names(lists["N1"])[:2]) == {"A", "B"}
    assert "N1" not in names(lists["N1"])


def test_new_products_of_one_batch_are_each_others_candidates(learner):
    tins = [
        CatalogItem("T1", "Zebra striped biscuit barrel", category_path="kitchen/storage"),
        CatalogItem("T2", "Zebra striped biscuit barrel large", category_path="kitchen/storage"),
    ]
    lists = learner.similar_items_for_new(tins, 2)
    assert names(lists["T1"])[0] == "T2" and names(lists["T2"])[0] == "T1"


def test_a_changed_product_is_scored_with_its_new_text_and_not_against_its_old_self(learner):
    renamed = CatalogItem("D", "Pink cake stand tin", category_path="kitchen/baking", price=4.0)
    ranked = names(learner.similar_items_for_new([renamed], 5)["D"])
    assert ranked[:2] in (["E", "C"], ["C", "E"]) and "D" not in ranked


def test_beyond_full_search_the_candidates_share_the_category(learner, monkeypatch):
    monkeypatch.setattr(content, "FULL_SEARCH_ITEMS", 2)
    new = CatalogItem("N1", "Heart lantern cake", category_path="kitchen/baking", price=3.0)
    assert set(names(learner.similar_items_for_new([new], 5)["N1"])) <= {"C", "E"}


def test_fold_in_survives_pickling_and_older_models_say_they_cannot(learner):
    buffer = io.BytesIO()
    joblib.dump(learner, buffer)
    loaded = joblib.load(io.BytesIO(buffer.getvalue()))
    new = CatalogItem("N1", "Red heart lantern", category_path="home/candles", price=3.0)
    assert loaded.similar_items_for_new([new], 2) == learner.similar_items_for_new([new], 2)
    del loaded.tag_codes  # as pickled before fold-in existed
    assert not loaded.can_fold_in
    with pytest.raises(NotImplementedError):
        loaded.similar_items_for_new([new], 2)


@pytest.mark.django_db
def test_lists_are_written_for_the_stored_products_from_the_serving_model(learner):
    ProductFactory(sku="N1", title="Blue heart lantern", price=3)
    assert write_similar_for_products(["N1", "NOT-STORED"], lambda role: learner) == 1
    assert names(store.read_list(redis_keys.similar_content_list("N1")))[0] in {"A", "B"}
    assert write_similar_for_products(["N1"], lambda role: None) == 0, "before any training"
    del learner.tag_codes
    assert write_similar_for_products(["N1"], lambda role: learner) == 0, "an older model"
