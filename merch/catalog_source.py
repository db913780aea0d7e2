"""The shop's own product model as the source of Aisle's catalog (AISLE["CATALOG_SOURCE"]).

A shop keeps its product model; Aisle's copy (merch Product, Category, Stock) follows it. Each host
instance is read through the configured field map into the product dict the catalog API takes,
validated the same way (merch.product_input: a bad row is rejected with a reason naming the field,
the others land) and upserted by SKU (merch.services.catalog). Syncing is idempotent: a product
that did not change is left alone, so readers hear only of real changes.

How the copy stays current:

- A saved host product is synced once its transaction commits, and a deleted one deactivated
  (post_save / post_delete receivers that MerchConfig.ready connects when the setting is on).
  A product the shop's "queryset" leaves out is deactivated when saved.
- `QuerySet.update()`, `bulk_create()`, `bulk_update()` and raw SQL send no signals, and a SKU
  renamed on save leaves its old product active: after such changes the shop calls
  `sync_products(changed_instances)`, or runs `manage.py sync_catalog` (e.g. nightly; `--prune`
  also deactivates products the shop no longer has).

Config (aisle/conf.py documents it too):

    AISLE = {"CATALOG_SOURCE": {
        "model": "shop.Product",
        "fields": {"sku": "sku", "title": "name", "price": "price",
                   "category_path": "category.slug_path",      # an attribute path
                   "brand": "shop.aisle.brand_name",            # or a callable(instance)
                   "is_active": "is_public", "url": "get_absolute_url"},  # a method is called
        "stock": "stock_on_hand",              # optional: units available (reserved is set to 0)
        "queryset": "shop.aisle.products",     # optional: callable() -> the QuerySet to sync
    }}

A path whose first name is an attribute of the model is read attribute by attribute (None
anywhere gives None); otherwise it is imported as a callable. A category path may be a list of
names, "Home > Candles" or "home/candles". image_url must be an absolute http(s) URL, as in the
catalog API; url a path ("/shop/lantern-12/") or an http(s) URL. Without "stock", Aisle's stock is
left to the catalog API (a new product then counts as sold out).
"""

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

from django.apps import apps
from django.core.checks import Error
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ObjectDoesNotExist
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.module_loading import import_string
from rest_framework import serializers

from aisle.conf import aisle_settings
from merch.models import Product
from merch.product_input import (
    InvalidProduct,
    StockLevelInSerializer,
    page_url_problem,
    reason_from_errors,
    validate_products,
)
from merch.services.catalog import (
    StockLevel,
    deactivate_product,
    set_products_active,
    update_stock_levels,
    upsert_products,
)

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
SETTING = "CATALOG_SOURCE"
# Aisle field -> the key of the product dict the catalog API takes (merch.product_input).
PRODUCT_FIELDS = {
    "sku": "sku", "title": "title", "price": "price", "category_path": "category_path",
    "description": "description", "brand": "brand", "currency": "currency",
    "attributes": "attributes", "image_url": "image_url", "launched_at": "launched_at",
    "is_active": "active",
}  # fmt: skip
SOURCE_FIELDS = (*PRODUCT_FIELDS, "url")
REQUIRED_FIELDS = ("sku", "title", "price")
CONFIG_KEYS = ("model", "fields", "stock", "queryset")
SAVE_UID = "aisle.merch.catalog_source.saved"
DELETE_UID = "aisle.merch.catalog_source.deleted"


@dataclass(frozen=True)
class Reader:
    """How one value is read from a host instance: an attribute path, or a callable(instance)."""

    spec: str
    attributes: tuple[str, ...] = ()
    function: Callable[[Any], Any] | None = None

    def __call__(self, instance: Any) -> Any:
        if self.function is not None:
            return self.function(instance)
        value = instance
        for name in self.attributes:
            try:
                value = getattr(value, name)
            except ObjectDoesNotExist:  # a missing reverse one-to-one: no value, like a null FK
                return None
            if value is None:
                return None
        return value() if callable(value) else value


