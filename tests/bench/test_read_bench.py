"""bench.read, faults, events and ingest: request builders and summaries (no timings)."""

import json
import pickle
from collections import Counter
from urllib.parse import parse_qs, urlparse

import pytest
from django.conf import settings

from aisle.conf import aisle_settings
from bench.events import EventStream, event_tallies
from bench.faults import Probe, ReadTallies, Sample, fallback_shares, first_sample_after
from bench.harness import gunicorn_worker_args
from bench.ingest import LagSample, SustainedRun
from bench.load import LoadResult
from bench.read import (
    DEFAULT_WORKER_MODELS,
    Cell,
    WorkerModel,
    answer_tallies,
    api_requests,
    bare_requests,
    choice_levels,
    chosen_model,
    goal_level,
    page_requests,
    parse_levels,
    parse_worker_models,
    redis_per_request,
    sync_model_requests,
)
from bench.serving import ContextPool, RedisServerStats, build_contexts
from bench.urls import BARE_PATH, SYNC_MODEL_PATH
from recs.shopper_session import signed_cookie_value

POOL = ContextPool(
    heavy_users=["17841", "14911"],
    products=["85123A", "22423", "47566", "84879"],
    categories=["home/candles-lights"],
    countries=["United Kingdom", "Germany"],
)


@pytest.mark.django_db
def test_each_shopper_keeps_its_own_address_and_device_on_every_target():
    contexts = build_contexts(POOL, per_tier=4)

    for builder in (api_requests, bare_requests, sync_model_requests):
        requests = builder(contexts)
        assert len(requests) == len(contexts)
        assert len({r[3]["X-Forwarded-For"] for r in requests}) == len(contexts)
    assert {r[1] for r in bare_requests(contexts)} == {BARE_PATH}
    api, sync = api_requests(contexts)[0], sync_model_requests(contexts)[0]
    assert parse_qs(urlparse(api[1]).query) == parse_qs(urlparse(sync[1]).query)
    assert sync[1].startswith(SYNC_MODEL_PATH + "?")


def test_page_requests_present_the_shoppers_stored_session():
    contexts = build_contexts(POOL, per_tier=3)
    keys = {c.context.session_id: f"key-{n}" for n, c in enumerate(contexts)}

    requests = page_requests(contexts, keys, POOL.products)

    for bench, (method, target, body, headers) in zip(contexts, requests, strict=True):
        assert (method, body) == ("GET", None)
        assert target.startswith("/p/") and target.removeprefix("/p/").rstrip("/") in POOL.products
        assert headers["Cookie"] == (
            f"{settings.SESSION_COOKIE_NAME}={keys[bench.context.session_id]}; "
            f"{aisle_settings.SHOPPER_SESSION_COOKIE}={signed_cookie_value(bench.context.session_id)}"
        )
        if bench.context.product_sku:
            assert target == f"/p/{bench.context.product_sku}/"


def test_answer_tallies_count_sources_fallbacks_and_empty_lists():
    served = json.dumps({"source": "user_list", "fallbacks": [], "items": [{"sku": "1"}]})
    fallback = json.dumps({"source": "fallback", "fallbacks": ["redis_down"], "items": []})

    assert answer_tallies(200, served.encode()) == {"source:user_list": 1}
    assert answer_tallies(200, fallback.encode()) == {
        "source:fallback": 1, "fallback:redis_down": 1, "empty": 1,
    }  # fmt: skip
    assert answer_tallies(500, b"oops") == {"status:500": 1}


def test_read_tallies_flag_answers_with_a_sold_out_product():
    tallies = ReadTallies(frozenset({"22423"}))
    body = json.dumps({"source": "trending", "items": [{"sku": "22423"}]}).encode()

    assert tallies(200, body)["sold_out_served"] == 1
    assert "sold_out_served" not in ReadTallies()(200, body)


def test_event_stream_makes_unique_valid_batches_and_pickles():
    stream = EventStream("k", "run1p0", ("17841", "14911"), ("85123A", "22423"), batch_size=5)

    batches = [json.loads(stream(i)[2])["events"] for i in range(20)]
    ids = [event["event_id"] for batch in batches for event in batch]

    assert len(ids) == len(set(ids)) == 100
    assert all(event_id.startswith("run1p0-") for event_id in ids)

    def shape(request):  # timestamps are "now"; the rest depends on the index only
        return [{**event, "ts": ""} for event in json.loads(request[2])["events"]]

    assert shape(stream(3)) == shape(stream(3))
    assert shape(pickle.loads(pickle.dumps(stream))(0)) == shape(stream(0))
    assert stream(0)[3]["Authorization"] == "Bearer k"
    assert {e["user_id"] for batch in batches for e in batch} <= {"", "17841", "14911"}


def test_event_tallies_count_accepted_events():
    assert event_tallies(202, b'{"accepted": 9, "rejected": [{"index": 3}]}') == {
        "accepted": 9, "rejected": 1,
    }  # fmt: skip
    assert event_tallies(503, b"{}") == {"status:503": 1}


def test_fallback_shares_are_per_answered_read():
    tallies = Counter({"source:user_list": 3, "source:fallback": 1, "fallback:redis_down": 1})

    assert fallback_shares(tallies) == {"fallback:redis_down": 0.25, "source:fallback": 0.25}
    assert fallback_shares(Counter()) == {}


