"""Writes to catalog, stock, merchandising and experiments; each announces itself on commit."""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.text import slugify

from merch.models import (
    Category,
    Experiment,
    ExperimentVariant,
    MerchandisingRule,
    Placement,
    Product,
    Stock,
    remaining_traffic,
)
from merch.signals import (
    StockChange,
    experiments_changed,
    merchandising_changed,
    products_activation_changed,
    products_changed,
    stock_changed,
)


def _announce_stock_changes(changes: list[StockChange]) -> None:
    if changes:
        transaction.on_commit(lambda: stock_changed.send(sender=Stock, changes=changes))


@transaction.atomic
def set_stock(
    product: Product | int, *, on_hand: int | None = None, reserved: int | None = None
) -> Stock:
    """Set a product's on-hand and/or reserved quantity; creates the stock row when missing."""
    product_id = product if isinstance(product, int) else product.pk
    if (on_hand is not None and on_hand < 0) or (reserved is not None and reserved < 0):
        raise ValueError("Stock quantities cannot be negative.")
    stock, _ = (
        Stock.objects.select_for_update()
        .select_related("product")
        .get_or_create(product_id=product_id)
    )
    was_available = stock.is_available
    before = (stock.on_hand, stock.reserved)
    if on_hand is not None:
        stock.on_hand = on_hand
    if reserved is not None:
        stock.reserved = reserved
    if (stock.on_hand, stock.reserved) != before or stock._state.adding:
        stock.save()
        _announce_stock_changes(
            [
                StockChange(
                    product_id=product_id,
                    sku=stock.product.sku,
                    available_quantity=stock.available_quantity,
                    was_available=was_available,
                )
            ]
        )
    return stock


@dataclass(frozen=True)
class StockLevel:
    """A product's stock as a feed states it; `reserved=None` keeps what is stored (0 if new)."""

    sku: str
    on_hand: int
    reserved: int | None = 0


@dataclass(frozen=True)
class StockLevelsResult:
    """What update_stock_levels did, by SKU."""

    updated: list[str]
    unchanged: list[str]
    unknown: list[str]
    changes: list[StockChange]


@transaction.atomic
def set_stock_levels(levels: Iterable[StockLevel]) -> list[StockChange]:
    """Set many products' stock in one transaction with bulk queries (imports, flash sales).

    Unknown SKUs raise KeyError before anything is written.
    """
    levels = list(levels)
    known = set(Product.objects.filter(sku__in={level.sku for level in levels}).values_list(
        "sku", flat=True
    ))  # fmt: skip
    missing = sorted({level.sku for level in levels} - known)
    if missing:
        raise KeyError(f"Unknown SKUs: {', '.join(missing[:20])}")
    return update_stock_levels(levels).changes


@transaction.atomic
def update_stock_levels(levels: Iterable[StockLevel]) -> StockLevelsResult:
    """Like set_stock_levels, but unknown SKUs are reported instead of failing the batch, so
    that a feed's other rows still land (the catalog API's partial acceptance). A SKU given
    twice takes its last level."""
    by_sku = {level.sku: level for level in levels}
    for level in by_sku.values():
        if level.on_hand < 0 or (level.reserved is not None and level.reserved < 0):
            raise ValueError(f"Stock quantities cannot be negative (SKU {level.sku}).")
    products = dict(Product.objects.filter(sku__in=list(by_sku)).values_list("sku", "pk"))
    existing = {
        stock.product_id: stock
        for stock in Stock.objects.select_for_update().filter(product_id__in=products.values())
    }
    to_create: list[Stock] = []
    to_update: list[Stock] = []
    changes: list[StockChange] = []
    unchanged: list[str] = []
    now = timezone.now()
    for sku, level in by_sku.items():
        product_id = products.get(sku)
        if product_id is None:
            continue
        stock = existing.get(product_id)
        if stock is None:
            reserved = level.reserved or 0
            stock = Stock(product_id=product_id, on_hand=level.on_hand, reserved=reserved)
            stock.updated_at = now
            to_create.append(stock)
            was_available = False
        else:
            reserved = stock.reserved if level.reserved is None else level.reserved
            if (stock.on_hand, stock.reserved) == (level.on_hand, reserved):
                unchanged.append(sku)
                continue
            was_available = stock.is_available
            stock.on_hand, stock.reserved, stock.updated_at = level.on_hand, reserved, now
            to_update.append(stock)
        changes.append(
            StockChange(
                product_id=product_id,
                sku=sku,
                available_quantity=stock.available_quantity,
                was_available=was_available,
            )
        )
    Stock.objects.bulk_create(to_create, batch_size=1000)
    Stock.objects.bulk_update(to_update, ["on_hand", "reserved", "updated_at"], batch_size=1000)
    _announce_stock_changes(changes)
    return StockLevelsResult(
        updated=[change.sku for change in changes],
        unchanged=unchanged,
        unknown=[sku for sku in by_sku if sku not in products],
        changes=changes,
    )