@dataclass(frozen=True)
class CatalogSource:
    """CATALOG_SOURCE, loaded and checked: the host model and how each Aisle field is read."""

    model: type[models.Model]
    readers: dict[str, Reader]
    stock: Reader | None = None
    queryset_factory: Callable[[], models.QuerySet] | None = None
    # Forward relations the attribute paths cross: selected with the rows (no query per row).
    related: tuple[str, ...] = ()

    def queryset(self) -> models.QuerySet:
        """What sync_catalog syncs: the "queryset" callable's, else every host product."""
        if self.queryset_factory is None:
            queryset = self.model._default_manager.all()
        else:
            queryset = self.queryset_factory()
            if not isinstance(queryset, models.QuerySet) or queryset.model is not self.model:
                raise ImproperlyConfigured(
                    f"{SETTING}['queryset'] must return a QuerySet of {self.model._meta.label}, "
                    f"not {queryset!r}"
                )
            if queryset.query.is_sliced:
                raise ImproperlyConfigured(
                    f"{SETTING}['queryset'] must not return a sliced QuerySet"
                )
        return queryset.select_related(*self.related) if self.related else queryset

    def sku_of(self, instance: Any) -> str:
        """The instance's SKU as text; "" when it has none or it cannot be read."""
        try:
            sku = self.readers["sku"](instance)
        except Exception:  # a host callable's bug: the caller reports the row without a SKU
            return ""
        return str(sku) if isinstance(sku, str | int) and not isinstance(sku, bool) else ""


@dataclass(frozen=True)
class Rejection:
    """A host product that was not synced, and why, in one sentence naming the field."""

    pk: Any
    sku: str
    reason: str


@dataclass
class SyncResult:
    """What a sync did: counts of products (and stock rows) by outcome, and each rejection."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    stock_updated: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def add(self, other: "SyncResult") -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deactivated += other.deactivated
        self.stock_updated += other.stock_updated
        self.rejected += other.rejected


# --- the config


def _label(*keys: str) -> str:
    return SETTING + "".join(f"[{key!r}]" for key in keys)


def _missing_attribute(model: type[models.Model], names: list[str]) -> str:
    """Follow an attribute path through the model's relations as far as they go; the first
    name that does not exist, as a sentence, or "" when none is missing."""
    current: Any = model
    for depth, name in enumerate(names):
        if current is None:  # past a property or method: its value's type is unknown
            return ""
        if not hasattr(current, name):
            return (
                f"{current._meta.label} has no attribute {name!r} ({'.'.join(names[: depth + 1])})"
            )
        try:
            model_field = current._meta.get_field(name)
        except FieldDoesNotExist:
            current = None
            continue
        to_one = model_field.is_relation and (model_field.many_to_one or model_field.one_to_one)
        current = model_field.related_model if to_one else None
    return ""


def _related_path(model: type[models.Model], names: tuple[str, ...]) -> str:
    """The select_related() path of the to-one relations an attribute path crosses."""
    path: list[str] = []
    current: Any = model
    for name in names[:-1]:
        try:
            model_field = current._meta.get_field(name)
        except (FieldDoesNotExist, AttributeError):
            break
        if not (model_field.is_relation and (model_field.many_to_one or model_field.one_to_one)):
            break
        path.append(name)
        current = model_field.related_model
    return "__".join(path)


def _reader(model: type[models.Model], spec: Any, label: str) -> tuple[Reader | None, str]:
    """The reader a path describes, or the problem with it."""
    if not isinstance(spec, str) or not spec.strip():
        return (
            None,
            f"{label} must be an attribute path or a dotted path to a callable, not {spec!r}",
        )
    names = spec.split(".")
    if hasattr(model, names[0]):
        missing = _missing_attribute(model, names)
        return (None, f"{label}: {missing}") if missing else (Reader(spec, tuple(names)), "")
    try:
        function = import_string(spec)
    except ImportError:
        return None, (
            f"{label}: {spec!r} is neither an attribute of {model._meta.label} nor an importable "
            "callable"
        )
    if not callable(function):
        return None, f"{label}: {spec!r} is not callable"
    return Reader(spec, function=function), ""


def _load(config: Any) -> tuple[CatalogSource | None, list[tuple[str, str]]]:
    """The source the config describes, or its problems as (check id, message) pairs:
    merch.E001 for the setting's shape and model, merch.E002 for a field path."""
    if not isinstance(config, dict):
        return None, [("merch.E001", f"{SETTING} must be None or a dict, not {config!r}")]
    problems = [
        ("merch.E001", f"{_label(key)} is not a key of {SETTING}; keys: {', '.join(CONFIG_KEYS)}")
        for key in config
        if key not in CONFIG_KEYS
    ]
    label = config.get("model")
    try:
        model = apps.get_model(label) if isinstance(label, str) else None
    except (LookupError, ValueError):
        model = None
    if model is None:
        problems.append(
            (
                "merch.E001",
                f"{_label('model')}: {label!r} is not an installed model (app_label.Model)",
            )
        )
        return None, problems
    if model is Product:
        problems.append(
            ("merch.E001", f"{_label('model')} names Aisle's own Product; set {SETTING} to None")
        )
        return None, problems
    fields = config.get("fields")
    if not isinstance(fields, dict):
        problems.append(("merch.E001", f"{_label('fields')} must be a dict of Aisle field: path"))
        return None, problems
    problems += [
        (
            "merch.E002",
            f"{_label('fields', name)} is missing; {', '.join(REQUIRED_FIELDS)} are required",
        )
        for name in REQUIRED_FIELDS
        if name not in fields
    ]
    readers: dict[str, Reader] = {}
    for name, spec in fields.items():
        if name not in SOURCE_FIELDS:
            problems.append(
                (
                    "merch.E002",
                    f"{_label('fields', name)}: Aisle has no product field {name!r}; "
                    f"fields: {', '.join(SOURCE_FIELDS)}",
                )
            )
            continue
        reader, problem = _reader(model, spec, _label("fields", name))
        if reader is None:
            problems.append(("merch.E002", problem))
        else:
            readers[name] = reader
    stock = None
    if config.get("stock") is not None:
        stock, problem = _reader(model, config["stock"], _label("stock"))
        if stock is None:
            problems.append(("merch.E002", problem))
    queryset_factory = None
    if config.get("queryset") is not None:
        try:
            queryset_factory = import_string(config["queryset"])
        except (ImportError, TypeError):
            problems.append(
                ("merch.E002", f"{_label('queryset')}: cannot import {config['queryset']!r}")
            )
        else:
            if not callable(queryset_factory):
                problems.append(("merch.E002", f"{_label('queryset')} is not callable"))
    if problems:
        return None, problems
    paths = [*readers.values(), *([stock] if stock else [])]
    related = {_related_path(model, reader.attributes) for reader in paths if reader.attributes}
    return CatalogSource(
        model=model,
        readers=readers,
        stock=stock,
        queryset_factory=queryset_factory,
        related=tuple(sorted(path for path in related if path)),
    ), []


