"""App config of the test-only host shop (installed by tests/settings.py)."""

from django.apps import AppConfig


class HostShopConfig(AppConfig):
    name = "tests.host_shop"
    label = "host_shop"
    verbose_name = "Host shop (tests)"
    default_auto_field = "django.db.models.BigAutoField"