def mark_out_of_stock(product_ids: Sequence[int]) -> list[StockChange]:
    """Sell out products: on hand drops to what is already reserved (nothing left to sell)."""
    stocks = Stock.objects.filter(product_id__in=product_ids).select_related("product")
    levels = {
        s.product.sku: StockLevel(s.product.sku, on_hand=s.reserved, reserved=s.reserved)
        for s in stocks
    }
    for sku in (
        Product.objects.filter(pk__in=product_ids)
        .exclude(stock__isnull=False)
        .values_list("sku", flat=True)
    ):
        levels[sku] = StockLevel(sku, on_hand=0, reserved=0)
    return set_stock_levels(levels.values())


@transaction.atomic
def set_products_active(product_ids: Sequence[int], *, is_active: bool) -> int:
    """Activate or deactivate products; returns how many changed."""
    changing = Product.objects.filter(pk__in=product_ids).exclude(is_active=is_active)
    skus = list(changing.values_list("sku", flat=True))
    updated = changing.update(is_active=is_active, updated_at=timezone.now())
    _announce_activation(skus, is_active)
    return updated


def _announce_activation(skus: list[str], is_active: bool) -> None:
    if skus:
        transaction.on_commit(
            lambda: products_activation_changed.send(sender=Product, skus=skus, is_active=is_active)
        )


@transaction.atomic
def deactivate_product(sku: str) -> Product:
    """Take a product off sale by SKU (the catalog API's DELETE); raises Product.DoesNotExist.

    The row and its history stay: events may still name it, and an upsert can bring it back."""
    product = Product.objects.select_for_update().get(sku=sku)
    if product.is_active:
        set_products_active([product.pk], is_active=False)
        product.refresh_from_db()
    return product


def get_or_create_category_path(names: Sequence[str]) -> Category:
    """Return the leaf of a category path like ["Home", "Candles"], creating missing nodes."""
    if not names:
        raise ValueError("A category path needs at least one name.")
    parent: Category | None = None
    path_parts: list[str] = []
    for name in names:
        slug = slugify(name) or "unnamed"
        path_parts.append(slug)
        parent, _ = Category.objects.get_or_create(
            path="/".join(path_parts), defaults={"name": name, "slug": slug, "parent": parent}
        )
    assert parent is not None
    return parent


@dataclass(frozen=True)
class ProductRecord:
    """A product as an importer describes it: every field is replaced on upsert, except that a
    missing `launched_at` keeps the stored one (now, for a new product)."""

    sku: str
    title: str
    price: Decimal
    category_path: tuple[str, ...] = ()
    description: str = ""
    brand: str = ""
    currency: str = "GBP"
    attributes: dict[str, Any] | None = None
    image_url: str = ""
    launched_at: Any = None
    is_active: bool = True


@dataclass(frozen=True)
class UpsertResult:
    """What upsert_products did, by SKU; an identical re-sent product is `unchanged`."""

    created: list[str]
    updated: list[str]
    unchanged: list[str]


_UPSERT_FIELDS = [
    "title", "description", "category", "brand", "price", "currency", "attributes",
    "image_url", "launched_at", "is_active",
]  # fmt: skip


