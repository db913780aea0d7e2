"""manage.py archive_events: archive events older than the retention window and delete them."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from aisle.conf import aisle_settings
from recs.events.retention import (
    archive_expired_events,
    archive_path,
    expired_days,
    retention_cutoff,
)
from recs.redis_clients import CONNECTION_ERRORS


class Command(BaseCommand):
    help = (
        "Archive events older than EVENT_RETENTION_DAYS to daily gzip JSON Lines files in "
        "EVENT_ARCHIVE_DIR and delete them from the event log (what the daily beat task does)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="only list the days and events that would go"
        )

    def handle(self, *args, dry_run: bool, **options):
        cutoff = retention_cutoff()
        if cutoff is None:
            self.stdout.write("EVENT_RETENTION_DAYS is 0: events are kept; nothing to archive.")
            return
        if dry_run:
            days = expired_days(cutoff)
            for day, count in days:
                self.stdout.write(f"{day}  {count:>10,} events  -> {archive_path(day)}")
            total = sum(count for _, count in days)
            self.stdout.write(
                f"Would archive and delete {total:,} events of {len(days)} days {window(cutoff)}."
            )
            return
        try:
            result = archive_expired_events()
        except CONNECTION_ERRORS as error:
            raise CommandError(
                f"Redis did not answer ({error}); the run stopped. Run again: what is archived "
                "stays archived, and nothing is deleted before it is on disk."
            ) from error
        if result.skipped:
            raise CommandError(f"Nothing archived: {result.skipped}.")
        for path in result.files:
            self.stdout.write(f"wrote {path}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Archived {result.archived:,} and deleted {result.deleted:,} events of "
                f"{result.days} days {window(result.cutoff)}."
            )
        )


def window(cutoff: datetime) -> str:
    return f"older than {cutoff:%Y-%m-%d %H:%M} UTC ({aisle_settings.EVENT_RETENTION_DAYS:g} days)"
