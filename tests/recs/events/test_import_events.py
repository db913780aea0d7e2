"""recs.events.importing and manage.py import_events: history files into the log, resumably."""

import gzip
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from recs.api.events import EventInSerializer
from recs.events.importing import rows
from recs.events.importing.log import link_sessions
from recs.events.importing.readers import ImportFileError
from recs.events.importing.run import import_events
from recs.features import get_online
from recs.models import Event, ImportCheckpoint, SessionLink
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

HEADER = "event_id,type,user_id,session_id,product_id,quantity,price,order_id,ts,country,device"


@pytest.fixture
def products():
    return [ProductFactory(sku=sku) for sku in ("P1", "P2", "P3")]


def write(tmp_path, name: str, lines: list[str]):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_events", *map(str, args), stdout=out)
    return out.getvalue()


def interactions(entity: str, entity_id: str) -> float:
    return get_online(entity, entity_id, ["interaction_count"])["interaction_count"]


def many_views(count: int, *, start: int = 0) -> list[str]:
    """Views of u<n mod 7> with event ids e<n>, a minute apart, in 2025."""
    return [
        f"e{n},view,u{n % 7},s{n % 7},P{1 + n % 3},,,,2025-03-01T{n // 60 % 24:02d}:{n % 60:02d}:00Z,,"
        for n in range(start, start + count)
    ]


# --- Formats and fields ----------------------------------------------------------------------


def test_csv_rows_are_stored_with_the_live_apis_fields(tmp_path, products):
    path = write(tmp_path, "events.csv", [
        HEADER,
        "e1,view,u1,s1,P1,,,,2024-02-01T10:00:00Z,Germany,mobile",
        "e2,purchase,u1,s1,P2,3,2.5,o-9,2024-02-01 10:05:00,,",
        "e3,search,,s2,,,,,1706781900,,",
    ])  # fmt: skip
    result = import_events(path)
    assert (result.rows_read, result.stored, result.rejected) == (3, 3, 0)
    view = Event.objects.get(event_id="e1")
    assert (view.event_type, view.user_id, view.session_id, view.product_sku) == (
        "view", "u1", "s1", "P1"
    )  # fmt: skip
    assert (view.country, view.device) == ("Germany", "mobile")
    assert view.context == {"country": "Germany", "device": "mobile"}
    assert view.occurred_at == datetime(2024, 2, 1, 10, tzinfo=UTC)
    purchase = Event.objects.get(event_id="e2")
    assert (purchase.quantity, purchase.price, purchase.order_id) == (3, Decimal("2.50"), "o-9")
    assert purchase.occurred_at == datetime(2024, 2, 1, 10, 5, tzinfo=UTC)  # naive means UTC
    assert Event.objects.get(event_id="e3").occurred_at == datetime(2024, 2, 1, 10, 5, tzinfo=UTC)


def test_jsonl_with_the_apis_nested_context_is_imported(tmp_path, products):
    lines = [
        {"event_id": "j1", "type": "add_to_cart", "user_id": 17850, "product_id": "P1",
         "ts": "2023-05-01T08:00:00+02:00", "context": {"device": "desktop", "placement": "home"}},
        {"event_id": "j2", "type": "purchase", "session_id": "s9", "product_id": "P2",
         "price": 4.95, "quantity": 2.0, "ts": 1682920800000},
    ]  # fmt: skip
    path = write(tmp_path, "events.jsonl", [json.dumps(line) for line in lines])
    result = import_events(path)
    assert (result.file_format, result.stored, result.rejected) == ("jsonl", 2, 0)
    cart = Event.objects.get(event_id="j1")
    assert cart.user_id == "17850"
    assert cart.quantity == 1  # as the API: a cart event without quantity is one
    assert cart.occurred_at == datetime(2023, 5, 1, 6, tzinfo=UTC)
    assert cart.context == {"device": "desktop", "placement": "home"}
    assert cart.device == "desktop"
    purchase = Event.objects.get(event_id="j2")
    assert (purchase.price, purchase.quantity) == (Decimal("4.95"), 2)
    assert purchase.occurred_at == datetime(2023, 5, 1, 6, tzinfo=UTC)  # epoch milliseconds


