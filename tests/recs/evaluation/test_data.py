"""recs.evaluation.data and the event-log loader: files and the log become Interactions codes."""

import gzip
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.utils import timezone

from recs.evaluation.data import load_interactions_csv, load_online_retail
from recs.evaluation.events_csv import files
from recs.evaluation.events_csv.events import event_kind
from recs.models import Event, SessionLink
from recs.training.data import interactions_from_event_log

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z

FULL = f"""user_id,item_id,event_type,timestamp,order_id,session_id,category,price,country,quantity,note
u1,A,view,{T0},,s1,Home > Kitchen,2.50,GB,,ignored
u1,A,add_to_cart,{T0 + 60},,s1,,,GB,2,
u1,A,purchase,{T0 + 120},o1,s1,Home/Kitchen,2.00,GB,2,
u1,B,purchase,{T0 + 120},o1,s1,Garden,9.99,GB,1,
u2,B,view,{T0 + 30},,s2,,,,,
u2,C,click,{T0 + 90},,s3,Toys,,DE,,
"""


def write(tmp_path, text, name="events.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def readable(interactions):
    return list(
        zip(
            interactions.user_ids, interactions.item_ids, interactions.event_types,
            interactions.timestamps - T0, strict=True,
        )
    )  # fmt: skip


def test_a_csv_with_every_optional_column_becomes_sorted_codes(tmp_path):
    interactions, _ = load_interactions_csv(write(tmp_path, FULL), progress=False)
    assert readable(interactions) == [
        ("u1", "A", "view", 0), ("u2", "B", "view", 30), ("u1", "A", "add_to_cart", 60),
        ("u2", "C", "click", 90), ("u1", "A", "purchase", 120), ("u1", "B", "purchase", 120),
    ]  # fmt: skip
    assert list(interactions.users) == ["u1", "u2"] and list(interactions.items) == ["A", "B", "C"]
    assert list(interactions.quantities) == [1, 1, 2, 1, 2, 1]  # empty quantity is 1
    assert list(interactions.country_ids) == ["GB", "", "GB", "DE", "GB", "GB"]
    assert interactions.has_order_ids and interactions.has_session_ids
    orders = interactions.order_codes
    assert list(orders[:4]) == [-1] * 4 and orders[4] == orders[5] >= 0
    sessions = interactions.session_codes
    assert len({sessions[0], sessions[2], sessions[4], sessions[5]}) == 1  # s1
    assert len({sessions[0], sessions[1], sessions[3]}) == 3  # s1, s2, s3
    assert interactions.kinds_present() == {"view": 2, "add_to_cart": 1, "click": 1, "purchase": 2}


def test_event_type_synonyms_become_the_project_kinds_and_others_stay_as_written(tmp_path):
    names = ["pageview", "detail", "Product_View", "views", "addtocart", "add-to-cart", "cart",
             "Add", "transaction", "buy", "order", "purchase", "remove-from-cart", "click",
             "favourite"]  # fmt: skip
    rows = "".join(f"u,A,{name},{T0 + i}\n" for i, name in enumerate(names))
    interactions, _ = load_interactions_csv(
        write(tmp_path, "user_id,item_id,event_type,timestamp\n" + rows), progress=False
    )
    assert list(interactions.event_types) == (
        ["view"] * 4 + ["add_to_cart"] * 4 + ["purchase"] * 4
        + ["remove_from_cart", "click", "favourite"]
    )  # fmt: skip
    assert sorted(interactions.event_vocabulary) == [
        "add_to_cart", "click", "favourite", "purchase", "remove_from_cart", "view",
    ]  # fmt: skip
    assert event_kind(" Rating ") == "Rating"


def test_iso_times_with_a_zone_and_epoch_seconds_or_milliseconds_agree(tmp_path):
    rows = [
        "a,2023-11-14T22:13:20Z", "b,2023-11-14T23:13:20+01:00", "c,2023-11-14 22:13:20 UTC",
        f"d,{T0}", f"e,{T0}.0", f"f,{T0 * 1000}", "g,2023-11-14T22:13:20.000+0000",
    ]  # fmt: skip
    text = "user_id,item_id,event_type,timestamp\n" + "".join(
        f"{row.split(',')[0]},A,view,{row.split(',', 1)[1]}\n" for row in rows
    )
    interactions, _ = load_interactions_csv(write(tmp_path, text), progress=False)
    assert list(interactions.timestamps) == [float(T0)] * len(rows)


@pytest.mark.parametrize(
    "times",
    [("2023-11-14T22:13:20Z", "2023-11-14T22:14:20Z"),
     ("2023-11-14T23:13:20+01:00", "2023-11-14T23:14:20+01:00"),
     ("2023-11-14 22:13:20 UTC", "2023-11-14 22:14:20 UTC"),
     ("2023-11-14T23:13:20+01:00", "2023-11-15T00:14:20+02:00")],
    ids=["Z", "one offset", "UTC name", "two offsets"],
)  # fmt: skip
def test_a_file_of_iso_times_in_one_style_is_read_the_same(tmp_path, times):
    text = "user_id,item_id,event_type,timestamp\n" + "".join(f"u,A,view,{t}\n" for t in times)
    interactions, _ = load_interactions_csv(write(tmp_path, text), progress=False)
    assert list(interactions.timestamps) == [T0, T0 + 60]


BAD_FILES = [
    ("a time word", f"u,A,view,{T0}\nu,A,view,yesterday\n", 3,
     "timestamp 'yesterday' is neither epoch seconds nor ISO 8601 with a time zone"),
    ("a time without zone", "u,A,view,2023-11-14T22:13:20\n", 2,
     "timestamp '2023-11-14T22:13:20' has no time zone"),
    ("a date only", "u,A,view,2023-11-14\n", 2,
     "timestamp '2023-11-14' has no time zone"),
    ("a zone missing later", "u,A,view,2023-11-14T22:13:20Z\nu,A,view,2023-11-14 22:13\n", 3,
     "timestamp '2023-11-14 22:13' has no time zone"),
    ("infinity", f"u,A,view,{T0}\nu,A,view,inf\n", 3,
     "timestamp 'inf' is neither epoch seconds nor ISO 8601 with a time zone"),
    ("no time", f"u,A,view,{T0}\nu,A,view,\n", 3, "timestamp is empty"),
    ("no user", f"u,A,view,{T0}\n\n,A,view,{T0}\n", 4, "user_id is empty"),
    ("no item", f'u,A,view,{T0}\n"u\nstill u",A,view,{T0}\nu,,view,{T0}\n', 5, "item_id is empty"),
    ("no kind", f"u,A,,{T0}\n", 2, "event_type is empty"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "rows", "line", "problem"), BAD_FILES, ids=[c[0] for c in BAD_FILES]
)
def test_a_bad_value_is_reported_with_its_line_and_problem(tmp_path, case, rows, line, problem):
    path = write(tmp_path, "user_id,item_id,event_type,timestamp\n" + rows)
    with pytest.raises(ValueError) as raised:
        load_interactions_csv(path, progress=False)
    assert str(raised.value).startswith(f"{path}, line {line}: {problem}")


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [("price", "cheap", "price 'cheap' is not a number"),
     ("quantity", "1.5", "quantity '1.5' is not a whole number"),
     ("quantity", "two", "quantity 'two' is not a whole number")],
)  # fmt: skip
def test_a_price_or_quantity_that_is_not_a_number_names_its_line(tmp_path, column, value, problem):
    path = write(
        tmp_path,
        f"user_id,item_id,event_type,timestamp,{column}\nu,A,view,{T0},1\nu,B,view,{T0},{value}\n",
    )
    with pytest.raises(ValueError, match=re.escape(f"line 3: {problem}")):
        load_interactions_csv(path, progress=False)


