"""manage.py sync_catalog: bring Aisle's catalog up to the shop's own product model.

For shops with AISLE["CATALOG_SOURCE"] set (merch.catalog_source). Saves and deletes are
followed as they happen; this catches what sends no signal (QuerySet.update(), bulk_create, raw
SQL), e.g. nightly. Idempotent: a second run reports every product unchanged.
"""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from aisle.conf import aisle_settings
from merch.catalog_source import DEFAULT_BATCH_SIZE, sync_catalog


class Command(BaseCommand):
    help = (
        "Sync Aisle's catalog from the shop's product model (AISLE['CATALOG_SOURCE']). "
        "Idempotent; --prune also deactivates products the shop no longer lists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--prune",
            action="store_true",
            help="deactivate Aisle products whose SKU the shop's queryset no longer has",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"products per transaction (default {DEFAULT_BATCH_SIZE})",
        )
        parser.add_argument(
            "--show-rejected",
            type=int,
            default=20,
            metavar="N",
            help="print the reasons of the first N rejected products, then a count (default 20)",
        )

    def handle(self, *args, **options) -> None:
        if aisle_settings.CATALOG_SOURCE is None:
            raise CommandError(
                "AISLE['CATALOG_SOURCE'] is not set, so Aisle's own catalog is the source: there "
                "is nothing to sync from. Set it to follow your product model (see "
                "merch/catalog_source.py), or load products with import_catalog or the API."
            )
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            result = sync_catalog(prune=options["prune"], batch_size=options["batch_size"])
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        show = max(options["show_rejected"], 0)
        for rejection in result.rejected[:show]:
            label = f"pk {rejection.pk}" + (f" (sku {rejection.sku!r})" if rejection.sku else "")
            self.stdout.write(f"  rejected {label}: {rejection.reason}")
        if len(result.rejected) > show:
            self.stdout.write(f"  ... and {len(result.rejected) - show} more rejected products")
        summary = (
            f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}, "
            f"deactivated {result.deactivated}, stock updated {result.stock_updated}, "
            f"rejected {len(result.rejected)}"
        )
        self.stdout.write(self.style.SUCCESS(summary) if not result.rejected else summary)
