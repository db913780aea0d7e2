"""Experiment traffic on the render path: logged by rec_id, shadows scored in the worker."""

import pytest

from merch.models import Experiment, Placement
from merch.services.experiments import (
    VariantSpec,
    create_experiment,
    kill_experiment,
    pause_experiment,
    ramp_experiment,
    start_experiment,
)
from recs import redis_keys
from recs.candidates import store
from recs.experiments.served import drain_served_log
from recs.experiments.shadow import score_shadows
from recs.experiments.tasks import queue_shadow_scoring
from recs.models import ServedList
from recs.serving.recommend import recommend
from recs.serving.served_log import context_message
from recs.serving.types import RecommendationContext

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(shop, django_capture_on_commit_callbacks):
    """Run an experiment service as the admin does: its commit reaches the readers."""

    def call(service, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return service(*args, **kwargs)

    return call


@pytest.fixture
def trending_test(run):
    store.write_lists([(redis_keys.TRENDING_ALL, [("B4", 3.0), ("C6", 2.0), ("K6", 1.0)])])
    experiment = run(
        create_experiment, "Trending on home", Placement.objects.get(key="home"),
        [VariantSpec("control", "popular", 0, is_control=True),
         VariantSpec("trending", "trending", 2), VariantSpec("shadow", "popular", 0, is_shadow=True)],
    )  # fmt: skip
    run(start_experiment, experiment)
    return experiment


def ask(session):
    return recommend(RecommendationContext(placement="home", session_id=session))


def test_served_lists_of_an_experiment_are_logged_and_drained(trending_test, settings):
    settings.AISLE = {**settings.AISLE, "SHADOW_SAMPLE_RATE": 0.0}
    results = [ask(f"s-{n}") for n in range(40)]
    assert store.writer_client().xlen(redis_keys.SERVED_LOG) == 40
    assert (
        drain_served_log(queue_shadow_scoring) == 40
        and store.writer_client().xlen(redis_keys.SERVED_LOG) == 0
    )
    logged = {row.rec_id: row for row in ServedList.objects.all()}
    for result in results:
        row = logged[result.rec_id]
        assert row.variant == result.variant and row.experiment_id == trending_test.pk
        assert row.skus == [item.sku for item in result.items]
        assert row.subject_id.startswith("session:s-")


def test_the_log_is_sent_without_a_reply_and_the_connection_stays_in_step(trending_test):
    """The served-list append is sent with CLIENT REPLY SKIP: the request waits for one reply
    (its read), and the next command on the same connection gets its own answer."""
    from bench.serving import counting_redis_sends
    from recs.serving import redis as serving_redis

    ask("s-warm")
    reader = serving_redis.reader_client()
    reader.set("aisle-test:after", "mine")
    with counting_redis_sends() as count:
        result = ask("s-1")
    assert result.variant and count.sends == 2, "the read, and the append sent alone"
    assert [reader.get("aisle-test:after") for _ in range(3)] == [b"mine"] * 3
    entries = store.writer_client().xrange(redis_keys.SERVED_LOG)
    assert result.rec_id in entries[-1][1][b"entry"].decode()


def test_ramping_takes_effect_on_the_next_request_and_keeps_shoppers_in(trending_test, run):
    sessions = [f"s-{n}" for n in range(300)]
    early = {s for s in sessions if ask(s).variant == "trending"}
    run(ramp_experiment, trending_test, 50)
    later = {s for s in sessions if ask(s).variant == "trending"}
    assert early <= later and len(later) > 100
    assert all(ask(s).items[0].sku == "B4" for s in list(later)[:5]), "trending lists shown"


def test_kill_sends_everyone_to_control_at_once_and_stops_logging(trending_test, run):
    run(ramp_experiment, trending_test, 100)
    assert ask("s-1").variant == "trending"
    run(kill_experiment, Experiment.objects.get(pk=trending_test.pk))
    store.writer_client().delete(redis_keys.SERVED_LOG)
    assert {ask(f"s-{n}").variant for n in range(20)} == {"default"}
    assert store.writer_client().xlen(redis_keys.SERVED_LOG) == 0


def test_paused_experiment_serves_control_to_everyone(trending_test, run):
    run(ramp_experiment, trending_test, 100)
    run(pause_experiment, Experiment.objects.get(pk=trending_test.pk))
    result = ask("s-1")
    assert result.variant == "default" and result.items[0].sku != "B4"


def test_a_variant_whose_model_has_no_lists_falls_back_to_control_and_says_so(shop, run):
    experiment = run(
        create_experiment, "EASE", Placement.objects.get(key="home"),
        [VariantSpec("control", "auto", 0, is_control=True), VariantSpec("ease", "ease", 100)],
    )  # fmt: skip
    run(start_experiment, experiment)
    result = recommend(RecommendationContext(placement="home", user_id="loyal"))
    assert result.variant == "control"
    assert "variant_unavailable:ease" in result.fallbacks


def test_shadow_variant_is_scored_for_the_same_request_and_never_shown(trending_test):
    result = ask("s-9")
    assert "shadow" not in {result.variant}
    entry = {"rec_id": result.rec_id, "served_at": result.served_at, "placement": "home",
             "experiment_id": trending_test.pk, "variant": result.variant, "subject_id": "session:s-9",
             "session_id": "s-9", "skus": [item.sku for item in result.items]}  # fmt: skip
    context = RecommendationContext(
        **context_message(RecommendationContext("home", session_id="s-9"))
    )
    assert score_shadows(context, entry, ["shadow"]) == 1
    shadow = ServedList.objects.get(is_shadow=True)
    assert shadow.shadow_of == result.rec_id and shadow.variant == "shadow" and shadow.skus
    # Scored again (an overlapping drain, a redelivery): still one shadow list.
    score_shadows(context, entry, ["shadow"])
    assert ServedList.objects.filter(is_shadow=True).count() == 1
