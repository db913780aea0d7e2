"""factory_boy factories for the catalog, merchandising and the event log."""

from decimal import Decimal

import factory
from django.utils import timezone

from merch.models import Category, MerchandisingRule, Placement, Product, Stock
from recs.models import Event


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("path",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")
    parent = None
    path = factory.LazyAttribute(lambda o: f"{o.parent.path}/{o.slug}" if o.parent else o.slug)


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("sku",)

    sku = factory.Sequence(lambda n: f"{10000 + n}")
    title = factory.Sequence(lambda n: f"Product {n}")
    description = ""
    category = factory.SubFactory(CategoryFactory)
    brand = ""
    price = Decimal("4.95")
    currency = "GBP"
    launched_at = factory.LazyFunction(lambda: timezone.now() - timezone.timedelta(days=365))


class StockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Stock

    product = factory.SubFactory(ProductFactory)
    on_hand = 10
    reserved = 0


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    event_id = factory.Sequence(lambda n: f"evt-{n}")
    event_type = "view"
    user_id = "u-1"
    product_sku = "10000"
    occurred_at = factory.LazyFunction(timezone.now)


class PlacementFactory(factory.django.DjangoModelFactory):
    """get_or_create by key: the data migration already made home, cart, product_detail, ..."""

    class Meta:
        model = Placement
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"placement-{n}")
    name = factory.LazyAttribute(lambda o: o.key.replace("_", " ").title())


class MerchandisingRuleFactory(factory.django.DjangoModelFactory):
    """A boost by default; pass action/position/multiplier together for the other actions."""

    class Meta:
        model = MerchandisingRule

    placement = factory.SubFactory(PlacementFactory, key="home")
    product = factory.SubFactory(ProductFactory)
    category = None
    action = MerchandisingRule.Action.BOOST
    position = None
    multiplier = 2.0
