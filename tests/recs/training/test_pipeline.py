"""recs.training: one pipeline fits, evaluates, versions, promotes and fills the candidate cache."""

import hashlib
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from recs import redis_keys
from recs.candidates import store
from recs.learners import LEARNERS
from recs.models import ModelVersion
from recs.training.pipeline import NoTrainingData, train_models
from recs.training.precompute import precompute_candidates
from recs.training.registry import promote

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("artifact_dir")]


def browse_after_buying(users=range(12)):
    """Each shopper views two products of their kind in the last two weeks, so that the test
    period has shoppers with an event after their first one (the evaluation reveals the first)."""
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import EventFactory

    for user in users:
        kind = ["LANTERN", "CANDLE"] if user % 2 else ["BAG", "TOTE"]
        for day, sku in zip((12, 6), kind, strict=True):
            EventFactory(
                event_id=f"b-{user}-{sku}", event_type="view", user_id=f"u{user}",
                product_sku=sku, session_id=f"s-{user}",
                occurred_at=timezone.now() - timedelta(days=day, hours=user),
            )  # fmt: skip


def test_training_registers_a_version_per_learner_with_metrics_and_a_verifiable_artifact(
    shop_history,
):
    browse_after_buying()
    run = train_models()
    versions = ModelVersion.objects.filter(training_run=run.run_id)
    assert sorted(v.key for v in versions) == sorted(LEARNERS)
    assert not run.failures
    for version in versions:
        assert {"recall@20", "ndcg@10", "hitrate@10", "coverage@10"} <= set(version.metrics)
        assert version.interactions == 60
        assert version.data_start < version.data_end
        with open(version.artifact_path, "rb") as artifact:
            assert hashlib.sha256(artifact.read()).hexdigest() == version.artifact_sha256
    # The first run has nothing to beat: every version serves.
    assert set(run.promoted) == set(LEARNERS)
    assert ModelVersion.objects.filter(status="serving").count() == len(LEARNERS)


def test_training_fills_the_candidate_cache_from_serving_versions(shop_history):
    train_models()
    user_list = [sku for sku, _ in store.read_list(redis_keys.user_list("u1"))]
    assert user_list, "an active user gets a precomputed list"
    assert not {"LANTERN", "CANDLE", "HOLDER"} & set(user_list), "bought items are not re-listed"
    similar = [sku for sku, _ in store.read_list(redis_keys.similar_cf_list("LANTERN"))]
    assert similar[:2] and set(similar[:2]) <= {"CANDLE", "HOLDER"}
    assert store.read_list(redis_keys.similar_content_list("TIN"))
    assert [sku for sku, _ in store.read_list(redis_keys.POPULAR_ALL)][:6]
    assert store.read_list(redis_keys.country_popular_list("United Kingdom"))
    meta = store.read_meta()
    assert meta["user"].startswith("hybrid#") and float(meta["generated_at"]) > 0


def test_a_retrained_version_is_promoted_only_when_it_beats_the_serving_one(shop_history):
    first = train_models(["popularity"])
    second = train_models(["popularity"])
    assert first.promoted == ["popularity"] and second.promoted == []
    serving = ModelVersion.objects.get(key="popularity", status="serving")
    assert serving.training_run == first.run_id
    challenger = ModelVersion.objects.get(training_run=second.run_id)
    promote(challenger)
    serving_now = ModelVersion.objects.get(key="popularity", status="serving")
    assert serving_now.pk == challenger.pk
    assert ModelVersion.objects.get(training_run=first.run_id).status == "retired"


def test_replacing_a_user_list_keeps_the_previous_one_as_last_known_good(shop_history):
    train_models(["hybrid"])
    before = store.read_list(redis_keys.user_list("u1"))
    store.write_lists([(redis_keys.user_list("u1"), [("TIN", 1.0)])])
    assert store.read_list(redis_keys.user_list("u1")) == [("TIN", 1.0)]
    assert store.read_list(redis_keys.last_known_good_list("u1")) == before


