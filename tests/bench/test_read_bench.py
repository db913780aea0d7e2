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
from bench.ingest import LagSample, SustainedRun
from bench.load import LoadResult
from bench.read import (
    answer_tallies,
    api_requests,
    bare_requests,
    page_requests,
    sync_model_requests,
)
from bench.serving import ContextPool, build_contexts
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
