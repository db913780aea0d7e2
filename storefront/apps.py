"""The demo shop (home, category, product, cart, checkout, login) over merch's catalog: part of the
demo project, not of the installed Aisle apps; a real shop has its own pages and uses the tag."""

from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    name = "storefront"
    verbose_name = "Demo storefront"
