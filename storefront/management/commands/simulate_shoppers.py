"""manage.py simulate_shoppers: rehearse an experiment with shoppers whose outcome is known."""

from django.core.management.base import BaseCommand, CommandError

from merch.selectors.experiments import experiment_by_id
from recs.experiments.simulation import simulate_shoppers


class Command(BaseCommand):
    help = "Serve simulated shoppers on an experiment's placement and send their events."

    def add_arguments(self, parser):
        parser.add_argument("experiment", type=int, help="experiment id")
        parser.add_argument("--shoppers", type=int, default=500)
        parser.add_argument("--hours", type=float, default=6.0, help="spread over the last N h")
        parser.add_argument(
            "--conversion", nargs="*", default=[], metavar="VARIANT=P",
            help="purchase probability per variant, e.g. control=0.05 trending=0.12",
        )  # fmt: skip
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, experiment, shoppers, hours, conversion, seed, **options):
        config = experiment_by_id(experiment)
        if config is None:
            raise CommandError(f"No experiment {experiment}")
        if config.status != "running":
            raise CommandError(f"Experiment {experiment} is {config.status}; start it first")
        try:
            rates = {name: float(p) for name, p in (item.split("=", 1) for item in conversion)}
        except ValueError as error:
            raise CommandError("--conversion takes VARIANT=PROBABILITY pairs") from error
        result = simulate_shoppers(config, shoppers, hours=hours, conversion=rates, seed=seed)
        for variant, served in sorted(result.served.items()):
            self.stdout.write(
                f"{variant:>16}: {served} shoppers, {result.converted[variant]} bought"
            )
        self.stdout.write(f"{result.events} events applied; rolled up.")
