"""Django app config for merch."""

from django.apps import AppConfig


class MerchConfig(AppConfig):
    name = "merch"
    verbose_name = "Merchandising"
    # The migrations are written with 64-bit keys; a host whose DEFAULT_AUTO_FIELD differs must
    # not get new migrations generated into the installed package.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from merch import catalog_source

        checks.register(catalog_source.check_catalog_source)
        # A shop's own product model as the catalog's source: follow its saves and deletes.
        catalog_source.connect_receivers(strict=False)