@transaction.atomic
def upsert_products(records: Iterable[ProductRecord]) -> UpsertResult:
    """Create or update products by SKU in bulk. Idempotent: a product whose fields are already
    stored is left alone (its updated_at too). A SKU given twice takes its last record.

    On commit, readers hear which products were created or changed (products_changed), and
    which may no longer be sold or may be sold again (products_activation_changed)."""
    by_sku = {record.sku: record for record in records}
    categories: dict[tuple[str, ...], Category | None] = {(): None}
    for record in by_sku.values():
        if record.category_path not in categories:
            categories[record.category_path] = get_or_create_category_path(record.category_path)
    existing = {p.sku: p for p in Product.objects.select_for_update().filter(sku__in=list(by_sku))}
    now = timezone.now()
    to_create: list[Product] = []
    to_update: list[Product] = []
    unchanged: list[str] = []
    flipped: dict[bool, list[str]] = {True: [], False: []}
    for sku, record in by_sku.items():
        category = categories[record.category_path]
        values = {
            "title": record.title,
            "description": record.description,
            "category_id": category.pk if category else None,
            "brand": record.brand,
            "price": record.price,
            "currency": record.currency,
            "attributes": record.attributes or {},
            "image_url": record.image_url,
            "is_active": record.is_active,
        }
        product = existing.get(sku)
        if product is None:
            product = Product(sku=sku, launched_at=record.launched_at or now, **values)
            to_create.append(product)
            continue
        if record.launched_at is not None:
            values["launched_at"] = record.launched_at
        if all(getattr(product, name) == value for name, value in values.items()):
            unchanged.append(sku)
            continue
        if product.is_active != record.is_active:
            flipped[record.is_active].append(sku)
        for name, value in values.items():
            setattr(product, name, value)
        product.updated_at = now
        to_update.append(product)
    Product.objects.bulk_create(to_create, batch_size=1000)
    Product.objects.bulk_update(to_update, [*_UPSERT_FIELDS, "updated_at"], batch_size=1000)
    created = [p.sku for p in to_create]
    # A new product has no stock yet: readers must learn that it cannot be sold (and whether
    # it is active) as they would for a flip, or it would count as available until the next
    # periodic sync.
    for is_active in (False, True):
        _announce_activation(
            flipped[is_active] + [p.sku for p in to_create if p.is_active == is_active], is_active
        )
    changed = created + [p.sku for p in to_update]
    if changed:
        transaction.on_commit(lambda: products_changed.send(sender=Product, skus=changed))
    return UpsertResult(created=created, updated=[p.sku for p in to_update], unchanged=unchanged)


def announce_product_edit(product: Product) -> None:
    """A product saved elsewhere (the admin form): readers reload its card and content
    neighbours on commit, as after an upsert."""
    sku = product.sku
    transaction.on_commit(lambda: products_changed.send(sender=Product, skus=[sku]))


def _announce_merchandising_change(sender: type[models.Model]) -> None:
    transaction.on_commit(lambda: merchandising_changed.send(sender=sender))


def _differs_from_stored(instance: models.Model) -> bool:
    """Whether saving would change the stored row (a new row always does); locks the row."""
    if instance._state.adding or instance.pk is None:
        return True
    model = type(instance)
    stored = model._default_manager.select_for_update().filter(pk=instance.pk).first()
    if stored is None:
        return True
    return any(
        getattr(stored, field.attname) != getattr(instance, field.attname)
        for field in model._meta.concrete_fields
        if not getattr(field, "auto_now", False) and not getattr(field, "auto_now_add", False)
    )


def _rule_ids(rule_ids: Iterable[int | str]) -> list[int]:
    try:
        return [int(rule_id) for rule_id in rule_ids]
    except (TypeError, ValueError) as error:
        raise ValidationError(f"Rule ids must be integers ({error}).") from error


@transaction.atomic
def save_placement(placement: Placement) -> Placement:
    """Validate and save a placement; readers hear about it on commit if anything changed."""
    placement.full_clean()
    if _differs_from_stored(placement):
        placement.save()
        _announce_merchandising_change(Placement)
    return placement


