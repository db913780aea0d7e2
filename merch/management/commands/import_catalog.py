"""manage.py import_catalog FILE: products from a CSV or JSON Lines file, as the catalog API takes them.

Each row is validated like one product of POST /api/v1/products; valid rows are upserted a batch
(one transaction) at a time and rejected rows are reported with their line and reason. Re-running
the same file changes nothing: identical products count as unchanged.
"""

import contextlib
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from aisle.conf import aisle_settings
from merch.product_input import ProductInSerializer, validate_products
from merch.services.catalog import upsert_products

FIELDS = tuple(ProductInSerializer().fields)
REQUIRED_FIELDS = ("sku", "title", "price")
ATTRIBUTE_PREFIX = "attributes."
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass
class Row:
    """One product of the file: its line, and the product dict or why it could not be read."""

    line: int
    product: dict[str, Any] | None = None
    unreadable: str = ""


@dataclass
class Totals:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # line, sku, reason


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """--map COLUMN=FIELD pairs as {column: field}; FIELD may be attributes.<name>."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, separator, target = pair.partition("=")
        column, target = column.strip(), target.strip()
        if not separator or not column or not target:
            raise CommandError(f"--map takes COLUMN=FIELD, not {pair!r}.")
        if target not in FIELDS and not (
            target.startswith(ATTRIBUTE_PREFIX) and len(target) > len(ATTRIBUTE_PREFIX)
        ):
            raise CommandError(
                f"Unknown field {target!r} in --map {pair}; fields are {', '.join(FIELDS)}, "
                f"or {ATTRIBUTE_PREFIX}<name> to put the column into the attributes."
            )
        if target in mapping.values() and not target.startswith(ATTRIBUTE_PREFIX):
            raise CommandError(f"Two columns are mapped to {target!r}.")
        mapping[column] = target
    return mapping


def to_product(record: dict[str, Any], mapping: dict[str, str], from_csv: bool) -> dict[str, Any]:
    """A file record as the product dict the API would receive. In a CSV every cell is text:
    an empty cell means "not given" and the attributes column holds a JSON object."""
    mapped_fields = set(mapping.values())
    product: dict[str, Any] = {}
    extra_attributes: dict[str, Any] = {}
    for column, value in record.items():
        if column is None:  # a CSV row with more cells than the header
            continue
        target = mapping.get(column)
        if target is None and column in FIELDS and column not in mapped_fields:
            target = column
        if target is None:
            continue
        if from_csv:
            value = value.strip() if isinstance(value, str) else value
            if value in ("", None):
                continue
            if target == "attributes":
                # Text that is not JSON stays text: rejected as "attributes: must be a JSON object".
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
        if target.startswith(ATTRIBUTE_PREFIX):
            extra_attributes[target.removeprefix(ATTRIBUTE_PREFIX)] = value
        else:
            product[target] = value
    if extra_attributes:
        attributes = product.get("attributes")
        if attributes is None:
            attributes = {}
        if isinstance(attributes, dict):
            product["attributes"] = {**attributes, **extra_attributes}
    return product


def read_csv(path: Path, mapping: dict[str, str]) -> Iterator[Row]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        columns = reader.fieldnames or []
        given = {mapping.get(column, column) for column in columns}
        missing = [name for name in REQUIRED_FIELDS if name not in given]
        if missing:
            raise CommandError(
                f"{path.name} has no column for {', '.join(missing)} (its columns: "
                f"{', '.join(columns) or 'none'}); name one with --map COLUMN=FIELD."
            )
        try:
            for record in reader:
                yield Row(reader.line_num, to_product(record, mapping, from_csv=True))
        except csv.Error as error:
            raise CommandError(f"{path.name}, line {reader.line_num}: {error}") from None


def read_jsonl(path: Path, mapping: dict[str, str]) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                yield Row(line_number, unreadable=f"is not valid JSON ({error})")
                continue
            if not isinstance(record, dict):
                yield Row(line_number, unreadable="is not a JSON object")
                continue
            yield Row(line_number, to_product(record, mapping, from_csv=False))


class Command(BaseCommand):
    help = (
        "Import products from a CSV or JSON Lines file (the catalog API's product fields). "
        "Idempotent: re-running a file leaves identical products unchanged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, metavar="FILE")
        parser.add_argument(
            "--format",
            choices=sorted(set(FORMATS.values())),
            help="csv or jsonl; default from the file's extension (.csv, .jsonl, .ndjson)",
        )
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="COLUMN=FIELD",
            help=f"read FIELD from COLUMN (repeatable). Fields: {', '.join(FIELDS)}; or "
            f"{ATTRIBUTE_PREFIX}<name> to put a column into the attributes",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=aisle_settings.CATALOG_MAX_BATCH,
            help="products per transaction (default CATALOG_MAX_BATCH)",
        )
        parser.add_argument(
            "--show-rejected",
            type=int,
            default=20,
            metavar="N",
            help="print the reasons of the first N rejected rows, then a count (default 20)",
        )

    def handle(self, *args, **options) -> None:
        file: Path = options["file"]
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        file_format = options["format"] or FORMATS.get(file.suffix.lower())
        if file_format is None:
            raise CommandError(f"Cannot tell the format of {file.name}; pass --format csv|jsonl.")
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        mapping = parse_mapping(options["map"])
        rows = (read_csv if file_format == "csv" else read_jsonl)(file, mapping)
        totals = Totals()
        seen: set[str] = set()
        batch: list[Row] = []
        with tqdm(desc="Products", unit=" rows", unit_scale=True, disable=None) as bar:
            for row in rows:
                batch.append(row)
                if len(batch) >= batch_size:
                    self.import_batch(batch, seen, totals)
                    bar.update(len(batch))
                    batch = []
            if batch:
                self.import_batch(batch, seen, totals)
                bar.update(len(batch))
        self.report(file, totals, options["show_rejected"])

    @staticmethod
    def import_batch(batch: list[Row], seen: set[str], totals: Totals) -> None:
        readable = [row for row in batch if row.product is not None]
        records, rejected = validate_products([row.product for row in readable], seen)
        totals.rows += len(batch)
        totals.rejected += [(row.line, "", row.unreadable) for row in batch if row.unreadable]
        totals.rejected += [(readable[r.index].line, r.sku, r.reason) for r in rejected]
        if records:
            result = upsert_products(records)
            totals.created += len(result.created)
            totals.updated += len(result.updated)
            totals.unchanged += len(result.unchanged)

    def report(self, file: Path, totals: Totals, show: int) -> None:
        rejected = sorted(totals.rejected)
        for line, sku, reason in rejected[: max(show, 0)]:
            label = f"line {line}" + (f" (sku {sku!r})" if sku else "")
            self.stdout.write(f"  rejected {label}: {reason}")
        if len(rejected) > show:
            self.stdout.write(f"  ... and {len(rejected) - max(show, 0)} more rejected rows")
        summary = (
            f"{file.name}: {totals.rows} rows; created {totals.created}, updated "
            f"{totals.updated}, unchanged {totals.unchanged}, rejected {len(rejected)}"
        )
        self.stdout.write(self.style.SUCCESS(summary) if not rejected else summary)
