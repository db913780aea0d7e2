"""manage.py simulate_shoppers: rehearse an experiment with shoppers whose outcome is known."""

from django.core.management.base import BaseCommand, CommandError

from merch.selectors.experiments import experiment_by_id
from recs.experiments.simulation import simulate_shoppers


def variant_rates(pairs: list[str], option: str) -> dict[str, float]:
    """VARIANT=P pairs as a dict; a malformed pair or a P outside 0..1 is the caller's error."""
    try:
        rates = {name: float(p) for name, p in (pair.split("=", 1) for pair in pairs)}
    except ValueError as error:
        raise CommandError(f"{option} takes VARIANT=PROBABILITY pairs") from error
    if any(not 0 <= rate <= 1 for rate in rates.values()):
        raise CommandError(f"{option}: a probability is from 0 to 1")
    return rates


class Command(BaseCommand):
    help = "Serve simulated shoppers on an experiment's placement and send their events."

    def add_arguments(self, parser):
        parser.add_argument("experiment", type=int, help="experiment id")
        parser.add_argument("--shoppers", type=int, default=500)
        parser.add_argument("--hours", type=float, default=6.0, help="spread over the last N h")
        parser.add_argument(
            "--conversion", nargs="*", default=[], metavar="VARIANT=P",
            help="purchase probability per variant (others 0.05), e.g. control=0.05 trending=0.12",
        )  # fmt: skip
        parser.add_argument(
            "--cart", nargs="*", default=[], metavar="VARIANT=P",
            help="probability of adding a listed product to the cart per variant (others 0.12; "
            "at least the conversion: buyers add to the cart first), e.g. control=0.15 trending=0.2",
        )  # fmt: skip
        parser.add_argument("--click-rate", type=float, default=0.3,
                            help="probability of clicking a listed product")  # fmt: skip
        parser.add_argument("--organic-views", type=int, default=3,
                            help="each shopper then views 1 to N products of their taste")  # fmt: skip
        parser.add_argument("--organic-cart-rate", type=float, default=0.05,
                            help="probability of adding one of those to the cart")  # fmt: skip
        parser.add_argument("--history-views", type=float, default=3.0,
                            help="mean earlier views per shopper in the past weeks, scaled by "
                            "their engagement (0: every shopper is new)")  # fmt: skip
        parser.add_argument("--seed", type=int, default=7)

    def handle(
        self, *args, experiment, shoppers, hours, conversion, cart, click_rate, organic_views,
        organic_cart_rate, history_views, seed, **options,
    ):  # fmt: skip
        config = experiment_by_id(experiment)
        if config is None:
            raise CommandError(f"No experiment {experiment}")
        if config.status != "running":
            raise CommandError(f"Experiment {experiment} is {config.status}; start it first")
        result = simulate_shoppers(
            config, shoppers, hours=hours, seed=seed, click_rate=click_rate,
            conversion=variant_rates(conversion, "--conversion"),
            add_to_cart=variant_rates(cart, "--cart"),
            organic_views=organic_views, organic_cart_rate=organic_cart_rate,
            history_views=history_views,
        )  # fmt: skip
        for variant, served in sorted(result.served.items()):
            self.stdout.write(
                f"{variant:>16}: {served} shoppers, {result.carted[variant]} added to cart, "
                f"{result.converted[variant]} bought"
            )
        self.stdout.write(
            f"{result.events} events applied ({result.organic_views} organic views); rolled up."
        )
