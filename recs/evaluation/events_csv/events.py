"""The events CSV: its columns and kinds, read into the columns of Interactions.

An events CSV needs the columns user_id, item_id, event_type and timestamp; order_id,
session_id, category, price, country and quantity are optional, and any other column is
ignored. Files ending in .gz are read compressed.

timestamp: epoch seconds (integer or decimal), or ISO 8601 with a time zone
("2024-05-01T10:00:00Z", "2024-05-01 10:00:00+02:00", "2024-05-01 10:00:00 UTC"). A time
without a zone is an error: guessing one would shift every event. Numbers of 1e11 and more
would be after the year 5000 as seconds, so they are read as epoch milliseconds (as some
public logs store them).

event_type: any string. Names public logs use for the project's kinds are mapped to them,
compared case-blind with "-" and " " read as "_":

    view, views, pageview, page_view, detail, product_view, productview  -> view
    click, clicks                                                        -> click
    cart, addtocart, add_to_cart, add-to-cart, add                       -> add_to_cart
    purchase, purchases, transaction, buy, order                         -> purchase
    remove_from_cart, remove-from-cart, removefromcart                   -> remove_from_cart

Other kinds (favourite, rating, ...) are kept as written; learners give kinds they have no
weight for 0 unless configured to.

session_id: when some events have one and others do not, the ones without get sessions by
inactivity gap (SESSION_GAP_S), so that a few gaps do not throw the real sessions away.

The catalog that goes with the log is built in catalog.py.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recs.evaluation.events_csv.coding import CodeColumn, Growing, IdColumn
from recs.evaluation.events_csv.files import BadRecord, chunks, header
from recs.evaluation.events_csv.values import as_numbers, epoch_seconds, first_bad
from recs.learners.base import Interactions, sessions_by_gap

REQUIRED_COLUMNS = ("user_id", "item_id", "event_type", "timestamp")
OPTIONAL_COLUMNS = ("order_id", "session_id", "category", "price", "country", "quantity")

EVENT_KIND_SYNONYMS = {
    **dict.fromkeys(
        ("view", "views", "pageview", "page_view", "detail", "product_view", "productview"),
        "view",
    ),
    **dict.fromkeys(("click", "clicks"), "click"),
    **dict.fromkeys(("cart", "addtocart", "add_to_cart", "add"), "add_to_cart"),
    **dict.fromkeys(("purchase", "purchases", "transaction", "buy", "order"), "purchase"),
    **dict.fromkeys(("remove_from_cart", "removefromcart"), "remove_from_cart"),
}
# Event codes are int8 in Interactions.
MAX_EVENT_KINDS = 127
_CATEGORY_SEPARATOR = re.compile(r"\s*[>/]\s*")


def event_kind(name: str) -> str:
    """The project's kind for an event_type as written in a log (see the module docstring)."""
    stripped = name.strip()
    key = stripped.lower().replace("-", "_").replace(" ", "_")
    return EVENT_KIND_SYNONYMS.get(key, stripped)


def category_path(category: str) -> str:
    """'Home > Kitchen' and 'Home/Kitchen' -> 'Home/Kitchen' (empty parts dropped)."""
    return "/".join(part for part in _CATEGORY_SEPARATOR.split(category.strip()) if part)


@dataclass
class EventColumns:
    """What the events file holds, in file order: the Interactions columns and, for a catalog
    built from the log, each event's category code and price."""

    user_codes: np.ndarray
    item_codes: np.ndarray
    event_codes: np.ndarray
    timestamps: np.ndarray
    users: np.ndarray
    items: np.ndarray
    event_vocabulary: np.ndarray
    quantities: np.ndarray | None = None
    order_codes: np.ndarray | None = None
    session_codes: np.ndarray | None = None
    country_codes: np.ndarray | None = None
    countries: np.ndarray | None = None
    category_codes: np.ndarray | None = None
    categories: np.ndarray | None = None
    prices: np.ndarray | None = None

    def sort_by_time(self) -> None:
        """Stable sort of every per-event column by time, one column at a time (so memory
        grows by one column, not by all of them)."""
        times = self.timestamps
        if not len(times) or not np.any(times[1:] < times[:-1]):
            return
        order = np.argsort(times, kind="stable")
        for name in (
            "user_codes", "item_codes", "event_codes", "timestamps", "quantities", "order_codes",
            "session_codes", "country_codes", "category_codes", "prices",
        ):  # fmt: skip
            column = getattr(self, name)
            if column is not None:
                setattr(self, name, column[order])

    def interactions(self) -> Interactions:
        return Interactions.from_codes(
            user_codes=self.user_codes, item_codes=self.item_codes, event_codes=self.event_codes,
            timestamps=self.timestamps, users=self.users, items=self.items,
            event_vocabulary=self.event_vocabulary, quantities=self.quantities,
            order_codes=self.order_codes, session_codes=self.session_codes,
            country_codes=self.country_codes, countries=self.countries,
        )  # fmt: skip


