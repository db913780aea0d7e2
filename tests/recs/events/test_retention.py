"""recs.events.retention: old events archived to daily files and deleted; what they fed stays."""

import gzip
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from aisle.celery import beat_schedule
from aisle.conf import aisle_settings, check_event_retention
from recs import features, redis_clients, redis_keys
from recs.events import retention
from recs.events.records import EventRecord
from recs.events.retention import (
    archive_expired_events,
    archive_path,
    archived_days,
    erase_from_archive,
    last_archive_run,
    read_archive,
)
from recs.events.services import apply_event_batch
from recs.events.tasks import archive_expired_events_task
from recs.features.online import layout_is_current
from recs.features.rebuild import rebuild_online_store
from recs.models import Event
from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext

pytestmark = pytest.mark.django_db

# The last noon (UTC) that has passed: events a few minutes apart stay on one day.
NOW = (datetime.now(tz=UTC) - timedelta(hours=12)).replace(
    hour=12, minute=0, second=0, microsecond=0
)
OLD_DAY = (NOW - timedelta(days=200)).date()
OTHER_OLD_DAY = (NOW - timedelta(days=190)).date()


@pytest.fixture
def archive(settings, tmp_path):
    """Retention on (180 days), the archive in a directory of the test's own."""
    settings.AISLE = {
        **settings.AISLE,
        "EVENT_RETENTION_DAYS": 180,
        "EVENT_ARCHIVE_DIR": tmp_path / "archive",
    }
    return tmp_path / "archive"


def event(event_id, days_ago, *, event_type="view", user_id="u-1", sku="P1", **fields):
    return EventRecord(
        event_id=event_id,
        event_type=event_type,
        occurred_at=NOW - timedelta(days=days_ago),
        user_id=user_id,
        session_id=f"s-{user_id}",
        product_sku=sku,
        **fields,
    )


OLD = [
    event("old-1", 200),
    event("old-2", 200.01, event_type="click", sku="P2"),
    event("old-3", 200.02, user_id="u-2"),
    event(
        "old-4",
        190,
        event_type="purchase",
        sku="P2",
        quantity=2,
        price=Decimal("3.50"),
        order_id="o-1",
        country="United Kingdom",
        device="mobile",
        context={"page": "cart"},
    ),
    event("old-5", 190.01, user_id="u-2", sku="P3"),
]
NEW = [event("new-1", 178), event("new-2", 10, sku="P3"), event("new-3", 0.01, user_id="u-2")]


@pytest.fixture
def log(archive):
    apply_event_batch("b-old", OLD, rescore=False)
    apply_event_batch("b-new", NEW, rescore=False)


def by_id(records):
    return sorted(records, key=lambda record: record.event_id)


def archived_records():
    return by_id(record for _, path in archived_days() for record in read_archive(path))


