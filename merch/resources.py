"""CSV import/export of products and stock (django-import-export); writes go through services."""

from django.core.exceptions import ValidationError
from import_export import fields, resources, widgets

from merch.models import Category, Product, Stock
from merch.services.catalog import get_or_create_category_path, set_products_active, set_stock

CATEGORY_SEPARATOR = " > "


class CategoryPathWidget(widgets.ForeignKeyWidget):
    """A category as its names from the root, "Home > Candles & Lights"; missing nodes are created."""

    def __init__(self):
        super().__init__(Category)

    def clean(self, value, row=None, **kwargs):
        names = [name.strip() for name in str(value or "").split(">") if name.strip()]
        return get_or_create_category_path(names) if names else None

    def render(self, value, obj=None, **kwargs):
        if value is None:
            return ""
        names = []
        node = value
        while node is not None:
            names.append(node.name)
            node = node.parent
        return CATEGORY_SEPARATOR.join(reversed(names))


class ProductResource(resources.ModelResource):
    category = fields.Field(
        attribute="category", column_name="category", widget=CategoryPathWidget()
    )
    attributes = fields.Field(
        attribute="attributes", column_name="attributes", widget=widgets.JSONWidget()
    )

    class Meta:
        model = Product
        import_id_fields = ("sku",)
        fields = (
            "sku", "title", "description", "category", "brand", "price", "currency", "attributes",
            "image_url", "is_active", "launched_at",
        )  # fmt: skip
        export_order = fields
        skip_unchanged = True
        report_skipped = False

    def get_queryset(self):
        return Product.objects.select_related("category__parent__parent")

    def before_save_instance(self, instance, row, **kwargs):
        instance.full_clean(exclude=["category"], validate_unique=False)

    def do_instance_save(self, instance, is_create):
        """Activation changes must be announced like any other (set_products_active)."""
        was_active = (
            None
            if is_create
            else Product.objects.filter(pk=instance.pk).values_list("is_active", flat=True).first()
        )
        wanted_active = instance.is_active
        if was_active is not None:
            instance.is_active = was_active
        instance.save(force_insert=is_create)
        if was_active is not None and was_active != wanted_active:
            set_products_active([instance.pk], is_active=wanted_active)
            instance.is_active = wanted_active


class StockResource(resources.ModelResource):
    sku = fields.Field(attribute="product__sku", column_name="sku", readonly=True)
    title = fields.Field(attribute="product__title", column_name="title", readonly=True)
    on_hand = fields.Field(
        attribute="on_hand", column_name="on_hand", widget=widgets.IntegerWidget()
    )
    reserved = fields.Field(
        attribute="reserved", column_name="reserved", widget=widgets.IntegerWidget()
    )
    available = fields.Field(attribute="available_quantity", column_name="available", readonly=True)

    class Meta:
        model = Stock
        import_id_fields = ("sku",)
        fields = ("sku", "title", "on_hand", "reserved", "available")
        export_order = fields
        skip_unchanged = True
        report_skipped = False

    def get_queryset(self):
        return Stock.objects.select_related("product")

    def get_instance(self, instance_loader, row):
        return self.get_queryset().filter(product__sku=str(row.get("sku", "")).strip()).first()

    def init_instance(self, row=None):
        sku = str((row or {}).get("sku", "")).strip()
        product = Product.objects.filter(sku=sku).first()
        if product is None:
            raise ValidationError(f"Unknown SKU {sku!r}: import the product first.")
        return Stock(product=product)

    def before_save_instance(self, instance, row, **kwargs):
        for name in ("on_hand", "reserved"):
            value = getattr(instance, name)
            if value is None or value < 0:
                raise ValidationError({name: f"{name} must be a whole number of 0 or more."})

    def do_instance_save(self, instance, is_create):
        set_stock(instance.product_id, on_hand=instance.on_hand, reserved=instance.reserved)