def test_first_sample_after_measures_from_the_start_mark():
    samples = [
        Sample(at, 0, 0, 0, 0, Probe(at, 200, source, ()))
        for at, source in [(10.0, "user_list"), (12.0, "trending"), (15.0, "user_list")]
    ]

    assert first_sample_after(samples, 11.0, lambda s: s.probe.source == "user_list") == 4.0
    assert first_sample_after(samples, 16.0, lambda s: True) is None


def test_sustained_run_rates_and_lag():
    load = LoadResult(started=0.0, ended=10.0)
    load.tallies["accepted"] = 20000
    samples = [
        LagSample(0.0, 0, 0, None, 0.0),
        LagSample(5.0, 10, 9000, 0.5, 1800.0),
        LagSample(10.0, 20, 18000, 1.5, 1800.0),
        LagSample(12.0, 0, 20000, 2.0, 1000.0),  # after the load: draining
    ]
    run = SustainedRun(1, 2000.0, 10.0, load, samples, drain_s=2.0)

    assert run.posted_rate == 2000.0
    assert run.applied_rate == 1800.0
    assert run.max_queue == 20
    assert run.final_lag_s == 1.5
    assert run.lag_percentile(100) == 2.0


def test_the_default_worker_models_are_sync_and_gthread_with_keep_alive():
    sync, single, gthread = parse_worker_models(DEFAULT_WORKER_MODELS)

    assert (sync, single, gthread) == (
        WorkerModel("sync", 2, 1), WorkerModel("gthread", 2, 1), WorkerModel("gthread", 2, 4)
    )  # fmt: skip
    assert [sync.name, single.name, gthread.name] == ["sync:2", "gthread:2x1", "gthread:2x4"]
    assert single.keeps_alive and single.slots == 2
    assert (sync.keeps_alive, gthread.keeps_alive) == (False, True)
    assert (sync.slots, gthread.slots) == (2, 8)
    assert gthread.gunicorn_options == "--workers 2 --worker-class gthread --threads 4"
    assert sync.gunicorn_options == "--workers 2 --worker-class sync"
    assert parse_worker_models(" gthread:3 , sync:1,") == [
        WorkerModel("gthread", 3, 1), WorkerModel("sync", 1, 1),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "no worker model"),
        ("sync", "CLASS:WORKERS"),
        ("gthread:2x", "CLASS:WORKERS"),
        ("gthread:x4", "CLASS:WORKERS"),
        ("sync:2x4", "no threads"),
        ("gevent:2", "use one of"),
        ("sync:0", "at least 1"),
        ("sync:2,sync:2", "twice"),
    ],
)
def test_parse_worker_models_says_what_is_wrong(text, complaint):
    with pytest.raises(ValueError, match=complaint):
        parse_worker_models(text)


def test_gunicorn_worker_args_never_lets_gunicorn_switch_models():
    assert gunicorn_worker_args(2) == ["--workers", "2", "--worker-class", "sync"]
    with pytest.raises(ValueError):
        gunicorn_worker_args(2, "sync", threads=4)


def test_parse_levels():
    assert parse_levels("1,8, 32") == [1, 8, 32]
    for bad in ("", "0,8", "eight"):
        with pytest.raises(ValueError, match="concurrency"):
            parse_levels(bad)


def cell(model: str, target: str, clients: int, requests: int, *, errors: int = 0,
         redis: RedisServerStats | None = None) -> Cell:  # fmt: skip
    """A cell whose load ran 10 s: `requests` answered, req/s = requests / 10."""
    result = LoadResult(started=0.0, ended=10.0, errors=errors, concurrency=clients)
    result.latencies_s = [0.001] * requests
    return Cell(target, clients, result, model, redis)


def test_the_chosen_model_serves_the_api_fastest_over_the_goal_levels():
    models = parse_worker_models("sync:2,gthread:2x4")
    cells = [
        cell("sync:2", "API", 8, 500), cell("gthread:2x4", "API", 8, 400),
        cell("sync:2", "API", 32, 450), cell("gthread:2x4", "API", 32, 900),
        cell("sync:2", "bare view", 32, 9000),
    ]  # fmt: skip

    assert goal_level([1, 8, 32, 128]) == 32 and goal_level([1, 8]) == 8
    assert choice_levels([1, 8, 32, 128]) == [8, 32] and choice_levels([1, 4]) == [1, 4]
    assert chosen_model(cells, models, [8, 32]).name == "gthread:2x4", "1,300 against 950"
    assert chosen_model(cells, models, [8]).name == "sync:2"
    assert chosen_model([], models, [8, 32]).name == "sync:2"  # nothing measured: the first


def test_redis_per_request_divides_the_servers_counts_by_requests_sent():
    cells = [
        cell("m", "API", 8, 90, errors=10, redis=RedisServerStats(Counter(evalsha=100, get=50), 100)),
        cell("m", "API", 32, 100, redis=RedisServerStats(Counter(evalsha=100, get=150), 300)),
        cell("m", "API", 64, 100),  # not counted: left out
    ]  # fmt: skip

    reads, commands, per_command = redis_per_request(cells)

    assert cells[0].sent == 100
    assert cells[0].redis_commands_per_request == 1.5 and cells[0].redis_reads_per_request == 1.0
    assert cells[2].redis_commands_per_request is None
    assert (reads, commands) == (2.0, 2.0)
    assert per_command == {"evalsha": 1.0, "get": 1.0}
