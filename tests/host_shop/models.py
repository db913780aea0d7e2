"""A shop's own catalog, shaped like a typical Django shop's (not like Aisle's): its own names,
a category with a slug path, a public flag, stock on the product, slug-and-id product URLs."""

from django.db import models
from django.utils.text import slugify


class Category(models.Model):
    name = models.CharField(max_length=120)
    slug_path = models.CharField(max_length=500, help_text="Slugs from the root, '/'-joined.")

    def __str__(self) -> str:
        return self.slug_path


class ShopProduct(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    brand = models.CharField(max_length=120, blank=True)
    image_url = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    is_public = models.BooleanField(default=True)
    stock_on_hand = models.IntegerField(default=0)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        """Slug and id, as django-oscar does: not something reverse() can build from a SKU."""
        return f"/shop/{slugify(self.name)}-{self.pk}/"
