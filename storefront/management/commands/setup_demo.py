"""manage.py setup_demo: the demo's merchandiser login, shopper logins and storefront write key."""

from pathlib import Path

from django.core.management.base import BaseCommand

from storefront import demo


class Command(BaseCommand):
    help = "Create (or reset) the demo superuser, demo shopper logins and the storefront key."

    def add_arguments(self, parser):
        parser.add_argument("--user", default="demo")
        parser.add_argument("--password", default="aisle-demo")
        parser.add_argument(
            "--customers", type=int, default=3, help="busiest customers to log in as"
        )
        parser.add_argument("--customer-password", default="shopper-demo")
        parser.add_argument("--key-file", type=Path, default=Path("var/storefront_publishable_key"))

    def handle(self, *args, user, password, customers, customer_password, key_file, **options):
        demo.ensure_superuser(user, password)
        shoppers = demo.ensure_customers(customers, customer_password, always=("12347",))
        demo.ensure_storefront_key(key_file)
        self.stdout.write(f"Admin user {user!r}; shopper logins {', '.join(shoppers) or 'none'} "
                          f"(password {customer_password!r}); publishable storefront key in {key_file}")  # fmt: skip