def test_gzipped_files_are_read_and_fingerprinted_as_they_are(tmp_path, products):
    path = tmp_path / "events.jsonl.gz"
    line = {"event_id": "z1", "type": "view", "user_id": "u1", "product_id": "P1", "ts": 1700000000}
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
    result = import_events(path)
    assert (result.file_format, result.stored) == ("jsonl", 1)
    assert import_events(path).already_complete


def test_column_mapping_reads_an_export_with_its_own_column_names(tmp_path, products):
    path = write(tmp_path, "export.csv", [
        "id,kind,customer,visit,article,when,channel",
        "x1,view,c1,v1,P1,2025-01-05T09:00:00Z,app",
        "x2,click,c2,v2,P2,2025-01-05T09:01:00Z,web",
    ])  # fmt: skip
    output = run(path, "--map", "id=event_id", "--map", "kind=type", "--map", "customer=user_id",
                 "--map", "visit=session_id", "--map", "article=product_id", "--map", "when=ts",
                 "--no-rebuild")  # fmt: skip
    assert "stored (new)" in output
    assert "ignored columns                           channel" in output
    event = Event.objects.get(event_id="x2")
    assert (event.event_type, event.user_id, event.session_id, event.product_sku) == (
        "click", "c2", "v2", "P2"
    )  # fmt: skip


def test_json_keys_are_mapped_like_csv_columns(tmp_path, products):
    line = {"uuid": "k1", "what": "view", "who": "u1", "sku": "P1", "at": "2025-01-01T10:00:00Z"}
    path = write(tmp_path, "export.ndjson", [json.dumps(line)])
    mapping = {"uuid": "event_id", "what": "type", "who": "user_id", "at": "ts"}
    result = import_events(path, mapping=mapping)
    assert (result.stored, result.ignored_columns) == (1, [])  # sku is an alias of product_id
    event = Event.objects.get(event_id="k1")
    assert (event.event_type, event.user_id, event.product_sku) == ("view", "u1", "P1")


def test_a_json_array_is_not_taken_for_json_lines(tmp_path):
    path = write(tmp_path, "events.json", ['[{"type": "view"}]'])
    with pytest.raises(ImportFileError, match="one JSON array"):
        import_events(path)


def test_the_events_csv_of_generate_events_imports_without_a_mapping(tmp_path, products):
    """item_id, event_type and timestamp (the evaluation format) are understood as they are."""
    path = write(tmp_path, "synthetic.csv", [
        "user_id,item_id,event_type,timestamp,session_id,order_id,category,price",
        "u1,P1,view,1735689711,178965,,home/decor,3.73",
        "u1,P1,purchase,1735689811,178965,7,home/decor,3.73",
    ])  # fmt: skip
    result = import_events(path)
    assert (result.stored, result.rejected, result.ignored_columns) == (2, 0, ["category"])
    assert Event.objects.filter(event_id__startswith="imp-", product_sku="P1").count() == 2


def test_an_explicit_mapping_wins_over_a_column_named_like_the_field(tmp_path, products):
    path = write(tmp_path, "both.csv", [
        "type,event_type,user_id,product_id,ts",
        "legacy,view,u1,P1,2025-01-05T09:00:00Z",
    ])  # fmt: skip
    with pytest.raises(ImportFileError, match="could both be 'type'"):
        import_events(path)
    result = import_events(path, mapping={"event_type": "type"})
    assert result.stored == 1
    assert Event.objects.get().event_type == "view"


# --- Bad input -------------------------------------------------------------------------------


