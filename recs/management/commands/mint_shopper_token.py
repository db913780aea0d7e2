"""Mint a shopper token: for trying the API by hand, and for shops whose backend is Python."""

from django.core.management.base import BaseCommand, CommandError

from recs.shopper_tokens import mint_shopper_token


class Command(BaseCommand):
    help = (
        "Print a signed shopper token (JWT, HS256) for a customer and/or session: send it as "
        "X-Aisle-Shopper-Token to read that shopper's recommendations or, with a publishable "
        "key, to send their events."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user-id", default="", help="the shop's customer id (claim sub)")
        parser.add_argument("--session-id", default="", help="the shopper's session (claim sid)")
        parser.add_argument("--ttl", type=int, default=None,
                            help="lifetime in seconds (default SHOPPER_TOKEN_TTL_S)")  # fmt: skip

    def handle(self, *args, user_id: str, session_id: str, ttl: int | None, **options):
        try:
            token = mint_shopper_token(user_id=user_id, session_id=session_id, ttl_s=ttl)
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(token)
