"""manage.py setup_demo: the demo's merchandiser login, shopper logins, storefront write key and
a running home-page experiment with simulated shoppers, so that its dashboard has data."""

import time
from pathlib import Path

from django.core.management.base import BaseCommand

from merch.selectors.experiments import experiment_by_id
from recs.experiments.simulation import simulate_shoppers
from recs.models import ServedList
from storefront import demo


class Command(BaseCommand):
    help = (
        "Create (or reset) the demo superuser, demo shopper logins and the storefront key; create "
        "the demo experiment on the home page (kept when it exists) and simulate its shoppers."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", default="demo")
        parser.add_argument("--password", default="aisle-demo")
        parser.add_argument(
            "--customers", type=int, default=3, help="busiest customers to log in as"
        )
        parser.add_argument("--customer-password", default="shopper-demo")
        parser.add_argument("--key-file", type=Path, default=Path("var/storefront_publishable_key"))
        parser.add_argument(
            "--experiment-shoppers", type=int, default=1500,
            help="simulated shoppers for the demo experiment, once (0: none)",
        )  # fmt: skip
        parser.add_argument(
            "--experiment-id-file", type=Path, default=None,
            help="write the demo experiment's id here (removed when there is none)",
        )  # fmt: skip

    def handle(
        self, *args, user, password, customers, customer_password, key_file,
        experiment_shoppers, experiment_id_file, **options,
    ):  # fmt: skip
        demo.ensure_superuser(user, password)
        shoppers = demo.ensure_customers(customers, customer_password, always=("12347",))
        demo.ensure_storefront_key(key_file)
        self.stdout.write(f"Admin user {user!r}; shopper logins {', '.join(shoppers) or 'none'} "
                          f"(password {customer_password!r}); publishable storefront key in {key_file}")  # fmt: skip
        experiment, what = demo.ensure_demo_experiment()
        if experiment is None:
            self.stdout.write(f"Demo experiment {what}.")
        else:
            self.stdout.write(f"Demo experiment #{experiment.pk} {experiment.name!r}: {what}.")
            self._simulate(experiment.pk, experiment_shoppers)
        if experiment_id_file is not None:
            if experiment is None:
                experiment_id_file.unlink(missing_ok=True)
            else:
                experiment_id_file.parent.mkdir(parents=True, exist_ok=True)
                experiment_id_file.write_text(f"{experiment.pk}\n")

    def _simulate(self, experiment_id: int, shoppers: int) -> None:
        """Simulated shoppers over the last day, once: an experiment that already served lists
        (a re-run, or real traffic) keeps its data."""
        config = experiment_by_id(experiment_id)
        if (
            shoppers <= 0
            or config is None
            or config.status != "running"
            or ServedList.objects.filter(experiment_id=experiment_id).exists()
        ):
            return
        started = time.perf_counter()
        result = simulate_shoppers(
            config, shoppers, hours=24,
            conversion={"control": 0.06, "trending": 0.08, "popular": 0.08},
            add_to_cart={"control": 0.12, "trending": 0.15, "popular": 0.15},
        )  # fmt: skip
        arms = ", ".join(
            f"{variant} {served} ({result.carted[variant]} carted, "
            f"{result.converted[variant]} bought)"
            for variant, served in sorted(result.served.items())
        )
        self.stdout.write(
            f"Simulated {shoppers:,} shoppers over the last 24 h in "
            f"{time.perf_counter() - started:.1f} s: {arms}."
        )
