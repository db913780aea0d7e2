"""Training data from the event log (the offline store) and the catalog (via merch selectors)."""

from collections.abc import Iterable
from itertools import islice

import numpy as np
import pandas as pd

from merch.selectors.catalog import product_summaries
from recs.evaluation.data import column_codes
from recs.learners.base import CatalogItem, Interactions, sessions_by_gap
from recs.models import Event, SessionLink

TRAINING_EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")
# Rows fetched from the database at a time.
BATCH_ROWS = 20000


def interactions_from_event_log() -> Interactions:
    """Every interaction event; anonymous events of a linked session count for its user, and
    those of an unlinked one for "session:<id>". Sessions are the logged ones; events without a
    session id get sessions by inactivity gap."""
    links = dict(SessionLink.objects.values_list("session_id", "user_id"))
    rows = Event.objects.filter(event_type__in=TRAINING_EVENT_TYPES).exclude(product_sku="")
    columns = rows.values_list(
        "user_id",
        "session_id",
        "product_sku",
        "event_type",
        "occurred_at",
        "quantity",
        "order_id",
        "country",
    )
    # Rows are only gathered here, a batch at a time turned into columns by zip (in C); every
    # transformation below is vectorised.
    raw: tuple[list, ...] = ([], [], [], [], [], [], [], [])
    rows_left = columns.iterator(chunk_size=BATCH_ROWS)
    while batch := list(islice(rows_left, BATCH_ROWS)):
        for column, values in zip(raw, zip(*batch, strict=True), strict=True):
            column.extend(values)
    user_ids, session_ids, skus, event_types, occurred_at, quantities, orders, countries = raw
    if not skus:
        return Interactions.from_columns(user_ids=[], item_ids=[], event_types=[], timestamps=[])
    sessions = pd.Series(session_ids, dtype=object).fillna("")
    users = pd.Series(user_ids, dtype=object).fillna("")
    anonymous = users == ""
    # object dtype: with no linked session at all the mapped column would be float NaN
    users[anonymous] = sessions[anonymous].map(links).astype(object).fillna("")
    unlinked = users == ""
    users[unlinked] = "session:" + sessions[unlinked]
    user_codes, user_vocabulary = column_codes(users)
    item_codes, items = column_codes(skus)
    event_codes, kinds = column_codes(event_types)
    session_codes, session_vocabulary = column_codes(sessions, sort=False)
    times = pd.to_datetime(pd.Series(occurred_at, dtype=object), utc=True)
    timestamps = times.dt.as_unit("us").astype("int64").to_numpy() / 1e6
    unknown = session_codes < 0
    if unknown.any():
        gap = sessions_by_gap(user_codes[unknown], timestamps[unknown])
        session_codes[unknown] = gap + len(session_vocabulary)
    order_codes, _ = column_codes(orders, sort=False)
    country_codes, country_vocabulary = column_codes(countries)
    return Interactions.from_codes(
        user_codes=user_codes, item_codes=item_codes, event_codes=event_codes,
        timestamps=timestamps, users=user_vocabulary, items=items, event_vocabulary=kinds,
        quantities=pd.Series(quantities, dtype=object).fillna(1).replace(0, 1).to_numpy(np.int32),
        order_codes=order_codes, session_codes=session_codes,
        country_codes=country_codes, countries=country_vocabulary,
    )  # fmt: skip


def catalog_items(skus: Iterable[str] | None = None) -> list[CatalogItem]:
    """The content learner's view of the catalog (of these products), as stored now."""
    return [
        CatalogItem(
            sku=p.sku,
            title=p.title,
            description=p.description,
            category_path=p.category_path,
            brand=p.brand,
            price=float(p.price),
            attributes=p.attributes or {},
            launched_at=p.launched_at.timestamp(),
        )
        for p in product_summaries(skus)
    ]
