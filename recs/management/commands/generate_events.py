"""manage.py generate_events: a synthetic shop's event log and catalog as CSV files."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from recs.datasets.synthetic.generate import generate
from recs.datasets.synthetic.options import SyntheticOptions

DEFAULT_OUTPUT = Path("var/synthetic/events.csv")


class Command(BaseCommand):
    help = (
        "Generate a realistic synthetic e-commerce event log (views, carts, purchases in sessions) "
        "and its catalog, deterministic for a seed."
    )

    def add_arguments(self, parser):
        defaults = SyntheticOptions()
        parser.add_argument("--items", type=int, default=defaults.items)
        parser.add_argument("--users", type=int, default=defaults.users)
        parser.add_argument(
            "--events", type=int, default=defaults.events, help="target count, met within ~1%%"
        )
        parser.add_argument("--days", type=int, default=defaults.days)
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="events CSV")
        parser.add_argument(
            "--catalog-output", type=Path, default=None, help="default: catalog.csv beside --output"
        )

    def handle(self, *args, output: Path, catalog_output: Path | None, **options):
        try:
            settings = SyntheticOptions(
                items=options["items"], users=options["users"], events=options["events"],
                days=options["days"], seed=options["seed"],
            )  # fmt: skip
        except ValueError as error:
            raise CommandError(str(error)) from None
        catalog_output = catalog_output or output.with_name("catalog.csv")
        if catalog_output.resolve() == output.resolve():
            raise CommandError("--catalog-output must differ from --output")
        summary = generate(settings, output, catalog_output)
        self.stdout.write(f"Wrote {output} and {catalog_output}")
        rows = summary.lines()
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            self.stdout.write(f"  {label:<{width}}  {value}")