def test_bad_rows_are_rejected_with_line_and_reason_while_the_rows_around_them_are_stored(
    tmp_path, products
):
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    path = write(tmp_path, "mixed.csv", [
        HEADER,
        "ok1,view,u1,,P1,,,,2019-06-01T10:00:00Z,,",  # years old: history has no maximum age
        "bad1,purchase,u1,,P1,1,,o1,2025-01-01T10:00:00Z,,",
        f"bad2,view,u1,,P1,,,,{future},,",
        "bad3,like,u1,,P1,,,,2025-01-01T10:00:00Z,,",
        f"bad4,view,{'u' * 65},,P1,,,,2025-01-01T10:00:00Z,,",
        "bad5,view,u1,,NOPE,,,,2025-01-01T10:00:00Z,,",
        "bad6,view,,,P1,,,,2025-01-01T10:00:00Z,,",
        "bad7,add_to_cart,u1,,P1,0,2.555,,yesterday,,",
        "bad8,view,u1,,P1,,,,2025-01-01T10:00:00Z",
        "ok2,view,u2,,P2,,,,2025-01-01T10:00:00Z,,",
    ])  # fmt: skip
    result = import_events(path, chunk_size=4)
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["ok1", "ok2"]
    assert (result.rows_read, result.stored, result.rejected) == (10, 2, 8)
    reasons = {(r.line, r.event_id): r.reason for r in result.rejections}
    assert reasons == {
        (3, "bad1"): "a purchase event needs a price",
        (4, "bad2"): "ts: is more than 300 s in the future",
        (5, "bad3"): 'type: "like" is not a valid choice.',
        (6, "bad4"): "user_id: Ensure this field has no more than 64 characters.",
        (7, "bad5"): "product_id: unknown product 'NOPE'",
        (8, "bad6"): "needs a user_id or a session_id",
        (9, "bad7"): "quantity: Ensure this value is greater than or equal to 1.; "
        "price: Ensure that there are no more than 2 decimal places.; "
        "ts: Datetime has wrong format. Use ISO 8601 (e.g. 2025-01-31T14:05:00Z) "
        "or epoch seconds.",
        (10, ""): "has 9 fields; the header has 11",
    }
    checkpoint = ImportCheckpoint.objects.get(kind="events", file_sha256=result.file_sha256)
    assert (checkpoint.rows_done, checkpoint.stored, checkpoint.skipped) == (10, 2, 8)


def test_the_summary_lists_rejections_with_their_line_numbers(tmp_path, products):
    path = write(tmp_path, "few.csv", [
        HEADER, "a,view,u1,,P1,,,,2025-01-01T10:00:00Z,,", "b,view,u1,,,,,,2025-01-01T10:00:00Z,,",
    ])  # fmt: skip
    output = run(path, "--no-rebuild")
    assert "rejected                                  1" in output
    assert "line 3 (event_id b): a view event needs a product_id" in output


def test_unknown_products_are_kept_when_allowed(tmp_path, products):
    path = write(tmp_path, "gone.csv", [HEADER, "g1,view,u1,,RETIRED,,,,2025-01-01T10:00:00Z,,"])
    assert import_events(path).rejected == 1
    result = import_events(path, allow_unknown_products=True, force=True)
    assert (result.stored, result.unknown_products_kept) == (1, 1)
    assert Event.objects.get().product_sku == "RETIRED"


def test_broken_json_lines_and_undecodable_bytes_cost_only_their_own_rows(tmp_path, products):
    path = tmp_path / "broken.jsonl"
    good = b'{"event_id": "%s", "type": "view", "user_id": "u1", "product_id": "P1", "ts": "2025-01-01T10:00:00Z"}\n'
    path.write_bytes(
        good % b"j1"
        + b"{not json\n"
        + b"[1, 2]\n"
        + b'{"event_id": "j9", "type": "view", "user_id": "caf\xe9", "product_id": "P1", "ts": "2025-01-01T10:00:00Z"}\n'
        + b'{"event_id": "j8", "type": "view", "user_id": "u1", "product_id": "P1", "ts": "2025-01-01", "context": "x"}\n'
        + b"\n"
        + good % b"j2"
    )  # fmt: skip
    result = import_events(path)
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["j1", "j2"]
    reasons = {r.line: r.reason for r in result.rejections}
    assert reasons[2].startswith("is not valid JSON")
    assert reasons[3] == "is not a JSON object"
    assert reasons[4] == "user_id: is not valid UTF-8."
    assert reasons[5] == "context: is not a JSON object"


