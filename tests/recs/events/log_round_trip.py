"""The event log's write, run as its own process against one database (test_log_round_trip).

`python -m tests.recs.events.log_round_trip` with DATABASE_URL, REDIS_URL and AISLE_VAR_DIR
naming the test's world: migrates, appends awkward events in two calls (the second repeats
some event ids and spans more than one statement), and prints one JSON object: the counts
each call returned, every stored row as the ORM reads it back, the ids found by user
through aisle.sql.in_values, and what two calls linking sessions returned and stored.
"""

import json
import os
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import django


def awkward_records(count: int, prefix: str) -> list:
    """Events whose values a hand-built write could garble: quotes, backslashes, non-ASCII,
    JSON-looking text, nested context, empty and missing values, offsets other than UTC."""
    from recs.events.records import EventRecord

    kinds = ["view", "click", "add_to_cart", "purchase"]
    start = datetime(2026, 11, 30, 23, 59, 59, 123456, tzinfo=UTC)
    records = []
    for n in range(count):
        offset = timezone(timedelta(hours=n % 5 - 2))
        records.append(
            EventRecord(
                event_id=f"{prefix}-{n}",
                event_type=kinds[n % 4],
                occurred_at=(start + timedelta(seconds=n)).astimezone(offset),
                user_id=["", "o'brien", 'say "hi"', "back\\slash", "Zoë ✓"][n % 5],
                session_id=f"s-{n % 7}" if n % 3 else "",
                product_sku=["SKU-1", "", '{"a": 1}', "ÄÖÜ", "a,b"][n % 5],
                quantity=None if n % 4 != 3 else n,
                price=None if n % 4 != 3 else Decimal("12.5") + n,
                order_id=f"o-{n}" if n % 4 == 3 else "",
                country=["", "United Kingdom", "Côte d'Ivoire"][n % 3],
                device=["", "mobile", "desktop"][n % 3],
                context={}
                if n % 2
                else {
                    "rec_id": f"r{n}",
                    "nested": {"list": [1, "two", None]},
                    "quote": 'it\'s "x"\\n',
                },
            )
        )
    return records


def main() -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.core.management import call_command

    from aisle.sql import in_values
    from recs.events.log import INSERT_CHUNK_SIZE, insert_events, insert_session_links
    from recs.models import Event, SessionLink

    call_command("migrate", interactive=False, verbosity=0)
    first = awkward_records(30, "e")
    # The second call repeats ten of the first's ids (the log keeps the first copies) and is
    # longer than one statement's chunk.
    second = first[:10] + awkward_records(INSERT_CHUNK_SIZE + 5, "f")
    counts = [insert_events(first, batch_id="b1"), insert_events(second, batch_id="b2")]
    rows = [
        {
            **row,
            "occurred_at": row["occurred_at"].isoformat(),
            "received_at": row["received_at"] is not None,
            "price": None if row["price"] is None else str(row["price"]),
        }
        for row in Event.objects.order_by("id").values()
    ]
    for row in rows:
        del row["id"]
    # The shared many-values lookup (aisle.sql.in_values) finds rows by the same awkward text.
    wanted = ["o'brien", 'say "hi"', "Zoë ✓", "nobody", ""]  # all users but back\\slash
    found = Event.objects.filter(user_id__in=in_values(wanted)).values_list("event_id", flat=True)
    # Session links: a session's first link is kept.
    first_links = insert_session_links({"s-1": "o'brien", "s-2": "Zoë ✓"})
    second_links = insert_session_links({"s-2": "someone else", "s-3": 'say "hi"'})
    links = dict(SessionLink.objects.values_list("session_id", "user_id"))
    return {
        "links": [first_links, second_links, links],
        "vendor": django.db.connection.vendor,
        "counts": counts,
        "rows": rows,
        "found_by_user": sorted(found),
    }


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
    sys.stdout.write("\n")
