"""The catalog of an evaluation: a catalog CSV's items when one is given, plus the log's own.

A catalog CSV has the column item_id; title, category, price, launched_at, description and brand
are optional. Without one, the catalog is the distinct items of the log. An item's launched_at,
when no catalog file gives it, is the time of its first event, so that an evaluation can tell
which items existed at a cut; its category and price are the last ones its events carry.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from recs.evaluation.events_csv.events import EventColumns, category_path
from recs.evaluation.events_csv.files import BadRecord, chunks, header, line_of
from recs.evaluation.events_csv.values import as_numbers, epoch_seconds, first_bad
from recs.learners.base import CatalogItem

CATALOG_REQUIRED_COLUMNS = ("item_id",)
CATALOG_OPTIONAL_COLUMNS = ("title", "category", "price", "launched_at", "description", "brand")
_CATALOG_STRINGS = ("item_id", "title", "category", "description", "brand")


def read_catalog(path: Path, progress: bool) -> pd.DataFrame:
    """The catalog file's rows: item_id, title, category, description, brand ("" when absent),
    price and launched_at (NaN when absent)."""
    columns = header(path, CATALOG_REQUIRED_COLUMNS, CATALOG_OPTIONAL_COLUMNS)
    parts = []
    for first, chunk, _ in chunks(path, columns, _CATALOG_STRINGS, progress):
        empty = chunk["item_id"].isna().to_numpy()
        if empty.any():
            raise BadRecord(first + first_bad(empty), "item_id is empty")
        part = pd.DataFrame({"item_id": chunk["item_id"].to_numpy(dtype=object)})
        for name in ("title", "category", "description", "brand"):
            part[name] = chunk[name].fillna("").to_numpy(dtype=object) if name in chunk else ""
        part["price"] = as_numbers(chunk["price"], first, "price") if "price" in chunk else np.nan
        part["launched_at"] = (
            epoch_seconds(chunk["launched_at"], first, "launched_at", required=False)
            if "launched_at" in chunk
            else np.nan
        )
        parts.append(part)
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if not len(rows):
        raise ValueError(f"{path} has a header but no items")
    repeated = rows["item_id"].duplicated().to_numpy()
    if repeated.any():
        second = first_bad(repeated)
        item = rows["item_id"].iloc[second]
        raise BadRecord(
            second, f"item_id {item!r} is listed twice (first on line "
            f"{line_of(path, int(np.flatnonzero(rows['item_id'].to_numpy() == item)[0]))})"
        )  # fmt: skip
    return rows


def _item_facts(events: EventColumns) -> pd.DataFrame:
    """Per item code (the index): first event time, last non-empty category path and price."""
    item_codes = pd.Series(events.item_codes)
    facts = pd.DataFrame(
        {"first_seen": pd.Series(events.timestamps).groupby(item_codes, sort=True).min()}
    )
    if events.category_codes is not None:
        known = events.category_codes >= 0
        last = pd.Series(events.category_codes[known]).groupby(events.item_codes[known]).last()
        facts["category"] = pd.Series(events.categories[last.to_numpy()], index=last.index)
    if events.prices is not None:
        known = ~np.isnan(events.prices)
        facts["price"] = pd.Series(events.prices[known]).groupby(events.item_codes[known]).last()
    facts["category"] = facts["category"].fillna("") if "category" in facts else ""
    facts["price"] = facts["price"].fillna(0.0) if "price" in facts else 0.0
    return facts


def build_catalog(events: EventColumns, rows: pd.DataFrame | None) -> list[CatalogItem]:
    """The catalog file's items (`rows`, when given) in file order, then the log's others."""
    facts = _item_facts(events)
    skus = events.items[facts.index.to_numpy()]
    from_log = [
        CatalogItem(sku=sku, title=sku, category_path=category, price=float(price),
                    launched_at=float(first_seen))
        for sku, category, price, first_seen in zip(
            skus, facts["category"].tolist(), facts["price"].tolist(),
            facts["first_seen"].tolist(), strict=True,
        )
    ]  # fmt: skip
    if rows is None:
        return from_log
    # Catalog rows first, in file order; then the items only the log has.
    position = pd.Index(skus).get_indexer(rows["item_id"].to_numpy())
    first_seen = facts["first_seen"].to_numpy()
    launched = rows["launched_at"].to_numpy(dtype=np.float64)
    launched = np.where(
        np.isnan(launched), np.where(position >= 0, first_seen[position], 0.0), launched
    )
    category_codes, categories = pd.factorize(rows["category"].to_numpy(dtype=object))
    paths = np.array([category_path(str(c)) for c in categories] + [""], dtype=object)
    listed = [
        CatalogItem(sku=sku, title=title or sku, description=description,
                    category_path=category, brand=brand,
                    price=0.0 if np.isnan(price) else float(price), launched_at=float(launch))
        for sku, title, description, category, brand, price, launch in zip(
            rows["item_id"].tolist(), rows["title"].tolist(), rows["description"].tolist(),
            paths[category_codes].tolist(), rows["brand"].tolist(), rows["price"].tolist(),
            launched.tolist(), strict=True,
        )
    ]  # fmt: skip
    in_file = np.zeros(len(skus), dtype=bool)
    in_file[position[position >= 0]] = True
    return listed + [item for item, listed_too in zip(from_log, in_file, strict=True)
                     if not listed_too]  # fmt: skip
