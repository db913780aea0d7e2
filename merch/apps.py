"""Django app config for merch."""

from django.apps import AppConfig


class MerchConfig(AppConfig):
    name = "merch"
    verbose_name = "Merchandising"
