"""Django app config for merch."""

from django.apps import AppConfig


class MerchConfig(AppConfig):
    name = "merch"
    verbose_name = "Merchandising"
    # The migrations are written with 64-bit keys; a host whose DEFAULT_AUTO_FIELD differs must
    # not get new migrations generated into the installed package.
    default_auto_field = "django.db.models.BigAutoField"
