"""Interactions for evaluation and training: any CSV, the shipped data set, or the event log."""

import csv
from datetime import datetime
from pathlib import Path

from django.utils.text import slugify

from recs.datasets.online_retail import DEFAULT_FILE, parse_online_retail
from recs.learners.base import CatalogItem, Interactions

REQUIRED_COLUMNS = ("user_id", "item_id", "event_type", "timestamp")


def _timestamp(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError(f"timestamp {value!r} has no time zone") from None
        return parsed.timestamp()


def load_interactions_csv(path: Path) -> tuple[Interactions, list[CatalogItem]]:
    """Columns user_id,item_id,event_type,timestamp (epoch seconds or ISO 8601 with zone);
    optional category, price, order_id, country."""
    columns: dict[str, list] = {name: [] for name in (
        "user_ids", "item_ids", "event_types", "timestamps", "order_ids", "countries")}  # fmt: skip
    catalog: dict[str, CatalogItem] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path} lacks the column(s) {', '.join(missing)}; "
                f"needed: {', '.join(REQUIRED_COLUMNS)} (optional: category, price, order_id, country)"
            )
        for line, row in enumerate(reader, start=2):
            try:
                timestamp = _timestamp(row["timestamp"])
            except ValueError as error:
                raise ValueError(f"{path}, line {line}: {error}") from None
            item = row["item_id"]
            columns["user_ids"].append(row["user_id"])
            columns["item_ids"].append(item)
            columns["event_types"].append(row["event_type"])
            columns["timestamps"].append(timestamp)
            columns["order_ids"].append(row.get("order_id") or "")
            columns["countries"].append(row.get("country") or "")
            if item not in catalog:
                catalog[item] = CatalogItem(
                    sku=item, title=item, category_path=row.get("category") or "",
                    price=float(row.get("price") or 0),
                )  # fmt: skip
    return Interactions.from_columns(**columns), list(catalog.values())


def load_online_retail(path: Path = DEFAULT_FILE) -> tuple[Interactions, list[CatalogItem]]:
    """The shipped UCI data set: its purchases and the catalog derived from it."""
    parsed = parse_online_retail(path)
    events = parsed.events
    interactions = Interactions.from_columns(
        user_ids=[e.user_id for e in events],
        item_ids=[e.product_sku for e in events],
        event_types=[e.event_type for e in events],
        timestamps=[e.occurred_at.timestamp() for e in events],
        quantities=[e.quantity or 1 for e in events],
        order_ids=[e.order_id for e in events],
        countries=[e.country for e in events],
    )
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
