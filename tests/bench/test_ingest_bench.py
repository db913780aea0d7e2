"""bench_ingest: the report's verdicts and the records its streams queue (no timings)."""

from bench.events import EventStream
from bench.management.commands.bench_ingest import Command


def world(database: str, one_process_500: float, worst_lag: float | None) -> dict:
    drain = {"worker_processes": 1, "events": 30000, "drained": True}
    return {
        "database": database, "version": "1", "inprocess_rate": 1.0, "duration_s": 30.0,
        "drains": [{**drain, "batch_size": 100, "applied_rate": 1000.0},
                   {**drain, "batch_size": 500, "applied_rate": one_process_500}],
        "sustained": [{
            "worker_processes": 2, "target_rate": 5000.0, "posted_rate": 4900.0,
            "applied_rate": 4800.0, "max_queue": 3, "lag_p50_s": 0.1, "lag_p95_s": 0.2,
            "lag_max_s": 0.3, "lag_max_under_load_s": worst_lag, "final_lag_s": 0.1,
            "drain_s": 0.5, "samples": [],
        }],
    }  # fmt: skip


def report(*worlds: dict) -> str:
    command = Command()
    command.load_at_start = command.load_at_end = 0.0
    command.command = "python manage.py bench_ingest"
    return command.report(list(worlds), [], duration=30.0, sustained_batch=100, clients=4,
                          web_workers=2)  # fmt: skip


def test_verdicts_follow_each_databases_target_and_the_best_batch_size():
    text = report(world("sqlite", 3100.0, 0.4), world("postgresql", 4900.0, 1.5))
    assert "SQLite: one worker process >= 3,000 events/s: met (best 3,100" in text
    assert "PostgreSQL: one worker process >= 5,000 events/s: NOT met (best 4,900" in text
    assert "SQLite: lag under 1 s with 2 processes at 5,000 events/s posted: met" in text
    assert "PostgreSQL: lag under 1 s with 2 processes at 5,000 events/s posted: NOT met" in text
    assert "SQLite 1, PostgreSQL 1" in text


def test_a_run_without_lag_samples_is_not_met():
    assert "posted: NOT met" in report(world("sqlite", 3100.0, None))


def test_the_drain_queues_the_records_the_api_would_make():
    stream = EventStream("key", "p", ("u1", "u2"), ("S1", "S2"), 5, customer_share=0.5)
    records = stream.records(3)
    assert [r.event_id for r in records] == [e["event_id"] for e in stream.events(3)]
    again = stream.records(3)
    assert [(r.event_id, r.event_type, r.user_id) for r in records] == [
        (r.event_id, r.event_type, r.user_id) for r in again
    ], "a batch holds the same events every time it is built (times are relative to now)"
    assert all(r.product_sku in ("S1", "S2") for r in records)


def test_the_report_says_where_the_cores_went_and_what_the_target_would_need():
    sqlite = world("sqlite", 3100.0, 2.0)
    sqlite["sustained"][0]["cpu"] = {
        "load clients and bench": 10.0, "web (gunicorn)": 98.0, "event workers": 72.0,
        "Redis": 24.0, "PostgreSQL": 0.0, "machine": 195.0,
    }  # fmt: skip
    text = report(sqlite)
    assert "| SQLite | 5,000 | 2 | 10 | 98 | 72 | 24 | 0 | 195 | 200 | 150 |" in text
    # (10 + 98) / 4,900 + (72 + 24 + 0) / 4,800 per event, times 5,000: 1.1 + 1.0 cores.
    assert "5,000 events/s posted and applied would need 2.1 cores" in text


def test_a_run_without_drains_gives_no_one_process_verdict():
    text = report({**world("postgresql", 0.0, 2.0), "drains": []})
    assert "one worker process" not in text