@transaction.atomic
def save_merchandising_rule(rule: MerchandisingRule) -> MerchandisingRule:
    """Validate and save a rule; readers hear about it on commit if anything changed."""
    rule.full_clean()
    if _differs_from_stored(rule):
        rule.save()
        _announce_merchandising_change(MerchandisingRule)
    return rule


@transaction.atomic
def delete_merchandising_rules(rule_ids: Iterable[int]) -> int:
    """Delete rules; returns how many were deleted."""
    deleted, _ = MerchandisingRule.objects.filter(pk__in=_rule_ids(rule_ids)).delete()
    if deleted:
        _announce_merchandising_change(MerchandisingRule)
    return deleted


@transaction.atomic
def set_rules_active(rule_ids: Iterable[int], *, is_active: bool) -> int:
    """Switch rules on or off without deleting them; returns how many changed."""
    if not isinstance(is_active, bool):
        raise ValidationError("is_active must be True or False.")
    changed = (
        MerchandisingRule.objects.filter(pk__in=_rule_ids(rule_ids))
        .exclude(is_active=is_active)
        .update(is_active=is_active, updated_at=timezone.now())
    )
    if changed:
        _announce_merchandising_change(MerchandisingRule)
    return changed


# Experiments

_STATE_PHRASES = {
    Experiment.Status.DRAFT: "still a draft",
    Experiment.Status.RUNNING: "running",
    Experiment.Status.PAUSED: "paused",
    Experiment.Status.STOPPED: "stopped",
}


def _state(status: str) -> str:
    return _STATE_PHRASES.get(status, status)


def _format_percent(value: Decimal) -> str:
    """98.00 -> "98", 2.50 -> "2.5": how a merchandiser writes a share."""
    return f"{value.normalize():f}"


def _announce_experiment_change(experiment_id: int) -> None:
    transaction.on_commit(
        lambda: experiments_changed.send(sender=Experiment, experiment_id=experiment_id)
    )


@dataclass(frozen=True)
class VariantSpec:
    """One variant as create_experiment takes it; the control's traffic is ignored (keep it 0)."""

    name: str
    strategy: str
    traffic_percent: Decimal | float | int
    is_control: bool = False
    is_shadow: bool = False


def _percent(value: Decimal | float | int | str) -> Decimal:
    """A traffic share as the database stores it; what it cannot store exactly is refused."""
    try:
        percent = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationError(f"Traffic must be a percentage, not {value!r}.") from None
    if (
        not percent.is_finite()
        or not Decimal(0) <= percent <= Decimal(100)
        or percent != percent.quantize(Decimal("0.01"))
    ):
        raise ValidationError("Traffic is a percentage from 0 to 100, with at most two decimals.")
    return percent


def _clean_variant(variant: ExperimentVariant) -> None:
    """full_clean, with each message saying which variant and field it is about."""
    try:
        variant.full_clean(exclude=["experiment"])
    except ValidationError as error:
        messages = []
        for field, field_messages in error.message_dict.items():
            label = (
                ""
                if field == "__all__"
                else f"{ExperimentVariant._meta.get_field(field).verbose_name}: "
            )
            messages += [
                f"Variant '{variant.name}', {label}{message}" for message in field_messages
            ]
        raise ValidationError(messages) from None


def validate_variants(
    experiment: Experiment, variants: Iterable[ExperimentVariant] | None = None
) -> None:
    """Check an experiment's variants as a set; each variant's own fields are its clean()'s job.

    Pass `variants` to check a set before it is saved (create_experiment, the admin's inline);
    without it the saved variants are read. The control takes whatever the others do not, so only
    the shown, non-control variants' traffic counts towards the 100 %.
    """
    variants = list(experiment.variants.all() if variants is None else variants)
    errors: list[str] = []
    controls = [variant for variant in variants if variant.is_control]
    if len(controls) != 1:
        errors.append(
            f"An experiment needs exactly one control variant; this one has {len(controls)}."
        )
    if any(variant.is_shadow for variant in controls):
        errors.append("The control is what shoppers see; it cannot be a shadow.")
    shadows_with_traffic = [v.name for v in variants if v.is_shadow and v.traffic_percent]
    if shadows_with_traffic:
        errors.append(
            "A shadow variant is never shown, so it takes no traffic; set the traffic of "
            f"{', '.join(shadows_with_traffic)} to 0."
        )
    taken = Decimal(100) - remaining_traffic(variants)
    if taken > 100:
        errors.append(
            f"The variants other than the control take {_format_percent(taken)} % of traffic; "
            "together they can take at most 100 % (the control takes whatever they do not)."
        )
    repeated = sorted(
        name for name, count in Counter(v.name for v in variants).items() if count > 1
    )
    if repeated:
        errors.append(f"Variant names must be unique in an experiment: {', '.join(repeated)}.")
    if errors:
        raise ValidationError(errors)