def raw_lines(path):
    """Every line of the file as zcat shows it, duplicates included."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


# --- What goes, and where ----------------------------------------------------------------------


def test_events_older_than_the_window_are_archived_and_deleted_and_newer_ones_kept(log, archive):
    result = archive_expired_events(now=NOW)

    assert (result.archived, result.deleted, result.days) == (5, 5, 2)
    assert result.files == [archive_path(OLD_DAY), archive_path(OTHER_OLD_DAY)]
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["new-1", "new-2", "new-3"]
    assert [day for day, _ in archived_days()] == [OLD_DAY, OTHER_OLD_DAY]
    assert archive_path(OLD_DAY) == archive / f"events-{OLD_DAY:%Y-%m-%d}.jsonl.gz"


def test_the_archive_reads_back_the_same_records(log):
    archive_expired_events(now=NOW)

    assert archived_records() == by_id(OLD)
    purchase = next(r for r in read_archive(archive_path(OTHER_OLD_DAY)) if r.event_id == "old-4")
    assert purchase.price == Decimal("3.50") and purchase.quantity == 2
    assert purchase.occurred_at == NOW - timedelta(days=190)
    assert purchase.context == {"page": "cart"}


def test_each_line_is_the_queue_message_plus_when_and_in_which_batch_it_was_stored(log):
    archive_expired_events(now=NOW)

    (line,) = [m for m in raw_lines(archive_path(OTHER_OLD_DAY)) if m["event_id"] == "old-4"]
    assert line == {
        **OLD[3].to_message(),
        "received_at": line["received_at"],
        "ingest_batch_id": "b-old",
    }
    assert datetime.fromisoformat(line["received_at"]) > datetime.now(tz=UTC) - timedelta(minutes=5)


def test_a_day_is_written_and_deleted_in_chunks_each_a_gzip_member(log, monkeypatch):
    monkeypatch.setattr(retention, "ARCHIVE_CHUNK_ROWS", 2)
    monkeypatch.setattr(retention, "DELETE_BATCH_ROWS", 1)

    result = archive_expired_events(now=NOW)

    assert (result.archived, result.deleted) == (5, 5)
    assert len(list(retention._gzip_members(archive_path(OLD_DAY)))) == 2  # 2 + 1 rows
    assert archived_records() == by_id(OLD)


def test_nothing_goes_with_retention_off(log, settings):
    settings.AISLE = {**settings.AISLE, "EVENT_RETENTION_DAYS": 0}

    result = archive_expired_events(now=NOW)

    assert result.skipped and result.deleted == 0
    assert Event.objects.count() == 8 and archived_days() == []


def test_a_run_while_another_holds_the_lock_changes_nothing(log):
    redis_clients.worker_client().set(redis_keys.EVENT_ARCHIVE_LOCK, "another run")

    result = archive_expired_events(now=NOW)

    assert result.skipped == "another archive run holds the lock"
    assert Event.objects.count() == 8 and archived_days() == []


def test_the_lock_is_free_again_after_a_run(log):
    archive_expired_events(now=NOW)
    assert not redis_clients.worker_client().exists(redis_keys.EVENT_ARCHIVE_LOCK)


# --- Running again -----------------------------------------------------------------------------


def test_a_second_run_archives_nothing_twice(log):
    archive_expired_events(now=NOW)
    before = {path: path.read_bytes() for _, path in archived_days()}

    again = archive_expired_events(now=NOW)

    assert (again.archived, again.deleted, again.days) == (0, 0, 0)
    assert {path: path.read_bytes() for _, path in archived_days()} == before


def test_events_of_an_archived_day_that_arrive_later_join_its_file(log):
    archive_expired_events(now=NOW)
    apply_event_batch("b-late", [event("late-1", 200.03, sku="P9")], rescore=False)

    result = archive_expired_events(now=NOW)

    assert (result.archived, result.files) == (1, [archive_path(OLD_DAY)])
    assert [r.event_id for r in read_archive(archive_path(OLD_DAY))] == [
        "old-1", "old-2", "old-3", "late-1",
    ]  # fmt: skip


def test_a_run_stopped_between_write_and_delete_only_duplicates_lines(log, monkeypatch):
    def crash(ids):
        raise RuntimeError("worker lost")

    with monkeypatch.context() as patch:
        patch.setattr(retention, "_delete_rows", crash)
        with pytest.raises(RuntimeError):
            archive_expired_events(now=NOW)
    assert Event.objects.count() == 8  # written, not deleted

    result = archive_expired_events(now=NOW)

    assert result.deleted == 5 and Event.objects.count() == 3
    old_day_lines = [line["event_id"] for line in raw_lines(archive_path(OLD_DAY))]
    assert old_day_lines == ["old-1", "old-2", "old-3"] * 2  # the first day went twice
    assert archived_records() == by_id(OLD)  # read back once each


def test_a_torn_write_is_skipped_on_read_and_cut_off_before_the_next_append(log, caplog):
    archive_expired_events(now=NOW)
    path = archive_path(OLD_DAY)
    member = gzip.compress(b'{"event_id": "torn"}\n' * 50)
    with open(path, "ab") as handle:  # a run killed in the middle of writing a member
        handle.write(member[: len(member) // 2])

    assert [r.event_id for r in read_archive(path)] == ["old-1", "old-2", "old-3"]
    assert "torn gzip member" in caplog.text

    apply_event_batch("b-late", [event("late-1", 200.03)], rescore=False)
    archive_expired_events(now=NOW)

    assert [line["event_id"] for line in raw_lines(path)] == ["old-1", "old-2", "old-3", "late-1"]


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "events-2020-01-01.jsonl.gz"
    retention._append_member(path, [b'{"event_id": "a"}\n'])
    intact = path.read_bytes()

    def failing_disk(descriptor):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(retention.os, "fsync", failing_disk)  # written, but not on disk
    with pytest.raises(OSError):
        retention._append_member(path, [b'{"event_id": "b"}\n'])

    assert path.read_bytes() == intact


# --- What retention leaves alone ----------------------------------------------------------------


def redis_contents():
    """Every key of the engine's Redis and its value, but the archive run's own two keys."""
    client = redis_clients.worker_client()
    own = {redis_keys.EVENT_ARCHIVE_LAST_RUN.encode(), redis_keys.EVENT_ARCHIVE_LOCK.encode()}
    return {key: client.dump(key) for key in client.scan_iter() if key not in own}


def served(**fields):
    result = recommend(RecommendationContext(now_s=NOW.timestamp(), **fields))
    return result.tier, result.source, [(item.sku, item.reason) for item in result.items]


def test_features_popularity_and_recommendations_are_unchanged_by_the_archive(shop, archive):
    history = [event(f"loyal-{n}", 200 + n / 100, user_id="loyal", sku="B1") for n in range(8)]
    history += [event("loyal-new", 2, user_id="loyal", sku="C1", event_type="add_to_cart")]
    history += [event("loyal-newer", 1, user_id="loyal", sku="K1")]
    apply_event_batch("b-loyal", history, rescore=False)
    now_s = NOW.timestamp()
    user_before = features.get_online("user", "loyal", now_s=now_s)
    product_before = features.get_online("product", "B1", now_s=now_s)
    segment_before = features.get_online("segment", "all", now_s=now_s)
    pages_before = [
        served(placement="home", user_id="loyal", session_id="s-loyal"),
        served(placement="product_detail", product_sku="C1", session_id="s-x"),
    ]
    redis_before = redis_contents()

    assert archive_expired_events(now=NOW).deleted == 8

    assert redis_contents() == redis_before
    assert user_before["interaction_count"] == 10.0
    assert features.get_online("user", "loyal", now_s=now_s) == user_before
    assert features.get_online("product", "B1", now_s=now_s) == product_before
    assert features.get_online("segment", "all", now_s=now_s) == segment_before
    assert pages_before[0][0] == "collaborative"
    assert [
        served(placement="home", user_id="loyal", session_id="s-loyal"),
        served(placement="product_detail", product_sku="C1", session_id="s-x"),
    ] == pages_before


def test_a_rebuild_after_the_archive_replays_the_retained_window_only(log):
    archive_expired_events(now=NOW)

    assert rebuild_online_store() == 3
    interactions = features.get_online("user", "u-1", ["interaction_count"])
    assert interactions == {"interaction_count": 2.0}  # new-1, new-2; old-1, old-2 are archived


def test_a_rebuild_of_an_emptied_log_replays_nothing_and_marks_the_store_current(archive):
    apply_event_batch("b-old", OLD, rescore=False)
    archive_expired_events(now=NOW)

    assert Event.objects.count() == 0
    assert rebuild_online_store() == 0
    assert layout_is_current()


# --- Scheduling, the summary, the command -------------------------------------------------------


def test_beat_runs_the_archive_daily_only_when_retention_is_on():
    entry = beat_schedule({"EVENT_RETENTION_DAYS": 180})["archive-expired-events"]
    assert (
        entry["task"] == archive_expired_events_task.name == "recs.retention.archive_expired_events"
    )
    assert entry["options"]["queue"] == "default"
    assert "archive-expired-events" in beat_schedule()  # on by default: 180 days
    assert "archive-expired-events" not in beat_schedule({"EVENT_RETENTION_DAYS": 0})


def test_the_task_runs_the_archive(log):
    assert archive_expired_events_task() == 5  # now: the wall clock
    assert Event.objects.count() == 3


def test_the_last_run_is_kept_for_the_health_page(log):
    assert last_archive_run() is None

    archive_expired_events(now=NOW)

    last = last_archive_run()
    assert (last.archived, last.deleted, last.days, last.files) == (5, 5, 2, 2)
    assert last.cutoff == NOW - timedelta(days=180)
    assert last.finished_at > datetime.now(tz=UTC) - timedelta(minutes=5)


def test_the_command_lists_what_would_go_on_a_dry_run_and_archives_without_it(log, capsys):
    call_command("archive_events", "--dry-run")
    dry = capsys.readouterr().out
    assert f"{OLD_DAY}" in dry and f"{OTHER_OLD_DAY}" in dry
    assert "Would archive and delete 5 events of 2 days" in dry
    assert Event.objects.count() == 8 and archived_days() == []

    call_command("archive_events")
    done = capsys.readouterr().out
    assert "Archived 5 and deleted 5 events of 2 days" in done
    assert Event.objects.count() == 3


def test_an_archive_file_imports_back_with_import_events(log):
    """The lines use the log's own field names, which import_events understands; it rebuilds
    the context from the API's context keys, as the events API stores it."""
    archive_expired_events(now=NOW)
    path = archive_path(OTHER_OLD_DAY)

    call_command("import_events", str(path), "--allow-unknown-products", "--no-rebuild")

    fields = [name for name in retention.RECORD_FIELDS if name != "context"]
    restored = Event.objects.filter(event_id__startswith="old").order_by("event_id")
    assert list(restored.values_list(*fields)) == [
        tuple(getattr(record, name) for name in fields) for record in by_id(read_archive(path))
    ]


