"""The synthetic event log: well-formed, consistent funnel, launches respected, skewed, repeatable."""

import csv
from collections import Counter, defaultdict
from dataclasses import replace
from io import StringIO
from itertools import pairwise

import pytest
from django.core.management import CommandError, call_command

from recs.datasets.synthetic.files import CATALOG_COLUMNS, EVENT_COLUMNS
from recs.datasets.synthetic.generate import generate
from recs.datasets.synthetic.options import SyntheticOptions

OPTIONS = SyntheticOptions(items=600, users=900, events=25_000, days=30, seed=7)


def read_rows(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    summary = generate(OPTIONS, folder / "events.csv", folder / "catalog.csv")
    return summary, folder / "events.csv", folder / "catalog.csv"


@pytest.fixture(scope="module")
def events(generated):
    return read_rows(generated[1])


@pytest.fixture(scope="module")
def catalog(generated):
    return {row["item_id"]: row for row in read_rows(generated[2])}


def test_events_csv_has_the_columns_and_ascending_integer_timestamps(generated, events):
    with open(generated[1], encoding="utf-8") as handle:
        assert handle.readline().strip() == ",".join(EVENT_COLUMNS)
    timestamps = [int(row["timestamp"]) for row in events]
    assert timestamps == sorted(timestamps)
    assert {row["event_type"] for row in events} == {"view", "add_to_cart", "purchase"}
    assert OPTIONS.start <= timestamps[0] and timestamps[-1] <= OPTIONS.end + 3 * 3600


def test_catalog_lists_every_item_with_title_category_price_and_launch(generated, catalog, events):
    with open(generated[2], encoding="utf-8") as handle:
        assert handle.readline().strip() == ",".join(CATALOG_COLUMNS)
    assert len(catalog) == OPTIONS.items
    row = catalog["i1"]
    assert row["title"].startswith("Item 1 ") and "/" in row["category"]
    assert float(row["price"]) > 0 and int(row["launched_at"]) < OPTIONS.start
    for event in events[:2000]:
        item = catalog[event["item_id"]]
        assert (event["category"], event["price"]) == (item["category"], item["price"])


def test_every_purchase_has_an_order_and_follows_a_view_and_cart_of_its_item_in_its_session(
    events,
):
    seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    orders_of_session: dict[str, set[str]] = defaultdict(set)
    purchases = 0
    for row in events:
        session, item, kind = row["session_id"], row["item_id"], row["event_type"]
        if kind == "purchase":
            purchases += 1
            assert row["order_id"]
            assert item in seen[session]["view"] and item in seen[session]["add_to_cart"]
            orders_of_session[session].add(row["order_id"])
        else:
            assert row["order_id"] == ""
        seen[session][kind].add(item)
    assert purchases > 100
    assert all(len(orders) == 1 for orders in orders_of_session.values())
    order_sessions = Counter(o for orders in orders_of_session.values() for o in orders)
    assert max(order_sessions.values()) == 1  # an order belongs to one session


def test_no_event_happens_before_its_item_was_launched(events, catalog):
    assert all(
        int(row["timestamp"]) >= int(catalog[row["item_id"]]["launched_at"]) for row in events
    )


def test_items_launched_during_the_log_appear_and_get_events(generated, events, catalog):
    summary = generated[0]
    new_items = {k for k, row in catalog.items() if int(row["launched_at"]) >= OPTIONS.start}
    assert len(new_items) == summary.items_launched_during_log > 0.05 * OPTIONS.items
    assert len(new_items & {row["item_id"] for row in events}) == summary.new_items_with_events
    assert summary.new_items_with_events > 0.5 * len(new_items)


def test_popularity_is_skewed(events):
    counts = sorted(Counter(row["item_id"] for row in events).values(), reverse=True)
    top_percent = sum(counts[: OPTIONS.items // 100]) / len(events)
    assert top_percent > 0.08  # eight times its share


def test_consecutive_views_of_a_session_are_mostly_related(events):
    views_by_session: dict[str, list[str]] = defaultdict(list)
    for row in events:
        if row["event_type"] == "view":
            views_by_session[row["session_id"]].append(row["category"])
    pairs = [(a, b) for views in views_by_session.values() for a, b in pairwise(views)]
    same = sum(a == b for a, b in pairs) / len(pairs)
    assert same > 0.6


def test_sizes_and_funnel_rates_are_roughly_as_asked(generated, events):
    summary = generated[0]
    assert abs(len(events) - OPTIONS.events) < 0.03 * OPTIONS.events
    assert summary.events == len(events)
    kinds = Counter(row["event_type"] for row in events)
    assert 0.07 < kinds["add_to_cart"] / kinds["view"] < 0.13
    assert 0.3 < kinds["purchase"] / kinds["add_to_cart"] < 0.5
    assert len({row["user_id"] for row in events}) == OPTIONS.users  # sessions enough for all
    sessions_per_user = Counter(
        user for user, _ in {(row["user_id"], row["session_id"]) for row in events}
    )
    assert max(sessions_per_user.values()) > 5 * (summary.sessions / OPTIONS.users)


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    small = SyntheticOptions(items=200, users=300, events=5000, days=20, seed=3)
    files = {}
    for name, options in (("a", small), ("b", small), ("c", replace(small, seed=4))):
        generate(options, tmp_path / name / "events.csv", tmp_path / name / "catalog.csv")
        files[name] = [(tmp_path / name / f).read_bytes() for f in ("events.csv", "catalog.csv")]
    assert files["a"] == files["b"]
    assert files["a"][0] != files["c"][0]


def test_command_writes_the_catalog_beside_the_output_and_prints_a_summary(tmp_path):
    out = StringIO()
    call_command(
        "generate_events", "--items", "100", "--users", "150", "--events", "3000", "--days", "14",
        "--seed", "1", "--output", str(tmp_path / "log" / "events.csv"), stdout=out,
    )  # fmt: skip
    assert (tmp_path / "log" / "catalog.csv").exists()
    rows = read_rows(tmp_path / "log" / "events.csv")
    assert abs(len(rows) - 3000) < 150
    text = out.getvalue()
    for label in (
        "add_to_cart",
        "purchase",
        "sessions",
        "orders",
        "launched during",
        "peak memory",
    ):
        assert label in text


def test_impossible_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError):
        SyntheticOptions(items=5)
    with pytest.raises(CommandError):
        call_command("generate_events", "--users", "0", "--output", str(tmp_path / "e.csv"))