def _locked(experiment: Experiment) -> Experiment:
    """The stored row, locked: transitions decide from what is committed, not from a stale copy."""
    return Experiment.objects.select_for_update().select_related("placement").get(pk=experiment.pk)


def _transition(experiment: Experiment, locked: Experiment, **changes: Any) -> Experiment:
    """Write `changes` to the locked row, mirror them on the caller's copy, announce on commit."""
    for field, value in changes.items():
        setattr(locked, field, value)
        setattr(experiment, field, value)
    locked.save(update_fields=[*changes, "updated_at"])
    experiment.updated_at = locked.updated_at
    _announce_experiment_change(locked.pk)
    return experiment


@transaction.atomic
def create_experiment(
    name: str,
    placement: Placement,
    variants: Sequence[VariantSpec],
    *,
    hypothesis: str = "",
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> Experiment:
    """Create a draft experiment and its variants; nothing is saved unless all of it is valid."""
    experiment = Experiment(
        name=name, placement=placement, hypothesis=hypothesis, starts_at=starts_at, ends_at=ends_at
    )
    experiment.full_clean()
    built = [
        ExperimentVariant(
            experiment=experiment,
            name=spec.name,
            strategy=spec.strategy,
            traffic_percent=_percent(spec.traffic_percent),
            is_control=spec.is_control,
            is_shadow=spec.is_shadow,
        )
        for spec in variants
    ]
    for variant in built:
        _clean_variant(variant)
    validate_variants(experiment, built)
    experiment.save()
    ExperimentVariant.objects.bulk_create(built)
    _announce_experiment_change(experiment.pk)
    return experiment


@transaction.atomic
def save_experiment(experiment: Experiment) -> Experiment:
    """Validate and save an experiment's own fields; readers hear about it on commit if changed.

    Name, hypothesis and schedule can change at any time. Placement and salt are fixed once it
    has started (a new salt would move shoppers between variants mid-test), and status, winner
    and start/stop times change only through the transitions below.
    """
    experiment.full_clean()
    stored = (
        Experiment.objects.select_for_update().filter(pk=experiment.pk).first()
        if experiment.pk
        else None
    )
    lifecycle = ("status", "winner_id", "started_at", "stopped_at")
    if stored is None:
        if experiment.status != Experiment.Status.DRAFT or experiment.winner_id:
            raise ValidationError("A new experiment is a draft; start it once it is saved.")
    else:
        if any(getattr(stored, f) != getattr(experiment, f) for f in lifecycle):
            raise ValidationError(
                "Change an experiment's status through start, pause, kill or promote."
            )
        if stored.status != Experiment.Status.DRAFT and (
            (stored.placement_id, stored.salt) != (experiment.placement_id, experiment.salt)
        ):
            raise ValidationError(
                "The placement and salt are fixed once an experiment has started: changing them "
                "would move shoppers between variants."
            )
    if _differs_from_stored(experiment):
        experiment.save()
        _announce_experiment_change(experiment.pk)
    return experiment


@transaction.atomic
def save_variants(
    experiment: Experiment,
    variants: Sequence[ExperimentVariant],
    *,
    deleted: Sequence[ExperimentVariant] = (),
) -> list[ExperimentVariant]:
    """Add or change (`variants`) and delete (`deleted`) a draft's variants; returns them all.

    The resulting set is checked as a whole before anything is written. Once an experiment has
    started only ramp_experiment changes it: an arm edited mid-test would mix two treatments in
    one result.
    """
    locked = _locked(experiment)
    if locked.status != Experiment.Status.DRAFT:
        raise ValidationError(
            "Variants can be edited only while the experiment is a draft; this one is "
            f"{_state(locked.status)}. Use Ramp to change traffic."
        )
    for variant in [*variants, *deleted]:
        if variant.experiment_id not in (None, locked.pk):
            raise ValidationError(f"Variant '{variant.name}' belongs to another experiment.")
        variant.experiment = locked
    touched = {variant.pk for variant in [*variants, *deleted] if variant.pk}
    kept = [variant for variant in locked.variants.all() if variant.pk not in touched]
    for variant in variants:
        _clean_variant(variant)
    validate_variants(locked, [*kept, *variants])
    deleted_ids = [variant.pk for variant in deleted if variant.pk]
    ExperimentVariant.objects.filter(experiment=locked, pk__in=deleted_ids).delete()
    for variant in variants:
        variant.save()
    if variants or deleted_ids:
        _announce_experiment_change(locked.pk)
    return list(locked.variants.all())


@transaction.atomic
def delete_experiment(experiment: Experiment) -> None:
    """Delete a draft; a started experiment keeps its record, since its results refer to it."""
    locked = _locked(experiment)
    if locked.status != Experiment.Status.DRAFT:
        raise ValidationError(
            f"Only a draft can be deleted; this one is {_state(locked.status)}, and its results "
            "refer to it."
        )
    experiment_id = locked.pk
    locked.delete()
    _announce_experiment_change(experiment_id)


@transaction.atomic
def start_experiment(experiment: Experiment) -> Experiment:
    """Draft or paused -> running. started_at keeps the first start, so a resume does not reset it.

    At most one experiment per placement runs or pauses at a time: two would compete for the same
    shoppers and neither result would mean anything.
    """
    locked = _locked(experiment)
    if locked.status not in (Experiment.Status.DRAFT, Experiment.Status.PAUSED):
        raise ValidationError(
            f"Only a draft or paused experiment can start; this one is {_state(locked.status)}."
        )
    validate_variants(locked)
    # Lock the placement so that two experiments starting at once on it cannot both see it free.
    placement = Placement.objects.select_for_update().get(pk=locked.placement_id)
    other = (
        Experiment.objects.filter(placement_id=locked.placement_id, status__in=locked.LIVE_STATUSES)
        .exclude(pk=locked.pk)
        .first()
    )
    if other is not None:
        raise ValidationError(
            f"'{other.name}' is already {_state(other.status)} on the {placement} "
            "placement; kill it or promote its winner before starting this one."
        )
    now = timezone.now()
    if locked.ends_at is not None and locked.ends_at <= now:
        raise ValidationError(
            f"Its schedule ended at {timezone.localtime(locked.ends_at):%Y-%m-%d %H:%M}; move the "
            "end later (or clear it) before starting it."
        )
    return _transition(
        experiment, locked, status=Experiment.Status.RUNNING, started_at=locked.started_at or now
    )


@transaction.atomic
def pause_experiment(experiment: Experiment) -> Experiment:
    """Running -> paused: everyone sees the control until it starts again; assignments are kept."""
    locked = _locked(experiment)
    if locked.status != Experiment.Status.RUNNING:
        raise ValidationError(
            f"Only a running experiment can be paused; this one is {_state(locked.status)}."
        )
    return _transition(experiment, locked, status=Experiment.Status.PAUSED)


@transaction.atomic
def kill_experiment(experiment: Experiment) -> Experiment:
    """Stop at once: it leaves the render path's config, so all traffic goes back to the control.

    The variants' traffic is left as it was, as a record of the split the results came from.
    """
    locked = _locked(experiment)
    if locked.status == Experiment.Status.STOPPED:
        raise ValidationError("This experiment is already stopped.")
    return _transition(
        experiment, locked, status=Experiment.Status.STOPPED, stopped_at=timezone.now()
    )


@transaction.atomic
def ramp_experiment(
    experiment: Experiment, percent: Decimal | float, variant_name: str | None = None
) -> ExperimentVariant:
    """Set the traffic of one shown, non-control variant; the control takes what is left.

    Without `variant_name` the experiment must have exactly one such variant, so that a ramp never
    lands on an arm the merchandiser did not mean.
    """
    locked = _locked(experiment)
    if locked.status == Experiment.Status.STOPPED:
        raise ValidationError("A stopped experiment cannot be ramped; create a new one instead.")
    share = _percent(percent)
    variants = list(locked.variants.all())
    challengers = [v for v in variants if not v.is_control and not v.is_shadow]
    if variant_name is None:
        if not challengers:
            raise ValidationError(
                "This experiment has no variant to ramp: the control takes whatever the others do "
                "not, and shadow variants take no traffic."
            )
        if len(challengers) > 1:
            names = ", ".join(v.name for v in challengers)
            raise ValidationError(
                f"This experiment has several variants that take traffic ({names}); say which "
                "one to ramp."
            )
        target = challengers[0]
    else:
        target = next((v for v in variants if v.name == variant_name), None)
        if target is None:
            raise ValidationError(f"This experiment has no variant named '{variant_name}'.")
        if target.is_control:
            raise ValidationError(
                "The control takes whatever the others do not; ramp another variant instead."
            )
        if target.is_shadow:
            raise ValidationError("A shadow variant is never shown, so it takes no traffic.")
    others = sum((v.traffic_percent for v in challengers if v.pk != target.pk), Decimal(0))
    if others + share > 100:
        total, left = _format_percent(others + share), _format_percent(100 - others)
        raise ValidationError(
            f"That would give the variants other than the control {total} % of traffic; together "
            f"they can take at most 100 % ({left} % is left for '{target.name}')."
        )
    if target.traffic_percent != share:
        target.traffic_percent = share
        target.save(update_fields=["traffic_percent"])
        locked.save(update_fields=["updated_at"])
        _announce_experiment_change(locked.pk)
    return target


@dataclass(frozen=True)
class PromotionResult:
    """What promoting a winner changed, for the merchandiser's message."""

    experiment_id: int
    winner: str
    winner_strategy: str
    placement_key: str
    previous_strategy: str
    default_strategy: str
    note: str = ""

    @property
    def placement_changed(self) -> bool:
        return self.previous_strategy != self.default_strategy


@transaction.atomic
def promote_winner(experiment: Experiment, variant: ExperimentVariant) -> PromotionResult:
    """Stop the experiment with `variant` as winner and make it the placement's default.

    A learner key is not a placement strategy, so a learner winner sets the placement to auto
    (the tier router) and the note says so: serving that learner is the router's decision.
    An experiment killed earlier can still have its winner promoted once the results are in.
    """
    locked = _locked(experiment)
    if locked.status == Experiment.Status.DRAFT:
        raise ValidationError("A draft has no results yet; start it before promoting a winner.")
    if locked.winner_id is not None:
        raise ValidationError(f"This experiment already promoted '{locked.winner}'.")
    winner = locked.variants.filter(pk=variant.pk).first()
    if winner is None:
        raise ValidationError(f"Variant '{variant.name}' is not part of this experiment.")
    placement = Placement.objects.select_for_update().get(pk=locked.placement_id)
    previous_strategy = placement.default_strategy
    note = ""
    if winner.strategy in Placement.Strategy.values:
        placement.default_strategy = winner.strategy
    else:
        placement.default_strategy = Placement.Strategy.AUTO
        note = (
            f"'{winner.strategy}' is a learner, not a placement strategy, so the {placement} "
            "placement now uses auto (the tier router decides); to serve it there, make it the "
            "router's model."
        )
    save_placement(placement)
    _transition(
        experiment,
        locked,
        status=Experiment.Status.STOPPED,
        winner=winner,
        stopped_at=locked.stopped_at or timezone.now(),
    )
    return PromotionResult(
        experiment_id=locked.pk,
        winner=winner.name,
        winner_strategy=winner.strategy,
        placement_key=placement.key,
        previous_strategy=previous_strategy,
        default_strategy=placement.default_strategy,
        note=note,
    )
