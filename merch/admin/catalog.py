"""The merchandiser's admin for the catalog and stock: categories, products, inventory.

Writes call merch.services.catalog, so that readers hear about them on commit.
"""

from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, F, Q
from django.utils import timezone
from import_export.admin import ImportExportModelAdmin

from aisle.conf import aisle_settings
from merch.admin._shared import selected_ids
from merch.models import Category, Product, Stock
from merch.resources import ProductResource, StockResource
from merch.services import catalog


class CategoryTreeFilter(admin.SimpleListFilter):
    """A category includes its descendants."""

    title = "category"
    parameter_name = "category"
    category_lookup = "category__path"

    def lookups(self, request, model_admin):
        return [(c.path, "\u2003" * c.path.count("/") + c.name) for c in Category.objects.all()]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        path = self.value()
        return queryset.filter(
            Q(**{self.category_lookup: path})
            | Q(**{f"{self.category_lookup}__startswith": path + "/"})
        )


class StockCategoryTreeFilter(CategoryTreeFilter):
    category_lookup = "product__category__path"


class StockStatusFilter(admin.SimpleListFilter):
    title = "stock"
    parameter_name = "stock"
    stock_prefix = "stock__"

    def lookups(self, request, model_admin):
        return [("in", "In stock"), ("out", "Out of stock")]

    def queryset(self, request, queryset):
        on_hand, reserved = f"{self.stock_prefix}on_hand", f"{self.stock_prefix}reserved"
        if self.value() == "in":
            return queryset.filter(**{f"{on_hand}__gt": F(reserved)})
        if self.value() == "out":
            missing = Q(stock__isnull=True) if self.stock_prefix else Q()
            return queryset.filter(missing | Q(**{f"{on_hand}__lte": F(reserved)}))
        return queryset


class InventoryStatusFilter(StockStatusFilter):
    stock_prefix = ""


class NewProductFilter(admin.SimpleListFilter):
    title = "new"
    parameter_name = "new"
    launched_lookup = "launched_at"

    def lookups(self, request, model_admin):
        return [
            ("yes", f"Launched in the last {aisle_settings.NEW_PRODUCT_HOURS} h"),
            ("no", "Older"),
        ]

    def queryset(self, request, queryset):
        since = timezone.now() - timezone.timedelta(hours=aisle_settings.NEW_PRODUCT_HOURS)
        if self.value() == "yes":
            return queryset.filter(**{f"{self.launched_lookup}__gte": since})
        if self.value() == "no":
            return queryset.filter(**{f"{self.launched_lookup}__lt": since})
        return queryset


class StockNewProductFilter(NewProductFilter):
    launched_lookup = "product__launched_at"


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("__str__", "name", "parent", "product_count")
    search_fields = ("name", "path")
    list_select_related = ("parent",)
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(product_count=Count("products"))

    @admin.display(ordering="product_count", description="products")
    def product_count(self, category):
        return category.product_count

    def save_model(self, request, obj, form, change):
        obj.path = f"{obj.parent.path}/{obj.slug}" if obj.parent else obj.slug
        super().save_model(request, obj, form, change)


class StockInline(admin.StackedInline):
    model = Stock
    fields = ("on_hand", "reserved", "available_quantity", "updated_at")
    readonly_fields = ("available_quantity", "updated_at")
    can_delete = False


@admin.register(Product)
class ProductAdmin(ImportExportModelAdmin):
    resource_classes = [ProductResource]
    list_display = ("sku", "title", "category", "price", "available", "is_active", "launched_at")
    list_display_links = ("sku", "title")
    list_select_related = ("category", "stock")
    search_fields = ("sku", "title")
    list_filter = (CategoryTreeFilter, StockStatusFilter, NewProductFilter, "is_active")
    autocomplete_fields = ("category",)
    inlines = [StockInline]
    actions = ["deactivate", "activate", "mark_out_of_stock"]
    list_per_page = 50
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request):
        return super().get_queryset(request).with_available_quantity()

    @admin.display(ordering="available_quantity_db", description="available")
    def available(self, product):
        value = product.available_quantity_db
        return max(value, 0) if value is not None else 0

    def save_model(self, request, obj, form, change):
        """An activation change goes through the service; any other edit is announced so that
        cards and content neighbours follow without a restart."""
        if change and "is_active" in form.changed_data:
            wanted = obj.is_active
            obj.is_active = not wanted
            super().save_model(request, obj, form, change)
            catalog.set_products_active([obj.pk], is_active=wanted)
            obj.is_active = wanted
        else:
            super().save_model(request, obj, form, change)
        if not change or set(form.changed_data) - {"is_active"}:
            catalog.announce_product_edit(obj)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Stock:
            return super().save_formset(request, form, formset, change)
        for stock_form in formset.forms:
            if stock_form.has_changed() or not stock_form.instance.pk:
                data = stock_form.cleaned_data
                catalog.set_stock(form.instance, on_hand=data["on_hand"], reserved=data["reserved"])
        # The admin's change message reads these; the service did the saving.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        return None

    @admin.action(description="Deactivate selected products")
    def deactivate(self, request, queryset):
        changed = catalog.set_products_active(selected_ids(queryset), is_active=False)
        self.message_user(request, f"Deactivated {changed} product(s).", messages.SUCCESS)

    @admin.action(description="Activate selected products")
    def activate(self, request, queryset):
        changed = catalog.set_products_active(selected_ids(queryset), is_active=True)
        self.message_user(request, f"Activated {changed} product(s).", messages.SUCCESS)

    @admin.action(description="Mark selected products out of stock")
    def mark_out_of_stock(self, request, queryset):
        changes = catalog.mark_out_of_stock(selected_ids(queryset))
        self.message_user(
            request, f"Marked {len(changes)} product(s) out of stock.", messages.SUCCESS
        )


@admin.register(Stock)
class StockAdmin(ImportExportModelAdmin):
    """Inventory: stock is edited right in the list; every save goes through set_stock."""

    resource_classes = [StockResource]
    list_display = ("sku", "title", "on_hand", "reserved", "available", "updated_at")
    list_editable = ("on_hand", "reserved")
    list_select_related = ("product",)
    search_fields = ("product__sku", "product__title")
    list_filter = (StockCategoryTreeFilter, InventoryStatusFilter, StockNewProductFilter)
    readonly_fields = ("product", "updated_at")
    fields = ("product", "on_hand", "reserved", "updated_at")
    actions = ["mark_out_of_stock"]
    ordering = ("product__sku",)
    list_per_page = 100

    def has_add_permission(self, request):
        return False  # stock rows come with products (product page) or the CSV import

    @admin.display(ordering="product__sku", description="SKU")
    def sku(self, stock):
        return stock.product.sku

    @admin.display(ordering="product__title", description="title")
    def title(self, stock):
        return stock.product.title

    @admin.display(description="available")
    def available(self, stock):
        return stock.available_quantity

    def save_model(self, request, obj, form, change):
        catalog.set_stock(obj.product_id, on_hand=obj.on_hand, reserved=obj.reserved)

    @admin.action(description="Mark selected products out of stock")
    def mark_out_of_stock(self, request, queryset):
        changes = catalog.mark_out_of_stock(list(queryset.values_list("product_id", flat=True)))
        self.message_user(
            request, f"Marked {len(changes)} product(s) out of stock.", messages.SUCCESS
        )