def test_lines_are_counted_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_ROWS", 4)
    rows = "".join(f"u{i % 3},I{i % 5},view,{T0 + i}\n" for i in range(10))
    path = write(tmp_path, "user_id,item_id,event_type,timestamp\n" + rows + "u,A,view,soon\n")
    with pytest.raises(ValueError, match="line 12: timestamp 'soon' is neither"):
        load_interactions_csv(path, progress=False)


def test_chunks_share_one_vocabulary(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_ROWS", 2)
    interactions, catalog = load_interactions_csv(write(tmp_path, FULL), progress=False)
    monkeypatch.setattr(files, "CHUNK_ROWS", 1000)
    whole, _ = load_interactions_csv(write(tmp_path, FULL), progress=False)
    assert readable(interactions) == readable(whole)
    for name in ("user_codes", "item_codes", "event_codes", "session_codes", "order_codes"):
        assert list(getattr(interactions, name)) == list(getattr(whole, name)), name
    assert [item.sku for item in catalog] == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "is empty: expected a header line with user_id, item_id, event_type, timestamp"),
     (b"user_id,item_id,event_type,timestamp\n", "has a header but no events"),
     (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", "is not a CSV text file"),
     (b"user_id,item_id,event_type,timestamp\nu,\xff\xfe,view,1\n", "is not a CSV text file"),
     (b'user_id,item_id,event_type,timestamp\n"u,A,view,1\n', "is not a well-formed CSV file")],
    ids=["empty", "header only", "binary", "binary rows", "open quote"],
)  # fmt: skip
def test_a_file_that_is_empty_or_not_csv_says_so(tmp_path, content, problem):
    path = tmp_path / "events.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError) as raised:
        load_interactions_csv(path, progress=False)
    assert problem in str(raised.value) and str(path) in str(raised.value)