_EVENT_STRINGS = (
    "user_id", "item_id", "event_type", "order_id", "session_id", "category", "country",
)  # fmt: skip


def read_events(path: Path, progress: bool) -> EventColumns:
    """Every event of the file, coded and sorted by time; a bad value raises BadRecord."""
    columns = header(path, REQUIRED_COLUMNS, OPTIONAL_COLUMNS)
    coders: dict[str, CodeColumn | IdColumn] = {
        name: IdColumn() if name in ("order_id", "session_id") else CodeColumn()
        for name in _EVENT_STRINGS
        if name in columns
    }
    coders["event_type"] = CodeColumn(np.int8)
    times, prices, quantities = Growing(np.float64), Growing(np.float64), Growing(np.int32)
    rows = 0
    for first, chunk, expected in chunks(path, columns, _EVENT_STRINGS, progress):
        for name, coder in coders.items():
            codes = coder.add(chunk[name], expected)
            if name in ("user_id", "item_id", "event_type") and (codes < 0).any():
                raise BadRecord(first + first_bad(codes < 0), f"{name} is empty")
            if name == "event_type" and len(coder.vocabulary) > MAX_EVENT_KINDS:
                raise ValueError(
                    f"{path} has over {MAX_EVENT_KINDS} different event types; no more are "
                    f"supported (the first ones: {', '.join(map(str, coder.vocabulary[:10]))})"
                )
        seconds = epoch_seconds(chunk["timestamp"], first, "timestamp", required=True)
        times.extend(seconds, expected)
        if "price" in columns:
            prices.extend(as_numbers(chunk["price"], first, "price"), expected)
        if "quantity" in columns:
            quantity = as_numbers(chunk["quantity"], first, "quantity", whole=True)
            quantities.extend(np.nan_to_num(quantity, nan=1.0).astype(np.int32), expected)
        rows += len(chunk)
    if not rows:
        raise ValueError(f"{path} has a header but no events")
    user_codes, users = coders.pop("user_id").finish(sort=True)
    item_codes, items = coders.pop("item_id").finish(sort=True)
    event_codes, kinds = coders.pop("event_type").finish(sort=True, rename=event_kind)
    events = EventColumns(
        user_codes=user_codes, item_codes=item_codes, event_codes=event_codes,
        timestamps=times.result(), users=users, items=items, event_vocabulary=kinds,
    )  # fmt: skip
    if "quantity" in columns:
        events.quantities = quantities.result()
    if "price" in columns:
        events.prices = prices.result()
    if "order_id" in coders:
        events.order_codes, _ = coders.pop("order_id").finish()
    if "country" in coders:
        events.country_codes, events.countries = coders.pop("country").finish(sort=True)
    if "category" in coders:
        events.category_codes, events.categories = coders.pop("category").finish(
            sort=True, rename=category_path
        )
        blank = np.flatnonzero(events.categories == "")
        if len(blank):
            events.category_codes[events.category_codes == blank[0]] = -1
    if "session_id" in coders:
        sessions, known_sessions = coders.pop("session_id").finish()
        unknown = sessions < 0
        if unknown.any():
            gap = sessions_by_gap(events.user_codes[unknown], events.timestamps[unknown])
            sessions[unknown] = gap + known_sessions
        events.session_codes = sessions
    events.sort_by_time()
    return events
