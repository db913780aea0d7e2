"""What a merchandiser owns: categories, products, stock, placements, rules and experiments."""

import math
import secrets
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from aisle.conf import aisle_settings


class Category(models.Model):
    """A node in the category tree; `path` caches the ancestry for display and prefix queries."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(
        max_length=500, editable=False, db_index=True, help_text="Slugs from the root, '/'-joined."
    )

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["path"]
        constraints = [
            models.UniqueConstraint(fields=["path"], name="category_unique_path"),
        ]

    def __str__(self) -> str:
        return self.path.replace("/", " > ") if self.path else self.name


class ProductQuerySet(models.QuerySet):
    def with_available_quantity(self) -> "ProductQuerySet":
        return self.annotate(
            available_quantity_db=F("stock__on_hand") - F("stock__reserved"),
        )

    def in_stock(self) -> "ProductQuerySet":
        return self.filter(stock__on_hand__gt=F("stock__reserved"))

    def out_of_stock(self) -> "ProductQuerySet":
        return self.filter(Q(stock__isnull=True) | Q(stock__on_hand__lte=F("stock__reserved")))

    def new(self, now=None) -> "ProductQuerySet":
        now = now or timezone.now()
        return self.filter(
            launched_at__gte=now - timezone.timedelta(hours=aisle_settings.NEW_PRODUCT_HOURS)
        )


class Product(models.Model):
    sku = models.CharField("SKU", max_length=32, unique=True)
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    brand = models.CharField("brand or vendor", max_length=120, blank=True)
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    currency = models.CharField(max_length=3, default="GBP")
    attributes = models.JSONField(default=dict, blank=True)
    image_url = models.URLField(max_length=500, blank=True)
    url = models.CharField(
        "product page URL",
        max_length=500,
        blank=True,
        help_text="Where recommendations link the product: a path (/shop/red-lantern-12/) or an "
        "http(s) URL, for pages reverse() cannot build from the SKU. Blank = the page named by "
        "RECS_PRODUCT_URL_NAME. Kept from the shop's own catalog by AISLE['CATALOG_SOURCE'].",
    )
    is_active = models.BooleanField("active", default=True)
    launched_at = models.DateTimeField(
        default=timezone.now, help_text="When the product went on sale; drives the 'new' tier."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["sku"]
        indexes = [models.Index(fields=["launched_at"]), models.Index(fields=["is_active"])]

    def __str__(self) -> str:
        return f"{self.sku} · {self.title}"


class Stock(models.Model):
    """Inventory of one product. Change it through merch.services.catalog.set_stock, not .save()."""

    product = models.OneToOneField(Product, on_delete=models.CASCADE, related_name="stock")
    on_hand = models.PositiveIntegerField(default=0)
    reserved = models.PositiveIntegerField(default=0, help_text="Held by open carts and orders.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "stock"
        ordering = ["product__sku"]

    def __str__(self) -> str:
        return f"{self.product.sku}: {self.available_quantity} available"

    @property
    def available_quantity(self) -> int:
        return max(self.on_hand - self.reserved, 0)

    @property
    def is_available(self) -> bool:
        return self.available_quantity > 0


MAX_SLOTS = 50  # the most products one placement shows; pins address slots 1..MAX_SLOTS


class Placement(models.Model):
    """A place on the storefront that shows recommendations, and how it is filled."""

    class Strategy(models.TextChoices):
        AUTO = "auto", "Auto (the tier router decides)"
        PERSONAL = "personal", "Personal"
        SIMILAR = "similar", "Similar items"
        BOUGHT_TOGETHER = "bought_together", "Frequently bought together"
        POPULAR = "popular", "Popular"
        TRENDING = "trending", "Trending"

    class Anchor(models.TextChoices):
        PRODUCT = "product", "The product shown (similar items lead)"
        CART = "cart", "The cart (bought-together items lead; cart items are not offered)"
        CATEGORY = "category", "The category shown (its best sellers lead)"
        NONE = "none", "Nothing: the shopper's own interests"

    key = models.SlugField(
        max_length=50,
        unique=True,
        help_text="What templates and API calls name it by, e.g. 'home'.",
    )
    name = models.CharField(max_length=120)
    default_strategy = models.CharField(
        max_length=20,
        choices=Strategy.choices,
        default=Strategy.AUTO,
        help_text="Used unless an experiment on this placement assigns another.",
    )
    anchor = models.CharField(
        max_length=20,
        choices=Anchor.choices,
        default=Anchor.NONE,
        help_text="What the page is about: under the Auto strategy its lists lead the blend.",
    )
    size = models.PositiveSmallIntegerField(
        default=8,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SLOTS)],
        help_text=f"How many products it shows (1 to {MAX_SLOTS}).",
    )
    exclude_purchased = models.BooleanField(
        default=True, help_text="Hide products the shopper has already bought."
    )
    max_per_category = models.PositiveSmallIntegerField(
        default=3, help_text="Most products from one category in the list; 0 = no limit."
    )
    is_active = models.BooleanField("active", default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name or self.key


class MerchandisingRule(models.Model):
    """A merchandiser's override of one product's place in a placement's recommendations.

    Change rules through merch.services so that readers hear about it on commit.
    """

    class Action(models.TextChoices):
        EXCLUDE = "exclude", "Exclude"
        PIN = "pin", "Pin to a slot"
        BOOST = "boost", "Boost"
        BURY = "bury", "Bury"

    placement = models.ForeignKey(Placement, on_delete=models.PROTECT, related_name="rules")
    # PROTECT: deleting the category must not silently widen a rule to every page of the placement.
    category = models.ForeignKey(
        Category,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="merchandising_rules",
        help_text="Only on pages of this category or below it; blank = every page.",
    )
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="merchandising_rules"
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    position = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SLOTS)],
        help_text=f"Pin only: the slot it takes, 1 = first (up to {MAX_SLOTS}).",
    )
    multiplier = models.FloatField(
        default=1.0,
        help_text="Boost: more than 1 (2 = twice the score). Bury: between 0 and 1. Otherwise 1.",
    )
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Blank = from now on.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Blank = until switched off.")
    is_active = models.BooleanField("active", default=True)
    note = models.CharField(max_length=255, blank=True, help_text="Why the rule exists.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["placement_id", "position", "pk"]
        indexes = [
            models.Index(fields=["placement", "is_active"], name="merch_rule_placement_active"),
        ]

    def __str__(self) -> str:
        sku = self.product.sku if self.product_id else "?"
        key = self.placement.key if self.placement_id else "?"
        return f"{self.get_action_display()} {sku} on {key}"

    def clean(self) -> None:
        """Each action reads only its own knob; a stray one is refused rather than ignored."""
        errors: dict[str, str] = {}
        pin, multiplier = self.action == self.Action.PIN, self.multiplier
        if pin and self.position is None:
            errors["position"] = (
                f"A pin needs a position: the slot it takes, 1 to {MAX_SLOTS} (1 = first)."
            )
        elif not pin and self.position is not None:
            errors["position"] = "Only a pin takes a position; leave it empty."
        if multiplier is None:
            pass  # clean_fields() reports the missing value
        elif not math.isfinite(multiplier):
            errors["multiplier"] = "The multiplier must be a finite number."
        elif pin and multiplier != 1:
            errors["multiplier"] = "A pin takes a fixed slot; leave the multiplier at 1."
        elif self.action == self.Action.EXCLUDE and multiplier != 1:
            errors["multiplier"] = "An exclusion removes the product; leave the multiplier at 1."
        elif self.action == self.Action.BOOST and not multiplier > 1:
            errors["multiplier"] = "A boost needs a multiplier greater than 1 (e.g. 1.5)."
        elif self.action == self.Action.BURY and not 0 < multiplier < 1:
            errors["multiplier"] = (
                "A bury needs a multiplier between 0 and 1, exclusive (e.g. 0.5)."
            )
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "The end must be after the start."
        if errors:
            raise ValidationError(errors)

    def is_live(self, at: datetime | None = None) -> bool:
        """Active and within its schedule (start inclusive, end exclusive) at `at` (default now)."""
        at = at or timezone.now()
        return (
            self.is_active
            and (self.starts_at is None or self.starts_at <= at)
            and (self.ends_at is None or at < self.ends_at)
        )


def experiment_strategies() -> list[str]:
    """What a variant may serve: a serving strategy or a learner key (settings read on each call).

    A learner key that is also a strategy name (trending, bought_together) means that strategy.
    """
    model_keys = aisle_settings.EXPERIMENT_MODEL_KEYS
    return list(dict.fromkeys([*Placement.Strategy.values, *model_keys]))


def new_experiment_salt() -> str:
    """16 random hex characters: a fresh salt gives an experiment its own split of shoppers."""
    return secrets.token_hex(8)


class Experiment(models.Model):
    """A test on one placement: shoppers are split between variants by hashing their id with `salt`.

    Change experiments through merch.services so that the render path hears about it on commit.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused (everyone sees the control)"
        STOPPED = "stopped", "Stopped"

    # The statuses the render path reads; at most one experiment per placement is in one of them.
    LIVE_STATUSES = (Status.RUNNING, Status.PAUSED)

    name = models.CharField(max_length=120)
    placement = models.ForeignKey(Placement, on_delete=models.PROTECT, related_name="experiments")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    salt = models.CharField(
        max_length=32,
        default=new_experiment_salt,
        help_text="Mixed into the hash that assigns shoppers to variants. Fixed once started: "
        "changing it would move shoppers between variants.",
    )
    starts_at = models.DateTimeField(
        null=True, blank=True, help_text="Blank = as soon as it runs. Before this, all see control."
    )
    ends_at = models.DateTimeField(
        null=True, blank=True, help_text="Blank = until stopped. From this on, all see control."
    )
    hypothesis = models.TextField(blank=True, help_text="What you expect to change, and why.")
    planned_shoppers_per_arm = models.PositiveIntegerField(
        default=10_000,
        validators=[MinValueValidator(10)],
        help_text="About how many shoppers each shown variant will have seen by the end. The "
        "always-valid test is tuned to be most sensitive there; it stays valid at any number.",
    )
    winner = models.ForeignKey(
        "ExperimentVariant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Set when a variant is promoted.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    stopped_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The split shoppers are checked against (sample ratio mismatch) holds from this moment
    # (blank: since the start): a ramp or a paused challenger changes it, and shoppers first
    # exposed before it came under another split.
    split_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Sample ratio mismatch, as the workers' last rollup found it (recs.experiments.srm).
    srm_p_value = models.FloatField(null=True, blank=True, editable=False)
    srm_flagged_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Set while the split looks broken."
    )
    srm_acknowledged_at = models.DateTimeField(null=True, blank=True, editable=False)
    srm_acknowledged_by = models.CharField(max_length=150, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["placement"],
                condition=Q(status__in=["running", "paused"]),
                name="experiment_one_live_per_placement",
                violation_error_message="Another experiment is already running or paused on this "
                "placement; stop it before starting this one.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "The end must be after the start."})

    @property
    def srm_blocks_promotion(self) -> bool:
        return srm_blocks_promotion(self.srm_flagged_at, self.srm_acknowledged_at)


def srm_blocks_promotion(
    flagged_at: datetime | float | None, acknowledged_at: datetime | float | None
) -> bool:
    """A flagged sample ratio mismatch that nobody has acknowledged since it was flagged."""
    return flagged_at is not None and (acknowledged_at is None or acknowledged_at < flagged_at)


class ExperimentGuardrail(models.Model):
    """A metric a challenger must not hurt: when the always-valid interval of its change against
    the control lies wholly below -max_drop_percent, the workers pause that challenger."""

    class Metric(models.TextChoices):
        CONVERSION = "conversion", "Conversion per shopper"
        REVENUE_PER_SHOPPER = "revenue_per_shopper", "Revenue per shopper"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="guardrails")
    metric = models.CharField(max_length=32, choices=Metric.choices)
    max_drop_percent = models.DecimalField(
        "max drop %",
        max_digits=5,
        decimal_places=2,
        default=Decimal(5),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text="Pause a challenger once it is confidently worse than the control by more "
        "than this share of the control's value (0: any confident drop).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "metric"], name="experiment_guardrail_unique_metric"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} must not drop more than {self.max_drop_percent} %"


def remaining_traffic(variants: Iterable["ExperimentVariant"]) -> Decimal:
    """The control's share: whatever the shown, non-control variants do not take."""
    return Decimal(100) - sum(
        (v.traffic_percent or Decimal(0) for v in variants if not v.is_control and not v.is_shadow),
        Decimal(0),
    )


class ExperimentVariant(models.Model):
    """One arm of an experiment: what it serves and the share of shoppers who see it.

    The control takes whatever the others do not, so its own traffic stays 0. A shadow variant is
    scored off the render path for the same shoppers and never shown, so it takes no traffic.
    """

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    name = models.SlugField(max_length=50, help_text="Short and unique in the experiment.")
    strategy = models.CharField(
        max_length=40,
        help_text="A serving strategy (auto, personal, similar, ...) or a learner key (ease, ...).",
    )
    traffic_percent = models.DecimalField(
        "traffic %",
        max_digits=5,
        decimal_places=2,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text="Share of shoppers who see it. The control takes whatever the others do not "
        "(leave it 0); a shadow takes none.",
    )
    is_control = models.BooleanField("control", default=False)
    is_shadow = models.BooleanField(
        "shadow", default=False, help_text="Scored for the same shoppers and logged, never shown."
    )
    # A paused challenger's shoppers see the control, unlogged, while the rest of the test runs.
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    paused_reason = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["experiment_id", "-is_control", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "name"], name="experiment_variant_unique_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """One variant alone; merch.services.experiments.validate_variants checks them as a set."""
        errors: dict[str, str] = {}
        allowed = experiment_strategies()
        if self.strategy and self.strategy not in allowed:
            errors["strategy"] = (
                f"Unknown strategy {self.strategy!r}; choose one of: {', '.join(allowed)}."
            )
        traffic = self.traffic_percent
        if self.is_control and self.is_shadow:
            errors["is_shadow"] = "The control is what shoppers see; it cannot be a shadow."
        elif self.is_control and traffic:
            errors["traffic_percent"] = (
                "The control takes whatever the others do not; leave its traffic at 0."
            )
        elif self.is_shadow and traffic:
            errors["traffic_percent"] = "A shadow variant is never shown; leave its traffic at 0."
        if errors:
            raise ValidationError(errors)
