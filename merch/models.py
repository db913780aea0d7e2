"""Catalog and inventory as a merchandiser sees them: categories, products, stock."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


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
            launched_at__gte=now - timezone.timedelta(hours=settings.NEW_PRODUCT_HOURS)
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
    """Inventory of one product. Change it through merch.services.set_stock, never .save()."""

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