def test_the_archive_goes_under_var_by_default(settings):
    del settings.AISLE
    assert aisle_settings.EVENT_ARCHIVE_DIR.parts[-2:] == ("var", "event-archive")
    assert aisle_settings.EVENT_RETENTION_DAYS == 180


def test_a_window_shorter_than_training_and_ingest_need_is_a_startup_warning(settings):
    for days, warned in ((45, True), (60, True), (61, False), (180, False), (0, False)):
        settings.AISLE = {**settings.AISLE, "EVENT_RETENTION_DAYS": days}
        assert [w.id for w in check_event_retention(None)] == (["aisle.W001"] if warned else [])


def test_erasing_a_shopper_from_the_archive_rewrites_the_files_without_their_events(log):
    archive_expired_events(now=NOW)

    assert erase_from_archive("u-2", []) == 2  # old-3 and old-5; s-u-2 found in the archive

    assert [r.event_id for r in archived_records()] == ["old-1", "old-2", "old-4"]
    assert sorted(path.name for path in archive_path(OLD_DAY).parent.iterdir()) == [
        archive_path(OLD_DAY).name, archive_path(OTHER_OLD_DAY).name,
    ]  # fmt: skip
    assert erase_from_archive("u-2", ["s-u-2"]) == 0


def test_erasing_from_the_archive_takes_the_anonymous_events_of_the_shoppers_sessions(archive):
    before_login = event("anon-1", 200, user_id="")
    apply_event_batch("b-anon", [replace(before_login, session_id="s-u-7")], rescore=False)
    apply_event_batch("b-u7", [event("u7-1", 199, user_id="u-7")], rescore=False)
    apply_event_batch("b-other", [event("other-1", 200.01, user_id="u-8")], rescore=False)
    archive_expired_events(now=NOW)

    assert erase_from_archive("u-7", []) == 2

    assert [r.event_id for r in archived_records()] == ["other-1"]


def test_erasing_a_shopper_reaches_their_archived_events(log):
    from recs.erasure import erase_shopper

    archive_expired_events(now=NOW)

    record = erase_shopper("u-2", requested_by="test")

    assert record.counts["archived_events"] == 2
    assert [r.event_id for r in archived_records()] == ["old-1", "old-2", "old-4"]