def load_source() -> CatalogSource:
    """CATALOG_SOURCE as a CatalogSource; ImproperlyConfigured names every bad key."""
    config = aisle_settings.CATALOG_SOURCE
    if config is None:
        raise ImproperlyConfigured(
            f"AISLE[{SETTING!r}] is not set: Aisle's own catalog is the source (see "
            "merch/catalog_source.py to follow the shop's product model instead)."
        )
    source, problems = _load(config)
    if source is None:
        raise ImproperlyConfigured("; ".join(message for _, message in problems))
    return source


def check_catalog_source(app_configs=None, **kwargs) -> list[Error]:
    """System check: a CATALOG_SOURCE naming a missing model or field fails startup checks."""
    config = aisle_settings.CATALOG_SOURCE
    if config is None:
        return []
    _, problems = _load(config)
    return [
        Error(message, hint="See merch/catalog_source.py.", id=check_id)
        for check_id, message in problems
    ]


# --- one host product -> the catalog API's input


@dataclass(frozen=True)
class HostProduct:
    """One host product as read: the product dict the catalog API takes, its page URL (None:
    not mapped) and units available (None: not mapped)."""

    pk: Any
    sku: str
    product: dict[str, Any]
    url: str | None
    on_hand: int | None


def _category_names(value: Any) -> Any:
    """A slash path ("home/candles") as names; lists and "Home > Candles" pass as they are."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, str) and ">" not in value and "/" in value:
        return [name for name in (part.strip() for part in value.split("/")) if name]
    return value


def _clean_url(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidProduct("url: must be text")
    if problem := page_url_problem(value):
        raise InvalidProduct(f"url: {problem}")
    return value


def read_host_product(
    instance: Any, source: CatalogSource, stock_field: serializers.Field | None = None
) -> HostProduct:
    """Read a host instance through the field map; raises InvalidProduct naming the field when
    a value cannot be read (a host callable failed) or the url or stock is not acceptable.
    The product dict itself is validated by merch.product_input (validate_products)."""
    product: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for name, reader in source.readers.items():
        try:
            values[name] = reader(instance)
        except Exception as error:  # a host bug in one product must not stop the others
            raise InvalidProduct(
                f"{name}: could not be read ({type(error).__name__}: {error})"
            ) from error
    for name, key in PRODUCT_FIELDS.items():
        if values.get(name) is not None:
            product[key] = values[name]
    if "category_path" in product:
        product["category_path"] = _category_names(product["category_path"])
    url = _clean_url(values.get("url")) if "url" in source.readers else None
    on_hand = None
    if source.stock is not None:
        try:
            units = source.stock(instance)
        except Exception as error:
            raise InvalidProduct(
                f"stock: could not be read ({type(error).__name__}: {error})"
            ) from error
        stock_field = stock_field or StockLevelInSerializer().fields["on_hand"]
        try:
            on_hand = stock_field.run_validation(units)
        except serializers.ValidationError as error:
            raise InvalidProduct(f"stock: {reason_from_errors(error.detail)}") from None
    return HostProduct(instance.pk, source.sku_of(instance), product, url, on_hand)


# --- syncing


def _sync_batch(
    source: CatalogSource, instances: list[Any], seen: set[str], host_skus: set[str] | None
) -> SyncResult:
    """Validate and write one batch in one transaction; `seen` (SKUs validated in earlier
    batches) makes a repeated SKU a rejection, `host_skus` collects every SKU read."""
    result = SyncResult()
    stock_field = StockLevelInSerializer().fields["on_hand"]
    rows: list[HostProduct] = []
    for instance in instances:
        if host_skus is not None and (sku := source.sku_of(instance)):
            host_skus.add(sku)
        try:
            rows.append(read_host_product(instance, source, stock_field))
        except InvalidProduct as error:
            result.rejected.append(Rejection(instance.pk, source.sku_of(instance), str(error)))
    records, rejected = validate_products([row.product for row in rows], seen)
    result.rejected += [
        Rejection(rows[r.index].pk, rows[r.index].sku or r.sku, r.reason) for r in rejected
    ]
    rejected_indexes = {r.index for r in rejected}
    valid_rows = [row for index, row in enumerate(rows) if index not in rejected_indexes]
    records = [
        record if row.url is None else replace(record, url=row.url)
        for record, row in zip(records, valid_rows, strict=True)
    ]
    levels = [
        StockLevel(record.sku, on_hand=row.on_hand, reserved=0)
        for record, row in zip(records, valid_rows, strict=True)
        if row.on_hand is not None
    ]
    if not records:
        return result
    with transaction.atomic():
        written = upsert_products(records)
        if levels:
            result.stock_updated = len(update_stock_levels(levels).updated)
    result.created, result.updated = len(written.created), len(written.updated)
    result.unchanged = len(written.unchanged)
    return result


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")


def sync_products(instances: Iterable[Any], *, batch_size: int = DEFAULT_BATCH_SIZE) -> SyncResult:
    """Sync these host products (e.g. after a QuerySet.update() or bulk_create, which send no
    signals), a batch per transaction; a rejected product leaves its stored copy as it was."""
    _check_batch_size(batch_size)
    source = load_source()
    result, seen = SyncResult(), set()
    for batch in _batches(instances, batch_size):
        result.add(_sync_batch(source, batch, seen, None))
    return result


def _pages(queryset: models.QuerySet, batch_size: int) -> Iterator[list[Any]]:
    """The queryset a page at a time by primary key: memory stays flat for any catalog size,
    and no cursor stays open while batches are written."""
    queryset = queryset.order_by("pk")
    last = None
    while True:
        page = list((queryset if last is None else queryset.filter(pk__gt=last))[:batch_size])
        if page:
            yield page
        if len(page) < batch_size:
            return
        last = page[-1].pk


def _prune(host_skus: set[str], started_at: Any, batch_size: int) -> int:
    """Deactivate active products the host did not list; those written since the sync started
    (by a save receiver) are spared: the host made them after its rows were read."""
    deactivated, last = 0, 0
    candidates = Product.objects.filter(is_active=True, updated_at__lt=started_at).order_by("pk")
    while page := list(candidates.filter(pk__gt=last).values_list("pk", "sku")[:batch_size]):
        last = page[-1][0]
        gone = [pk for pk, sku in page if sku not in host_skus]
        if gone:
            deactivated += set_products_active(gone, is_active=False)
    return deactivated


def sync_catalog(prune: bool = False, batch_size: int = DEFAULT_BATCH_SIZE) -> SyncResult:
    """Sync every product of the source's queryset, `batch_size` per transaction; re-running
    changes nothing. `prune` deactivates Aisle products whose SKU the queryset no longer has."""
    _check_batch_size(batch_size)
    source = load_source()
    started_at = timezone.now()
    result, seen, host_skus = SyncResult(), set(), set()
    for page in _pages(source.queryset(), batch_size):
        result.add(_sync_batch(source, page, seen, host_skus))
    if prune:
        result.deactivated = _prune(host_skus, started_at, batch_size)
    return result


# --- following saves and deletes


_connected: set[type[models.Model]] = set()


def _sync_saved(model: type[models.Model], pk: Any) -> None:
    """On commit of a host save: sync the stored row (or deactivate it, when the shop's
    queryset leaves it out)."""
    if aisle_settings.CATALOG_SOURCE is None:
        return
    source = load_source()
    if source.model is not model:
        return
    instance = source.queryset().filter(pk=pk).first()
    if instance is None:
        stored = model._default_manager.filter(pk=pk).first()
        if stored is not None and (sku := source.sku_of(stored)):
            _deactivate(sku)
        return
    result = sync_products([instance])
    for rejection in result.rejected:
        logger.warning(
            "%s %s (SKU %r) was not synced to Aisle's catalog: %s",
            model._meta.label, pk, rejection.sku, rejection.reason,
        )  # fmt: skip


def _deactivate(sku: str) -> None:
    with suppress(Product.DoesNotExist):
        deactivate_product(sku)


def _host_product_saved(sender, instance, raw: bool = False, using=None, **kwargs) -> None:
    if raw or aisle_settings.CATALOG_SOURCE is None:  # raw: loaddata, a fixture being loaded
        return
    pk = instance.pk
    transaction.on_commit(lambda: _sync_saved(sender, pk), using=using, robust=True)


def _host_product_deleted(sender, instance, using=None, **kwargs) -> None:
    if aisle_settings.CATALOG_SOURCE is None:
        return
    try:
        sku = load_source().sku_of(instance)  # read now: the row is gone after the commit
    except ImproperlyConfigured:
        logger.exception("Cannot follow the deletion of %s %s", sender._meta.label, instance.pk)
        return
    if sku:
        transaction.on_commit(lambda: _deactivate(sku), using=using, robust=True)


def connect_receivers(*, strict: bool = True) -> bool:
    """Follow saves and deletes of CATALOG_SOURCE's model; returns whether it did (not when
    the setting is None). Idempotent (dispatch_uid), so a test may call it after changing the
    setting. A bad config raises ImproperlyConfigured, or with strict=False is logged and left
    to the system check (MerchConfig.ready: a broken setting must not stop the process)."""
    if aisle_settings.CATALOG_SOURCE is None:
        return False
    try:
        model = load_source().model
    except ImproperlyConfigured:
        if strict:
            raise
        logger.exception("Not following the shop's product model: %s is misconfigured", SETTING)
        return False
    post_save.connect(_host_product_saved, sender=model, dispatch_uid=SAVE_UID)
    post_delete.connect(_host_product_deleted, sender=model, dispatch_uid=DELETE_UID)
    _connected.add(model)
    return True


def disconnect_receivers() -> None:
    """Stop following every model connect_receivers connected."""
    for model in list(_connected):
        post_save.disconnect(sender=model, dispatch_uid=SAVE_UID)
        post_delete.disconnect(sender=model, dispatch_uid=DELETE_UID)
    _connected.clear()


# The setting's dict, held with what was loaded from it (compared by identity, not id(): the id
# of a replaced dict can come back for another one).
_loaded_source: tuple[Any, CatalogSource | None] = (None, None)


def product_sku(product: Any) -> str:
    """The SKU of what a page passes as its product: an instance of the shop's own product model
    (CATALOG_SOURCE), Aisle's Product, or the SKU itself. Pages can pass what they hold."""
    global _loaded_source
    config = aisle_settings.CATALOG_SOURCE
    if config is not None and isinstance(product, models.Model):
        if _loaded_source[0] is not config:  # loaded once per setting, not per render
            _loaded_source = (config, _load(config)[0])
        source = _loaded_source[1]
        if source is not None and isinstance(product, source.model):
            return source.sku_of(product)
    return str(getattr(product, "sku", product) or "")
