"""Interactions and a catalog for evaluation: from any events CSV (its format is described in
recs/evaluation/events_csv/events.py), or from the shipped UCI data set."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from django.utils.text import slugify

from recs.datasets.online_retail import DEFAULT_FILE, parse_online_retail
from recs.evaluation.events_csv.catalog import build_catalog, read_catalog
from recs.evaluation.events_csv.events import read_events
from recs.evaluation.events_csv.files import reported
from recs.learners.base import CatalogItem, Interactions


def load_interactions_csv(
    path: Path | str, *, catalog_path: Path | str | None = None, progress: bool = True
) -> tuple[Interactions, list[CatalogItem]]:
    """The events of a CSV file (see recs/evaluation/events_csv/events.py) and their catalog.

    Raises ValueError naming the file, the line and the problem when a file cannot be used."""
    path = Path(path)
    events = reported(path, lambda: read_events(path, progress))
    rows = None
    if catalog_path is not None:
        catalog_path = Path(catalog_path)
        rows = reported(catalog_path, lambda: read_catalog(catalog_path, progress))
    catalog = build_catalog(events, rows)
    return events.interactions(), catalog


# --- the shipped data set --------------------------------------------------------------------


def column_codes(
    values: Sequence[str] | pd.Series, *, sort: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(int32 codes, vocabulary) of a column, vectorised; "" and None (unknown) get -1."""
    series = pd.Series(values, dtype=object)
    codes, vocabulary = pd.factorize(series.mask(series == ""), sort=sort)
    return codes.astype(np.int32), np.asarray(vocabulary, dtype=object)


def load_online_retail(
    path: Path = DEFAULT_FILE, *, limit: int | None = None
) -> tuple[Interactions, list[CatalogItem]]:
    """The shipped UCI data set (its first `limit` rows when given): its purchases and the
    catalog derived from it."""
    parsed = parse_online_retail(path, limit=limit)
    events = parsed.events
    user_codes, users = column_codes([e.user_id for e in events])
    item_codes, items = column_codes([e.product_sku for e in events])
    event_codes, event_vocabulary = column_codes([e.event_type for e in events])
    order_codes, _ = column_codes([e.order_id for e in events])
    country_codes, countries = column_codes([e.country for e in events])
    interactions = Interactions.from_codes(
        user_codes=user_codes, item_codes=item_codes,
        event_codes=event_codes, event_vocabulary=event_vocabulary,
        timestamps=np.fromiter((e.occurred_at.timestamp() for e in events), np.float64,
                               count=len(events)),
        quantities=np.fromiter((e.quantity or 1 for e in events), np.int32, count=len(events)),
        users=users, items=items, order_codes=order_codes,
        country_codes=country_codes, countries=countries,
    )  # fmt: skip
    catalog = [
        CatalogItem(
            sku=p.sku,
            title=p.title,
            description=p.description,
            category_path="/".join(slugify(part) for part in p.category_path),
            brand=p.brand,
            price=float(p.price),
            attributes=p.attributes or {},
            launched_at=p.launched_at.timestamp() if p.launched_at else 0.0,
        )
        for p in parsed.products
    ]
    return interactions, catalog