def test_precompute_without_serving_versions_writes_nothing(shop_history):
    assert precompute_candidates() == 0


def test_training_without_events_says_so():
    with pytest.raises(NoTrainingData):
        train_models()


def test_train_command_prints_each_version_and_the_run(shop_history, capsys):
    call_command("train", "--only", "popularity", "content")
    out = capsys.readouterr().out
    assert "popularity" in out and "content" in out and "peak memory" in out
    call_command("train", "--if-untrained")
    assert "not training" in capsys.readouterr().out


def test_admin_promotes_a_chosen_version_and_refuses_two_of_one_key(shop_history, admin_client):
    train_models(["popularity"])
    second = train_models(["popularity"])
    challenger = ModelVersion.objects.get(training_run=second.run_id)
    url = "/admin/recs/modelversion/"
    both = ModelVersion.objects.filter(key="popularity").values_list("pk", flat=True)
    response = admin_client.post(
        url, {"action": "promote_selected", "_selected_action": list(both)}, follow=True
    )
    assert "at most one version per model key" in response.content.decode()
    admin_client.post(url, {"action": "promote_selected", "_selected_action": [challenger.pk]})
    challenger.refresh_from_db()
    assert challenger.status == "serving"
    listing = admin_client.get(url)
    assert listing.status_code == 200 and "recall@20" in listing.content.decode().lower()


def test_train_if_untrained_refills_a_lost_cache_without_retraining(shop_history, capsys):
    call_command("train", "--only", "popularity")
    store.writer_client().flushdb()  # Redis restarted without persistence
    call_command("train", "--if-untrained")
    assert "refilled" in capsys.readouterr().out
    assert store.read_list(redis_keys.POPULAR_ALL)
    assert ModelVersion.objects.count() == 1


class _FailsToFit(LEARNERS["popularity"]):
    def fit(self, interactions, catalog):
        raise FloatingPointError("NaN in the factors")


def test_a_learner_that_fails_is_skipped_and_the_last_good_version_keeps_serving(
    shop_history, monkeypatch
):
    first = train_models(["popularity", "content"])
    good = ModelVersion.objects.get(key="popularity", status="serving")
    monkeypatch.setitem(LEARNERS, "popularity", _FailsToFit)
    second = train_models(["popularity", "content"])
    assert "FloatingPointError: NaN in the factors" in second.failures["popularity"]
    assert [v.key for v in second.versions] == ["content"], "the others still train"
    assert ModelVersion.objects.get(key="popularity", status="serving").pk == good.pk
    assert first.run_id != second.run_id and store.read_list(redis_keys.POPULAR_ALL)


def test_a_few_days_of_views_from_a_new_shop_train_every_learner(artifact_dir):
    """A shop that installed Aisle this week: six products, a few shoppers' views and one cart
    over three days, no orders, no descriptions. Training must not crash; it trains what the
    data supports and says which learners it skipped."""
    from tests.factories import EventFactory, ProductFactory, StockFactory

    for sku in ["A", "B", "C", "D", "E", "F"]:
        StockFactory(product=ProductFactory(sku=sku, title=sku))
    start = timezone.now() - timedelta(days=3)
    n = 0
    for shopper in range(4):
        for step, sku in enumerate(["A", "B", "C"] if shopper % 2 else ["D", "E", "F"]):
            n += 1
            EventFactory(
                event_id=f"v-{n}", event_type="view", user_id=f"u{shopper}", session_id=f"s{shopper}",
                product_sku=sku, occurred_at=start + timedelta(hours=shopper * 12 + step),
            )  # fmt: skip
    EventFactory(event_id="c-1", event_type="add_to_cart", user_id="", session_id="s1",
                 product_sku="B", occurred_at=start + timedelta(hours=20))  # fmt: skip
    run = train_models()  # the default holdout is longer than the whole history
    assert run.versions, "at least the popularity family trains on three days of views"