def test_missing_columns_are_named_with_what_is_needed_and_optional(tmp_path):
    path = write(tmp_path, "user_id,item,event_type,time\nu,A,view,1\n")
    with pytest.raises(ValueError) as raised:
        load_interactions_csv(path, progress=False)
    message = str(raised.value)
    assert "lacks the column(s) item_id, timestamp" in message
    assert "needed: user_id, item_id, event_type, timestamp" in message
    assert "optional: order_id, session_id, category, price, country, quantity" in message


def test_without_a_catalog_items_launch_at_their_first_event_with_the_last_known_facts(tmp_path):
    _, catalog = load_interactions_csv(write(tmp_path, FULL), progress=False)
    items = {item.sku: item for item in catalog}
    assert items["A"].launched_at == T0 and items["B"].launched_at == T0 + 30
    assert items["C"].launched_at == T0 + 90
    # The last non-empty category and price in time; both category spellings give one path.
    assert items["A"].category_path == "Home/Kitchen" and items["A"].price == 2.0
    assert items["B"].category_path == "Garden" and items["B"].price == 9.99
    assert items["C"].category_path == "Toys" and items["C"].price == 0.0
    assert items["A"].title == "A"


def test_a_catalog_file_gives_launch_dates_and_items_only_in_the_log_are_added(tmp_path):
    catalog_file = write(
        tmp_path,
        "item_id,title,category,price,launched_at,brand,stock\n"
        "A,Apron,Home > Kitchen,3.5,2020-01-01T00:00:00Z,Acme,9\n"
        "Z,Zither,Music,120,1600000000,,1\n"
        "B,,,,,,\n",
        name="catalog.csv",
    )
    _, catalog = load_interactions_csv(
        write(tmp_path, FULL), catalog_path=catalog_file, progress=False
    )
    assert [item.sku for item in catalog] == ["A", "Z", "B", "C"]
    items = {item.sku: item for item in catalog}
    assert items["A"].launched_at == datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    assert (items["A"].title, items["A"].brand, items["A"].price) == ("Apron", "Acme", 3.5)
    assert items["A"].category_path == "Home/Kitchen"
    assert items["Z"].launched_at == 1_600_000_000  # never in the log: kept as listed
    assert items["B"].launched_at == T0 + 30 and items["B"].title == "B"  # no date: first event
    assert items["C"].launched_at == T0 + 90 and items["C"].category_path == "Toys"  # log only


def test_a_bad_catalog_file_names_its_line(tmp_path):
    events = write(tmp_path, FULL)
    catalog_file = write(tmp_path, "item_id,launched_at\nA,2020-01-01\n", name="catalog.csv")
    with pytest.raises(
        ValueError, match=re.escape("catalog.csv, line 2: launched_at '2020-01-01' has no")
    ):
        load_interactions_csv(events, catalog_path=catalog_file, progress=False)
    write(tmp_path, "item_id\nA\nB\nA\n", name="catalog.csv")
    with pytest.raises(
        ValueError, match=re.escape("line 4: item_id 'A' is listed twice (first on line 2)")
    ):
        load_interactions_csv(events, catalog_path=catalog_file, progress=False)


