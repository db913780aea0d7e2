"""The synthetic shop as the two CSV files `evaluate` and `import_events` read: events and
catalog, each written to a .partial file first and renamed, so that no half file is left."""

import os
from pathlib import Path

import numpy as np

from recs.datasets.synthetic.catalog import Catalog
from recs.datasets.synthetic.simulation import EVENT_KINDS, EventLog

EVENT_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "session_id", "order_id", "category", "price")  # fmt: skip
CATALOG_COLUMNS = ("item_id", "title", "category", "price", "launched_at")
WRITE_CHUNK = 500_000


def write_events_csv(log: EventLog, catalog: Catalog, n_users: int, path: Path) -> None:
    """The events as CSV, written in chunks of pre-formatted column strings."""
    item_labels = np.array([f"i{k}" for k in catalog.number.tolist()], dtype=object)
    tails = np.array(
        [f"{catalog.sub_paths[s]},{p:.2f}" for s, p in zip(catalog.item_sub.tolist(), catalog.price.tolist(), strict=True)],
        dtype=object,
    )  # fmt: skip
    user_labels = np.array([f"u{k}" for k in range(1, n_users + 1)], dtype=object)
    kinds = np.array(EVENT_KINDS, dtype=object)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(EVENT_COLUMNS) + "\n")
        for begin in range(0, len(log.timestamps), WRITE_CHUNK):
            part = slice(begin, begin + WRITE_CHUNK)
            orders = log.orders[part]
            order_labels = np.full(len(orders), "", dtype=object)
            bought = orders >= 0
            order_labels[bought] = list(map(str, orders[bought].tolist()))
            rows = zip(
                user_labels[log.users[part]].tolist(),
                item_labels[log.items[part]].tolist(),
                kinds[log.kinds[part]].tolist(),
                map(str, log.timestamps[part].tolist()),
                map(str, log.sessions[part].tolist()),
                order_labels.tolist(),
                tails[log.items[part]].tolist(),
                strict=True,
            )
            handle.write("\n".join(map(",".join, rows)))
            handle.write("\n")
    os.replace(partial, path)


def write_catalog_csv(catalog: Catalog, path: Path) -> None:
    """item_id,title,category,price,launched_at, by item number."""
    by_number = np.argsort(catalog.number)
    numbers, subs = catalog.number[by_number].tolist(), catalog.item_sub[by_number].tolist()
    prices, launched = catalog.price[by_number].tolist(), catalog.launched_at[by_number].tolist()
    titles = [catalog.titles[i] for i in by_number.tolist()]
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(CATALOG_COLUMNS) + "\n")
        rows = zip(numbers, titles, subs, prices, launched, strict=True)
        handle.write("\n".join(
            f"i{num},{title},{catalog.sub_paths[sub]},{price:.2f},{at}" for num, title, sub, price, at in rows
        ))  # fmt: skip
        handle.write("\n")
    os.replace(partial, path)