@pytest.mark.parametrize(
    ("item", "valid"),
    [
        ({"type": "view", "user_id": "u", "product_id": "P1"}, True),
        ({"type": "search", "session_id": "s", "query": "mugs"}, True),
        ({"type": "purchase", "user_id": "u", "product_id": "P1", "price": "0"}, True),
        ({"type": "purchase", "user_id": "u", "product_id": "P1"}, False),
        ({"type": "view", "product_id": "P1"}, False),
        ({"type": "click", "user_id": "u"}, False),
        ({"type": "VIEW", "user_id": "u", "product_id": "P1"}, False),
        ({"type": "view", "user_id": "u", "product_id": "P" * 33}, False),
        ({"type": "view", "user_id": "u\x00", "product_id": "P1"}, False),
        ({"type": "view", "user_id": True, "product_id": "P1"}, False),
        ({"type": "view", "user_id": 42, "product_id": "P1"}, True),
        ({"type": "add_to_cart", "user_id": "u", "product_id": "P1", "quantity": "2.0"}, True),
        ({"type": "add_to_cart", "user_id": "u", "product_id": "P1", "quantity": 2.5}, False),
        ({"type": "add_to_cart", "user_id": "u", "product_id": "P1", "quantity": 10001}, False),
        ({"type": "purchase", "user_id": "u", "product_id": "P1", "price": "-1"}, False),
        ({"type": "purchase", "user_id": "u", "product_id": "P1", "price": "123456789"}, False),
        ({"type": "purchase", "user_id": "u", "product_id": "P1", "price": "NaN"}, False),
        ({"type": "purchase", "user_id": "u", "product_id": "P1", "price": "99999999.99"}, True),
        ({"type": "view", "user_id": "u", "product_id": "P1", "position": 0}, False),
        ({"type": "view", "user_id": "u", "product_id": "P1", "dwell_ms": -1}, False),
        ({"type": "view", "user_id": "u", "product_id": "P1", "device": "d" * 33}, False),
    ],
)
def test_a_row_is_valid_exactly_when_the_live_api_accepts_the_same_event(item, valid):
    ts = timezone.now() - timedelta(hours=1)  # recent enough for the API's maximum age
    api_item = {"event_id": "e1", **item, "ts": ts.isoformat()}
    context = {k: api_item.pop(k) for k in ("device", "position", "dwell_ms") if k in api_item}
    if context:
        api_item["context"] = context
    serializer = EventInSerializer(data=api_item)
    assert serializer.is_valid() is valid, serializer.errors
    latest = timezone.now() + timedelta(minutes=5)
    if valid:
        record = rows.validate_row({"event_id": "e1", **item, "ts": ts}, latest=latest)
        assert record == EventInSerializer.to_record(serializer.validated_data)
    else:
        with pytest.raises(rows.InvalidRow):
            rows.validate_row({"event_id": "e1", **item, "ts": ts}, latest=latest)