def test_sessions_are_kept_and_events_without_one_get_sessions_by_inactivity(tmp_path):
    hour = 3600
    text = "user_id,item_id,event_type,timestamp,session_id\n" + "".join(
        f"{user},A,view,{T0 + at},{session}\n"
        for user, at, session in [
            ("u", 0, "s1"),
            ("u", 10, "s1"),
            ("v", 0, ""),
            ("v", 60, ""),
            ("v", 3 * hour, ""),
        ]
    )
    interactions, _ = load_interactions_csv(write(tmp_path, text), progress=False)
    assert interactions.has_session_ids
    by_user = {}
    for user, session in zip(interactions.user_ids, interactions.session_codes, strict=True):
        by_user.setdefault(user, []).append(int(session))
    assert by_user["u"][0] == by_user["u"][1]
    v = by_user["v"]
    assert v[0] == v[1] != v[2] and not set(v) & set(by_user["u"])


def test_a_gzipped_csv_is_read(tmp_path):
    path = tmp_path / "events.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(FULL)
    interactions, _ = load_interactions_csv(path, progress=False)
    assert len(interactions) == 6 and list(interactions.items) == ["A", "B", "C"]


def test_ids_that_look_like_numbers_or_missing_values_stay_as_written(tmp_path):
    text = f"user_id,item_id,event_type,timestamp\n007,NA,view,{T0}\n7,None,view,{T0}\n"
    interactions, _ = load_interactions_csv(write(tmp_path, text), progress=False)
    assert list(interactions.users) == ["007", "7"] and list(interactions.items) == ["NA", "None"]


RETAIL = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
    "536366,22423,REGENCY CAKESTAND 3 TIER,2,2011-07-01 10:00:00,12.75,13047.0,Germany\n"
    "536367,85123A,WHITE HANGING HEART T-LIGHT HOLDER,1,2011-07-02 10:00:00,2.55,13047.0,Germany\n"
)  # fmt: skip


def test_the_online_retail_loader_gives_purchases_and_a_dated_catalog(tmp_path):
    path = tmp_path / "retail.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(RETAIL)
    interactions, catalog = load_online_retail(path)
    assert list(interactions.item_ids) == ["85123A", "22423", "85123A"]
    assert list(interactions.user_ids) == ["17850", "13047", "13047"]
    assert set(interactions.event_types) == {"purchase"} and interactions.has_order_ids
    assert list(interactions.quantities) == [6, 2, 1]
    assert list(interactions.country_ids) == ["United Kingdom", "Germany", "Germany"]
    launched = {item.sku: item.launched_at for item in catalog}
    # 08:26 London time in winter is 08:26 UTC.
    assert launched["85123A"] == datetime(2010, 12, 1, 8, 26, tzinfo=UTC).timestamp()
    assert launched["22423"] == datetime(2011, 7, 1, 9, 0, tzinfo=UTC).timestamp()


@pytest.mark.django_db
def test_the_event_log_counts_linked_sessions_for_their_user_and_keeps_sessions():
    start = timezone.now() - timedelta(days=1)

    def event(n, user, session, sku, minutes, event_type="view", **fields):
        Event.objects.create(
            event_id=f"e{n}", event_type=event_type, user_id=user, session_id=session,
            product_sku=sku, occurred_at=start + timedelta(minutes=minutes), **fields,
        )  # fmt: skip

    SessionLink.objects.create(session_id="s-anon", user_id="alice", linked_at=start)
    event(1, "", "s-anon", "A", 0)
    event(2, "alice", "s-alice", "B", 1, "purchase", order_id="o1", quantity=3, country="GB")
    event(3, "", "s-guest", "C", 2, "add_to_cart")
    event(4, "bob", "", "A", 3)
    event(5, "bob", "", "B", 300)  # hours later: another session
    event(6, "bob", "s-bob", "C", 4, "search")  # not an interaction kind
    event(7, "bob", "s-bob", "", 5)  # no product
    interactions = interactions_from_event_log()
    assert list(interactions.user_ids) == ["alice", "alice", "session:s-guest", "bob", "bob"]
    assert list(interactions.item_ids) == ["A", "B", "C", "A", "B"]
    assert list(interactions.quantities) == [1, 3, 1, 1, 1]
    assert list(interactions.country_ids) == ["", "GB", "", "", ""]
    assert list(interactions.order_codes >= 0) == [False, True, False, False, False]
    sessions = interactions.session_codes
    assert interactions.has_session_ids and len(set(sessions)) == 5
    expected = (start + timedelta(minutes=1)).timestamp()
    assert interactions.timestamps[1] == pytest.approx(expected, abs=1e-6)
    assert np.all(np.diff(interactions.timestamps) >= 0)


@pytest.mark.django_db
def test_an_empty_event_log_gives_no_interactions():
    assert len(interactions_from_event_log()) == 0
