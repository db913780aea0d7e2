"""manage.py erase_shopper: erase shoppers (right to erasure) from the database and Redis."""

from django.core.management.base import BaseCommand, CommandError

from recs.erasure import MAX_ID_LENGTH, command_requester, erase_shopper
from recs.redis_clients import CONNECTION_ERRORS


class Command(BaseCommand):
    help = (
        "Erase shoppers: their events, sessions, online features, candidate lists and "
        "served-list log. Aggregates stay; an audit record (who, when, counts) is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("user_ids", nargs="+", metavar="USER_ID")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, user_ids: list[str], yes: bool, **options):
        too_long = [user for user in user_ids if not user or len(user) > MAX_ID_LENGTH]
        if too_long:
            raise CommandError(f"User ids have 1 to {MAX_ID_LENGTH} characters: {too_long!r}")
        user_ids = list(dict.fromkeys(user_ids))
        if not yes:
            answer = input(
                f"Erase {len(user_ids)} shopper(s) for good: {', '.join(user_ids)}? [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("Nothing erased.")
        requested_by = command_requester()
        for user_id in user_ids:
            try:
                record = erase_shopper(user_id, requested_by=requested_by)
            except CONNECTION_ERRORS as error:
                raise CommandError(
                    f"Redis did not answer ({error}); {user_id} is not fully erased, run again."
                ) from error
            counts = ", ".join(f"{kind} {count}" for kind, count in record.counts.items())
            self.stdout.write(
                f"Erased {user_id} (audit record #{record.pk}, {record.subject_digest[:12]}): "
                f"{counts}"
            )
        self.stdout.write(self.style.SUCCESS(f"Erased {len(user_ids)} shopper(s)."))
