"""Aisle's catalog following django-oscar's products (AISLE["CATALOG_SOURCE"], see README.md here).

Oscar keeps what Aisle needs in several places, so the field map points at these callables
instead of plain attribute paths:

- Oscar products have no SKU field: the UPC is the SKU (Oscar keeps it unique), and a product
  without one gets "oscar-<pk>" (the prefix keeps it from clashing with a numeric UPC).
- Price, currency and stock live on stock records, one per partner. Like Oscar's default
  strategy (oscar.apps.partner.strategy.Default), the first record is the one sold.
- Parents are not sold, their children are; a child has no title or categories of its own and
  takes its parent's (Product.get_title / get_categories do the same).
- Oscar's URLs carry slug and id (/catalogue/<slug>_<id>/), which is why the map passes
  get_absolute_url and Aisle stores each product's page URL.

Stock moves on StockRecord (num_allocated when an order is placed), which sends no Product
save: call follow_stock_records() from an AppConfig.ready() so those changes reach Aisle too.
"""

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.signals import post_save
from oscar.core.loading import get_model

from merch.catalog_source import sync_products

# What a product class that does not track stock (ProductClass.track_stock False) reports:
# Oscar always lets it be bought, so it must never count as sold out.
UNTRACKED_STOCK = 1_000_000


def _stock_record(product):
    """The first stock record, from the prefetched ones when queryset() fetched them."""
    records = list(product.stockrecords.all())
    return records[0] if records else None


def sku(product):
    return product.upc or f"oscar-{product.pk}"


def title(product):
    return product.get_title()


def price(product):
    """None without a stock record or price: the product is then rejected, not synced at 0."""
    record = _stock_record(product)
    return record.price if record else None


def currency(product):
    record = _stock_record(product)
    return record.price_currency if record else None


def stock(product):
    """Units a shopper can buy: in stock minus allocated to orders (StockRecord.net_stock_level)."""
    if not product.get_product_class().track_stock:
        return UNTRACKED_STOCK
    record = _stock_record(product)
    return max(record.net_stock_level, 0) if record else 0


def category_path(product):
    """The first category's names from the root down, e.g. ["Books", "Fiction"]; a child's
    categories are its parent's. (One query for the ancestors: treebeard reads them by path.)"""
    owner = product.parent if product.is_child else product
    categories = list(owner.categories.all())
    return [c.name for c in categories[0].get_ancestors_and_self()] if categories else None


def is_active(product):
    """Public, and for a child its parent too (Oscar's detail view shows nothing else)."""
    return product.is_public and (not product.is_child or product.parent.is_public)


def queryset():
    """What sync_catalog syncs: public products that are sold (standalone and children, not
    parents) and have a stock record, with what the callables read fetched alongside."""
    Product = get_model("catalogue", "Product")
    StockRecord = get_model("partner", "StockRecord")
    return (
        Product.objects.filter(is_public=True)
        .exclude(structure=Product.PARENT)
        .filter(Q(parent=None) | Q(parent__is_public=True))
        .filter(Exists(StockRecord.objects.filter(product=OuterRef("pk"))))
        .select_related("product_class", "parent__product_class")
        .prefetch_related("stockrecords", "categories", "parent__categories")
    )


def _stock_record_saved(sender, instance, raw=False, **kwargs):
    if raw:  # loaddata
        return
    product_id = instance.product_id
    transaction.on_commit(lambda: sync_products(queryset().filter(pk=product_id)), robust=True)


def follow_stock_records():
    """Re-sync a product when one of its stock records is saved (price or stock changed).
    Idempotent; call it from your AppConfig.ready()."""
    post_save.connect(
        _stock_record_saved,
        sender=get_model("partner", "StockRecord"),
        dispatch_uid="aisle_oscar.stock_record_saved",
    )
