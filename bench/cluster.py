"""The read and ingest scenario on one Redis and on a local 3-node Redis Cluster, side by side.

Each engine gets a world of its own: a scratch SQLite database, a plain redis-server (Django's
cache and Celery's broker, and in the one-server world also the engine's data), and in the
cluster world a 3-primary Redis Cluster on loopback ports holding the engine's data
(REDIS_CLUSTER=true). In each world the same steps run against the real servers: import a
subset of the shipped data set and train (candidate lists written to the engine), replay
shoppers' views, time recommend() in process and the API over HTTP (gunicorn), then post
events through the API while a Celery worker applies them to the feature store.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.harness import (
    BASE_DIR,
    LatencySummary,
    celery_worker_process,
    gunicorn_server,
    start_redis_server,
    wait_until,
    world_environment,
)
from bench.redis_cluster import local_redis_cluster
from recs import redis_keys

ENGINES = ("single", "cluster")


# --- The worlds (outer process)


@contextmanager
def engine_world(engine: str) -> Iterator[dict[str, str]]:
    """The environment of a world whose engine Redis is one server or a local cluster; removes
    it all afterwards."""
    workdir = tempfile.mkdtemp(prefix=f"aisle-bench-{engine}-")
    plain, port = start_redis_server(workdir)
    try:
        env = world_environment(
            workdir,
            RECOMMENDATIONS_THROTTLE_RATE="100000000/min",
            SERVER_KEY_THROTTLE_RATE="100000000/min",
            TRUSTED_PROXY_COUNT="1",
        )
        plain_url = f"redis://127.0.0.1:{port}"
        if engine == "single":
            env["REDIS_URL"] = f"{plain_url}/0"
            yield env
            return
        with local_redis_cluster(nodes=3) as cluster:
            env.update(
                REDIS_CLUSTER="true",
                REDIS_URL=cluster.url,
                CACHE_URL=f"{plain_url}/1",
                CELERY_BROKER_URL=f"{plain_url}/0",
            )
            yield env
    finally:
        plain.terminate()
        plain.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def run_world(engine: str, args: list[str], result_path: Path) -> int:
    """Migrate and run the scenario (`bench_cluster --inner`) in a fresh world of `engine`."""
    with engine_world(engine) as env:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=BASE_DIR, env=env, check=True,
        )  # fmt: skip
        return subprocess.call(
            [sys.executable, "manage.py", "bench_cluster", "--inner", "--engine", engine,
             "--result-file", str(result_path), *args],
            cwd=BASE_DIR, env=env,
        )  # fmt: skip


# --- The scenario (inner process, inside a world)


@dataclass
class EngineResult:
    engine: str
    nodes: int
    import_rows: int
    products: int
    candidate_lists: int
    import_train_s: float
    recommend: LatencySummary
    recommend_sources: dict[str, int]
    recommend_fallback_share: float  # answers that came from the Redis-down fallback
    http: LatencySummary
    http_throughput: float
    http_statuses: dict[str, int]
    http_fallback_share: float
    ingest_posted_s: float
    ingest_accepted: int
    ingest_accept_rate: float  # events/s accepted by the API
    ingest_applied: int
    ingest_applied_rate: float  # events/s from the first post to the last applied
    ingest_mean_lag_s: float  # queue -> applied in the feature store, mean over events
    ingest_post_latency: LatencySummary
    apply_rate: float  # apply_event_batch in one process, events/s
    pipeline_25_gets: LatencySummary  # one pipelined round trip of 25 GETs of list keys
    script_calls_per_event: float
    markers_per_event: float
    keys_per_node: list[int]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "EngineResult":
        for name in ("recommend", "http", "ingest_post_latency", "pipeline_25_gets"):
            data[name] = LatencySummary(**data[name])
        return cls(**data)


def _engine_nodes(client) -> list:
    from recs import redis_clients

    if redis_clients.is_cluster(client):
        return [node.redis_connection for node in client.get_primaries()]
    return [client]


def _script_calls(client) -> int:
    return sum(
        node.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
        for node in _engine_nodes(client)
    )


def _markers(client) -> int:
    return sum(
        sum(1 for _ in node.scan_iter(match=redis_keys.EVENT_MARKER_PREFIX + "*", count=1000))
        for node in _engine_nodes(client)
    )


def _applied_total(client) -> int:
    return int(float(client.hget(redis_keys.EVENTS_METRICS, "applied_total") or 0))


def _lag_totals(client) -> tuple[int, float]:
    raw = client.hgetall(redis_keys.EVENTS_METRICS)
    return int(float(raw.get(b"applied_total", 0))), float(raw.get(b"lag_seconds_total", 0.0))


def time_pipeline(client, keys: list[str], rounds: int = 2000) -> LatencySummary:
    """One pipelined round trip of GETs, as the render path's first round trip makes it."""
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        pipe.execute()
        seconds.append(time.perf_counter() - started)
    return LatencySummary.of(seconds)