def test_a_file_that_cannot_be_read_fails_the_command(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run(tmp_path / "missing.csv")
    no_type = write(tmp_path, "no_type.csv", ["user_id,product_id,ts", "u1,P1,2025-01-01"])
    with pytest.raises(CommandError, match="no column for type"):
        run(no_type)
    with pytest.raises(CommandError, match="unknown field 'colour'"):
        run(no_type, "--map", "user_id=colour")
    with pytest.raises(CommandError, match="not in the file's columns"):
        run(no_type, "--map", "kind=type")
    empty = write(tmp_path, "empty.csv", [""])
    with pytest.raises(CommandError, match="empty"):
        run(empty)
    assert not ImportCheckpoint.objects.exists()


# --- Dedupe ----------------------------------------------------------------------------------


def test_a_completed_file_is_a_fast_no_op_that_says_so(tmp_path, products):
    path = write(tmp_path, "once.csv", [HEADER, *many_views(5)])
    run(path, "--no-rebuild")
    output = run(path)
    assert "was imported completely before: 5 rows, 5 stored. Nothing to do" in output
    assert Event.objects.count() == 5


def test_forcing_a_reimport_stores_nothing_twice(tmp_path, products):
    path = write(tmp_path, "again.csv", [HEADER, *many_views(5)])
    import_events(path)
    result = import_events(path, force=True)
    assert (result.rows_read, result.stored, result.duplicates) == (5, 0, 5)
    assert Event.objects.count() == 5


def test_an_overlapping_file_stores_only_the_events_not_in_the_log(tmp_path, products):
    import_events(write(tmp_path, "jan.csv", [HEADER, *many_views(30)]))
    result = import_events(write(tmp_path, "jan_feb.csv", [HEADER, *many_views(50, start=20)]))
    assert (result.stored, result.duplicates) == (40, 10)
    assert Event.objects.count() == 70


def test_repeated_event_ids_in_one_file_are_stored_once(tmp_path, products):
    path = write(tmp_path, "repeat.csv", [HEADER, *many_views(3), *many_views(3)])
    result = import_events(path, chunk_size=4)
    assert (result.stored, result.duplicates) == (3, 3)


def test_derived_ids_are_stable_across_runs_formats_and_exports(tmp_path, products):
    """Without an event_id column the same event gets the same id from any export of it."""
    first = write(tmp_path, "a.csv", [
        "type,user_id,product_id,price,quantity,ts",
        "purchase,u1,P1,3.5,1,2025-01-01T10:00:00Z",
        "view,u1,P2,,,2025-01-01T10:01:00Z",
        "view,u1,P2,,,2025-01-01T10:02:00Z",
    ])  # fmt: skip
    assert import_events(first).stored == 3
    ids = set(Event.objects.values_list("event_id", flat=True))
    assert all(event_id.startswith("imp-") and len(event_id) <= 64 for event_id in ids)
    assert import_events(first, force=True).stored == 0
    other_export = [  # other column order, epoch time, "3.50" for 3.5, a default quantity
        {"ts": 1735725600, "product_id": "P1", "user_id": "u1", "type": "purchase", "price": "3.50"},
        {"ts": "2025-01-01T11:01:00+01:00", "type": "view", "user_id": "u1", "product_id": "P2"},
        {"ts": "2025-01-01T10:03:00Z", "type": "view", "user_id": "u1", "product_id": "P2"},
    ]  # fmt: skip
    second = write(tmp_path, "b.jsonl", [json.dumps(line) for line in other_export])
    result = import_events(second)
    assert (result.stored, result.duplicates) == (1, 2)
    assert ids < set(Event.objects.values_list("event_id", flat=True))


# --- Resume ----------------------------------------------------------------------------------


class Interrupted(Exception):
    pass


def interrupt(chunk):
    raise Interrupted  # as Ctrl-C right after a chunk committed


def test_an_interrupted_import_resumes_and_stores_every_row_exactly_once(tmp_path, products):
    path = write(tmp_path, "big.csv", [HEADER, *many_views(95)])

    def stop_after_two_chunks(chunk):
        if chunk.number == 2:
            raise Interrupted  # as Ctrl-C after the second chunk committed

    with pytest.raises(Interrupted):
        import_events(path, chunk_size=20, on_chunk=stop_after_two_chunks)
    checkpoint = ImportCheckpoint.objects.get(kind="events")
    assert (checkpoint.rows_done, checkpoint.stored, checkpoint.completed_at) == (40, 40, None)
    assert Event.objects.count() == 40

    result = import_events(path, chunk_size=20)
    assert (result.resumed_from_row, result.rows_read, result.stored) == (40, 55, 55)
    assert Event.objects.count() == 95
    assert Event.objects.values("event_id").distinct().count() == 95
    checkpoint.refresh_from_db()
    assert checkpoint.completed_at is not None
    assert (checkpoint.rows_done, checkpoint.stored, checkpoint.skipped) == (95, 95, 0)
    assert import_events(path).already_complete


def test_a_crash_inside_a_chunk_rolls_that_chunk_back_and_the_rerun_redoes_it(
    tmp_path, products, monkeypatch
):
    path = write(tmp_path, "crash.csv", [HEADER, *many_views(50)])
    calls = []

    def crash_on_third_chunk(records):
        calls.append(1)
        if len(calls) == 3:
            raise Interrupted  # after the chunk's events were written, before its commit
        return link_sessions(records)

    monkeypatch.setattr("recs.events.importing.run.link_sessions", crash_on_third_chunk)
    with pytest.raises(Interrupted):
        import_events(path, chunk_size=10)
    assert Event.objects.count() == 20
    assert ImportCheckpoint.objects.get().rows_done == 20
    monkeypatch.setattr("recs.events.importing.run.link_sessions", link_sessions)
    result = import_events(path, chunk_size=10)
    assert (result.resumed_from_row, result.stored, Event.objects.count()) == (20, 30, 50)


def test_the_command_says_where_it_resumes(tmp_path, products):
    path = write(tmp_path, "resume.csv", [HEADER, *many_views(30)])
    with pytest.raises(Interrupted):
        import_events(path, chunk_size=10, on_chunk=interrupt)
    output = run(path, "--chunk-size", "10", "--no-rebuild")
    assert "Resuming after row 10 (the last committed chunk)." in output
    assert "whole file (all runs): rows / stored / skipped  30 / 30 / 0" in output


# --- Sessions and the online store -----------------------------------------------------------


def test_the_feature_store_is_rebuilt_from_the_log_after_an_import(tmp_path, products):
    path = write(tmp_path, "users.csv", [
        HEADER,
        "a1,view,,anon-1,P1,,,,2025-01-01T10:00:00Z,,",  # before logging in
        "a2,view,,anon-1,P2,,,,2025-01-01T10:01:00Z,,",
        "a3,add_to_cart,u-alice,anon-1,P2,,,,2025-01-01T10:02:00Z,,",  # logged in
        "b1,purchase,u-bob,,P3,2,9.99,o-1,2025-01-02T10:00:00Z,,",
    ])  # fmt: skip
    output = run(path)
    assert "Rebuilt the online feature store: 4 events" in output
    assert SessionLink.objects.get(session_id="anon-1").user_id == "u-alice"
    assert interactions("user", "u-alice") == 3  # the anonymous history counts for her
    assert interactions("user", "u-bob") == 1
    assert interactions("session", "anon-1") == 3


def test_no_rebuild_leaves_the_online_store_alone(tmp_path, products):
    path = write(tmp_path, "quiet.csv", [HEADER, *many_views(7)])
    output = run(path, "--no-rebuild")
    assert "not rebuilt (--no-rebuild)" in output
    assert Event.objects.count() == 7
    assert interactions("user", "u1") == 0
    assert SessionLink.objects.count() == 7


def test_session_links_keep_the_first_user_of_a_session(tmp_path, products):
    path = write(tmp_path, "links.csv", [
        HEADER,
        "l1,view,u-first,s-shared,P1,,,,2025-01-01T10:00:00Z,,",
        "l2,view,u-second,s-shared,P1,,,,2025-01-01T10:05:00Z,,",
    ])  # fmt: skip
    import_events(path, chunk_size=1)
    link = SessionLink.objects.get(session_id="s-shared")
    assert (link.user_id, link.linked_at) == ("u-first", datetime(2025, 1, 1, 10, tzinfo=UTC))


def test_an_old_export_does_not_bring_an_erased_shopper_back(tmp_path, products):
    """Erasure (recs.erasure) wins over a later import of events from before it."""
    from recs.erasure import erase_shopper

    path = tmp_path / "before.csv"
    path.write_text(
        "event_id,type,user_id,product_id,ts\n"
        "old-1,view,gone,P1,2024-01-01T10:00:00Z\n"
        "old-2,view,stays,P1,2024-01-01T10:00:00Z\n"
    )
    erase_shopper("gone", requested_by="test")
    result = import_events(path)
    assert result.erased == 1 and result.stored == 1
    assert list(Event.objects.values_list("user_id", flat=True)) == ["stays"]
