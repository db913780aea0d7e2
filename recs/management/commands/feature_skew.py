"""manage.py feature_skew: compare online feature values with offline recomputation as of now."""

from django.core.management.base import BaseCommand, CommandError

from recs.features.skew import check_skew, sample_entities


class Command(BaseCommand):
    help = "Recompute features offline for a sample of entities 'as of now' and compare with Redis."

    def add_arguments(self, parser):
        parser.add_argument("--sample", type=int, default=50, help="entities per kind (default 50)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--show", type=int, default=20, help="mismatches to print")

    def handle(self, *args, sample, seed, show, **options):
        report = check_skew(sample_entities(sample, seed))
        checked = ", ".join(
            f"{count} {entity}" for entity, count in report.entities_checked.items()
        )
        self.stdout.write(f"Checked {checked}: {report.values_compared} feature values.")
        for mismatch in report.mismatches[:show]:
            self.stdout.write(
                f"  MISMATCH {mismatch.entity} {mismatch.entity_id} {mismatch.feature}: "
                f"online={mismatch.online!r} offline={mismatch.offline!r}"
            )
        if report.mismatches:
            raise CommandError(f"{len(report.mismatches)} mismatches between online and offline.")
        self.stdout.write(self.style.SUCCESS("No skew: online and offline values agree."))