def run_scenario(
    *, engine: str, import_limit: int, contexts_per_tier: int, requests: int,
    http_requests: int, ingest_seconds: float, ingest_batch: int, say,
) -> EngineResult:  # fmt: skip
    """Everything measured in one world (settings already point at its engine)."""
    from bench import events as events_bench
    from bench import serving as serving_bench
    from bench.load import run_http_load
    from recs import redis_clients
    from recs.api_keys import create_api_key
    from recs.serving import redis as serving_redis

    client = redis_clients.worker_client()
    nodes = len(_engine_nodes(client))
    say(f"[{engine}] engine Redis: {nodes} node(s); importing {import_limit:,} rows and training")
    started = time.perf_counter()
    world = serving_bench.load_world(import_limit)
    import_train_s = time.perf_counter() - started
    say(
        f"[{engine}]   {world.products:,} products, {world.candidate_lists:,} candidate lists in "
        f"{import_train_s:.0f} s"
    )
    pool = serving_bench.pool_from_world()
    contexts = serving_bench.build_contexts(pool, contexts_per_tier)
    serving_bench.replay_views(contexts)

    # Reads: recommend() in this process, then the API over HTTP (gunicorn, 2 sync workers).
    samples = serving_bench.measure_recommend(
        contexts, requests=requests, warmup=min(300, requests), max_seconds=60
    )
    sources: dict[str, int] = {}
    for outcome in samples.outcomes:
        sources[outcome.source] = sources.get(outcome.source, 0) + 1
    fallback_share = sources.get("fallback", 0) / max(len(samples.outcomes), 1)
    say(f"[{engine}]   recommend(): {_summary_line(samples.summary)}; sources {sources}")
    list_keys = [redis_keys.similar_content_list(sku) for sku in dict.fromkeys(pool.products)][:25]
    reader = serving_redis.reader_client()
    pipeline_25_gets = time_pipeline(reader, list_keys)
    say(f"[{engine}]   a pipeline of 25 GETs: {_summary_line(pipeline_25_gets)}")

    def inspect(status: int, body: bytes) -> dict[str, int]:
        try:
            return {"fallback": int(json.loads(body).get("source") == "fallback")}
        except ValueError:
            return {"unreadable": 1}

    calls = [
        (
            "GET",
            serving_bench.api_url(c.context),
            None,
            {"X-Forwarded-For": c.client_ip, **serving_bench.api_headers()},
        )
        for c in contexts
    ]
    with gunicorn_server(workers=2) as base_url:
        run_http_load(base_url, calls, concurrency=2, requests=min(200, http_requests))
        http = run_http_load(base_url, calls, concurrency=2, requests=http_requests,
                             duration_s=60, inspect=inspect)  # fmt: skip
        http_summary = LatencySummary.of(http.latencies_s)
        say(
            f"[{engine}]   API over HTTP: {_summary_line(http_summary)}; "
            f"{http.throughput:,.0f} req/s; statuses {dict(http.statuses)}"
        )

        # Ingest: events through the API, applied by a Celery worker while they arrive.
        _, key = create_api_key("bench-cluster", "secret", ["write"])
        skus = list(dict.fromkeys(pool.products))[:2000]
        calls_before = _script_calls(client)
        markers_before = _markers(client)
        lag_before = _lag_totals(client)
        with celery_worker_process("events", concurrency=2):
            time.sleep(2.0)  # the worker connects to the broker
            posted_at = time.perf_counter()
            ingest = events_bench.measure_http_ingest(
                base_url, key, skus, batch_size=ingest_batch, clients=2,
                duration_s=ingest_seconds, users=5000, max_requests_per_client=2000,
            )  # fmt: skip
            target = lag_before[0] + ingest.accepted
            drained = wait_until(lambda: _applied_total(client) >= target, 120, 0.05)
            applied_s = time.perf_counter() - posted_at
        applied, lag_total = _lag_totals(client)
        applied -= lag_before[0]
        lag_total -= lag_before[1]
        script_calls = _script_calls(client) - calls_before
        markers = _markers(client) - markers_before
    say(
        f"[{engine}]   ingest: {ingest.accepted:,} events accepted at "
        f"{ingest.events_per_s:,.0f}/s; applied {applied:,} "
        f"({'all' if drained else 'NOT all'}) at {applied / applied_s:,.0f}/s; mean lag "
        f"{lag_total / max(applied, 1) * 1000:.0f} ms; {script_calls / max(applied, 1):.1f} "
        f"script calls per event"
    )
    apply_rate = events_bench.measure_inprocess_apply(skus, batches=6, batch_size=500, users=5000)
    say(f"[{engine}]   apply_event_batch in one process: {apply_rate:,.0f} events/s")
    keys_per_node = [node.dbsize() for node in _engine_nodes(client)]
    return EngineResult(
        engine=engine,
        nodes=nodes,
        import_rows=import_limit,
        products=world.products,
        candidate_lists=world.candidate_lists,
        import_train_s=import_train_s,
        recommend=samples.summary,
        recommend_sources=sources,
        recommend_fallback_share=fallback_share,
        http=http_summary,
        http_throughput=http.throughput,
        http_statuses={str(k): v for k, v in sorted(http.statuses.items())},
        http_fallback_share=http.tallies.get("fallback", 0) / max(http.requests, 1),
        ingest_posted_s=ingest.duration_s,
        ingest_accepted=ingest.accepted,
        ingest_accept_rate=ingest.events_per_s,
        ingest_applied=applied,
        ingest_applied_rate=applied / applied_s if applied_s else 0.0,
        ingest_mean_lag_s=lag_total / max(applied, 1),
        ingest_post_latency=ingest.latency,
        apply_rate=apply_rate,
        pipeline_25_gets=pipeline_25_gets,
        script_calls_per_event=script_calls / max(applied, 1),
        markers_per_event=markers / max(applied, 1),
        keys_per_node=keys_per_node,
    )


def _summary_line(summary: LatencySummary) -> str:
    return (
        f"n={summary.count:,} p50 {summary.p50_ms:.2f} p95 {summary.p95_ms:.2f} "
        f"p99 {summary.p99_ms:.2f} ms"
    )
