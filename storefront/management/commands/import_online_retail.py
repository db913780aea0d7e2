"""manage.py import_online_retail: the shipped UCI Online Retail data as catalog, stock and events."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from merch.services.catalog import set_stock_levels, upsert_products
from recs.datasets.online_retail import (
    DATASET_NAME,
    DEFAULT_FILE,
    deactivate_non_merchandise,
    file_sha256,
    parse_online_retail,
    stock_levels,
)
from recs.events.services import apply_event_batch
from recs.features.online import mark_layout_current
from recs.models import DatasetImport

EVENT_CHUNK = 5000


class Command(BaseCommand):
    help = "Import the UCI Online Retail data set: products, categories, stock, purchase events."

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
        parser.add_argument("--limit", type=int, default=None, help="read only the first N rows")
        parser.add_argument("--force", action="store_true", help="import again even if done")

    def handle(self, *args, file: Path, limit: int | None, force: bool, **options):
        if not file.exists():
            raise CommandError(f"No such file: {file}")
        sha = file_sha256(file)
        fingerprint = sha if limit is None else f"{sha[:48]}-limit-{limit}"
        done = DatasetImport.objects.filter(name=DATASET_NAME, file_sha256=fingerprint).first()
        if done and not force:
            # Said first and plainly: the table below is the earlier import's, not this run's.
            self.stdout.write(f"Nothing imported: {file.name} was already imported on "
                              f"{done.imported_at:%Y-%m-%d %H:%M} UTC (use --force to import again).\n"
                              "Summary of that earlier import:")  # fmt: skip
            self.print_summary(done.summary)
            # The catalog of an import made before the non-merchandise rule: corrected in place,
            # and said apart from the earlier import's table, since this run did it.
            if hidden := deactivate_non_merchandise():
                listed = ", ".join(f"{sku} {title!r}" for sku, title in hidden.items())
                self.stdout.write(
                    f"This run made {len(hidden)} product(s) inactive (not merchandise): {listed}"
                )
            return
        with tqdm(desc="Reading", unit=" rows", unit_scale=True, disable=None) as bar:
            parsed = parse_online_retail(file, limit=limit, progress=bar.update)
        with transaction.atomic():
            upserted = upsert_products(parsed.products)
            set_stock_levels(stock_levels(parsed.products))
        events = parsed.events
        with tqdm(
            total=len(events), desc="Events", unit=" events", unit_scale=True, disable=None
        ) as bar:
            for start in range(0, len(events), EVENT_CHUNK):
                chunk = events[start : start + EVENT_CHUNK]
                apply_event_batch(
                    f"{DATASET_NAME}-{fingerprint[:16]}-{start}", chunk, rescore=False
                )
                bar.update(len(chunk))
        summary = parsed.summary.as_dict() | {
            "products_created": len(upserted.created),
            "products_updated": len(upserted.updated) + len(upserted.unchanged),
            "stock_rows": len(parsed.products),
        }
        DatasetImport.objects.update_or_create(
            name=DATASET_NAME, file_sha256=fingerprint, defaults={"summary": summary}
        )
        mark_layout_current()
        self.print_summary(summary)

    def print_summary(self, summary: dict) -> None:
        rows = [
            ("rows read", summary["rows_read"]),
            ("sale rows (not cancelled, quantity > 0, price > 0, product code)", summary["sales"]),
            *[(f"skipped: {reason.replace('_', ' ')}", n) for reason, n in sorted(summary["skipped"].items())],
            ("products (created / updated)", f"{summary['products']} ({summary.get('products_created', '-')} / {summary.get('products_updated', '-')})"),
            ("products imported inactive (not merchandise)", len(summary["non_merchandise_products"]) if "non_merchandise_products" in summary else "-"),
            ("products in category Other", summary["products_in_other"]),
            ("stock rows", summary.get("stock_rows", summary["products"])),
            ("purchase events", summary["purchase_events"]),
            ("customers", summary["customers"]),
            ("countries", summary["countries"]),
        ]  # fmt: skip
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            self.stdout.write(f"  {label:<{width}}  {value:>12}")
        codes = ", ".join(f"{code} ({n})" for code, n in summary["top_non_product_codes"].items())
        self.stdout.write(f"  top non-product codes: {codes}")
        if hidden := summary.get("non_merchandise_products"):
            listed = ", ".join(f"{sku} {row['title']!r}" for sku, row in hidden.items())
            self.stdout.write(f"  inactive, not merchandise: {listed}")
