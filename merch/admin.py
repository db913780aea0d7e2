"""The merchandiser's admin: catalog, stock, rules and experiments. Writes call merch.services."""

from collections.abc import Callable, Iterable
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count, F, Q
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from import_export.admin import ImportExportModelAdmin

from merch import services
from merch.models import (
    Category,
    Experiment,
    ExperimentVariant,
    MerchandisingRule,
    Placement,
    Product,
    Stock,
    experiment_strategies,
    remaining_traffic,
)
from merch.resources import ProductResource, StockResource


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
        return [("yes", f"Launched in the last {settings.NEW_PRODUCT_HOURS} h"), ("no", "Older")]

    def queryset(self, request, queryset):
        since = timezone.now() - timezone.timedelta(hours=settings.NEW_PRODUCT_HOURS)
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


def _selected_ids(queryset) -> list[int]:
    return list(queryset.values_list("pk", flat=True))


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
            services.set_products_active([obj.pk], is_active=wanted)
            obj.is_active = wanted
        else:
            super().save_model(request, obj, form, change)
        if not change or set(form.changed_data) - {"is_active"}:
            services.announce_product_edit(obj)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Stock:
            return super().save_formset(request, form, formset, change)
        for stock_form in formset.forms:
            if stock_form.has_changed() or not stock_form.instance.pk:
                data = stock_form.cleaned_data
                services.set_stock(
                    form.instance, on_hand=data["on_hand"], reserved=data["reserved"]
                )
        # The admin's change message reads these; the service did the saving.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        return None

    @admin.action(description="Deactivate selected products")
    def deactivate(self, request, queryset):
        changed = services.set_products_active(_selected_ids(queryset), is_active=False)
        self.message_user(request, f"Deactivated {changed} product(s).", messages.SUCCESS)

    @admin.action(description="Activate selected products")
    def activate(self, request, queryset):
        changed = services.set_products_active(_selected_ids(queryset), is_active=True)
        self.message_user(request, f"Activated {changed} product(s).", messages.SUCCESS)

    @admin.action(description="Mark selected products out of stock")
    def mark_out_of_stock(self, request, queryset):
        changes = services.mark_out_of_stock(_selected_ids(queryset))
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
        services.set_stock(obj.product_id, on_hand=obj.on_hand, reserved=obj.reserved)

    @admin.action(description="Mark selected products out of stock")
    def mark_out_of_stock(self, request, queryset):
        changes = services.mark_out_of_stock(list(queryset.values_list("product_id", flat=True)))
        self.message_user(
            request, f"Marked {len(changes)} product(s) out of stock.", messages.SUCCESS
        )


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    """Where recommendations show and how each place is filled; edited right in the list."""

    list_display = (
        "key", "name", "default_strategy", "size", "exclude_purchased", "max_per_category",
        "is_active",
    )  # fmt: skip
    list_display_links = ("key", "name")
    list_editable = ("default_strategy", "size", "is_active")
    list_filter = ("default_strategy", "is_active")
    search_fields = ("key", "name")
    readonly_fields = ("updated_at",)

    def get_readonly_fields(self, request, obj=None):
        # Templates and API clients name a placement by its key: renaming it would orphan them.
        return (*self.readonly_fields, "key") if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False  # templates name placements by key: deactivate one instead

    def save_model(self, request, obj, form, change):
        services.save_placement(obj)


class LiveNowFilter(admin.SimpleListFilter):
    """Active rules inside their schedule right now, or the others."""

    title = "live now"
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return [("yes", "Live now"), ("no", "Not live")]

    def queryset(self, request, queryset):
        now = timezone.now()
        live = (
            Q(is_active=True)
            & (Q(starts_at__isnull=True) | Q(starts_at__lte=now))
            & (Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        )
        if self.value() == "yes":
            return queryset.filter(live)
        if self.value() == "no":
            return queryset.exclude(live)
        return queryset


@admin.register(MerchandisingRule)
class MerchandisingRuleAdmin(admin.ModelAdmin):
    """Pins, boosts, buries and exclusions.

    Every write, including the site-wide "delete selected" action, goes through merch.services so
    that the recommendation engine hears about it on commit.
    """

    list_display = (
        "placement", "action", "product", "category", "position", "multiplier", "starts_at",
        "ends_at", "is_active", "live_now",
    )  # fmt: skip
    list_display_links = ("placement", "action")
    list_select_related = ("placement", "product", "category")
    list_filter = ("placement", "action", "is_active", LiveNowFilter)
    search_fields = ("product__sku", "product__title")
    autocomplete_fields = ("product", "category")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("placement", "category", "product", "note")}),
        (
            "Action",
            {
                "fields": ("action", "position", "multiplier"),
                "description": "Pin: a position, multiplier 1. Boost: multiplier above 1. "
                "Bury: multiplier between 0 and 1. Exclude: no position, multiplier 1.",
            },
        ),
        ("Schedule", {"fields": ("starts_at", "ends_at", "is_active", "created_at", "updated_at")}),
    )
    actions = ["activate", "deactivate"]
    list_per_page = 100

    @admin.display(boolean=True, description="live now")
    def live_now(self, rule: MerchandisingRule) -> bool:
        return rule.is_live()

    def save_model(self, request, obj, form, change):
        services.save_merchandising_rule(obj)

    def delete_model(self, request, obj):
        services.delete_merchandising_rules([obj.pk])

    def delete_queryset(self, request, queryset):
        """The site-wide "delete selected" action (after its confirmation page) lands here."""
        services.delete_merchandising_rules(_selected_ids(queryset))

    @admin.action(description="Activate selected rules")
    def activate(self, request, queryset):
        changed = services.set_rules_active(_selected_ids(queryset), is_active=True)
        self.message_user(request, f"Activated {changed} rule(s).", messages.SUCCESS)

    @admin.action(description="Deactivate selected rules")
    def deactivate(self, request, queryset):
        changed = services.set_rules_active(_selected_ids(queryset), is_active=False)
        self.message_user(request, f"Deactivated {changed} rule(s).", messages.SUCCESS)


# Experiments


def _percent_text(value: Decimal) -> str:
    return f"{value.normalize():f}"


def traffic_summary(variants: Iterable[ExperimentVariant]) -> str:
    """The split as a merchandiser reads it: control 98 % · challenger 2 % · ease shadow."""
    variants = list(variants)
    control_share = remaining_traffic(variants)
    parts = [
        f"{v.name} shadow"
        if v.is_shadow
        else f"{v.name} {_percent_text(control_share if v.is_control else v.traffic_percent)} %"
        for v in variants
    ]
    return " · ".join(parts) or "-"


def _strategy_choices() -> list[tuple[str, object]]:
    """Placement strategies, then the learners that are not also a strategy."""
    strategies = dict(Placement.Strategy.choices)
    learners = [key for key in experiment_strategies() if key not in strategies]
    return [
        ("", "---------"),
        ("Placement strategies", list(strategies.items())),
        ("Learners", [(key, key) for key in learners]),
    ]


def _is_draft(experiment: Experiment | None) -> bool:
    return experiment is None or experiment.status == Experiment.Status.DRAFT


class ExperimentVariantForm(forms.ModelForm):
    # A choice list rather than free text; read each time, since it follows a setting.
    strategy = forms.ChoiceField(choices=_strategy_choices)

    class Meta:
        model = ExperimentVariant
        fields = ("name", "strategy", "traffic_percent", "is_control", "is_shadow")


class ExperimentVariantFormSet(BaseInlineFormSet):
    """Checks the variants as a set before anything is saved, so a bad split is a form error."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors) or not _is_draft(self.instance):
            return
        variants = [
            form.instance
            for form in self.forms
            if (form.instance.pk is not None or form.has_changed())
            and not (self.can_delete and self._should_delete_form(form))
        ]
        try:
            services.validate_variants(self.instance, variants)
        except ValidationError as error:
            raise ValidationError(error.messages) from None


class ExperimentVariantInline(admin.TabularInline):
    """Editable while the experiment is a draft; afterwards only Ramp and Promote change it."""

    model = ExperimentVariant
    form = ExperimentVariantForm
    formset = ExperimentVariantFormSet
    fields = ("name", "strategy", "traffic_percent", "is_control", "is_shadow")

    def get_extra(self, request, obj=None, **kwargs):
        if obj is None:
            return 2  # a control and a challenger
        return 1 if _is_draft(obj) else 0

    def has_add_permission(self, request, obj=None):
        return _is_draft(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return _is_draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _is_draft(obj) and super().has_delete_permission(request, obj)


class RampForm(forms.Form):
    percent = forms.DecimalField(
        label="Traffic %", min_value=0, max_value=100, max_digits=5, decimal_places=2
    )
    variant = forms.ChoiceField(
        required=False, help_text="Needed only when several variants take traffic."
    )

    def __init__(self, experiment: Experiment, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        challengers = [v for v in experiment.variants.all() if not v.is_control and not v.is_shadow]
        self.fields["variant"].choices = [
            ("", "(the only variant that takes traffic)"),
            *(
                (v.name, f"{v.name}: {v.strategy}, now {_percent_text(v.traffic_percent)} %")
                for v in challengers
            ),
        ]
        if len(challengers) == 1:
            self.fields["percent"].initial = challengers[0].traffic_percent


class VariantChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, variant: ExperimentVariant) -> str:
        role = " (the control)" if variant.is_control else " (shadow)" if variant.is_shadow else ""
        return f"{variant.name}: {variant.strategy}{role}"


class PromoteForm(forms.Form):
    variant = VariantChoiceField(
        queryset=ExperimentVariant.objects.none(), widget=forms.RadioSelect, empty_label=None
    )

    def __init__(self, experiment: Experiment, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["variant"].queryset = experiment.variants.all()


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """Experiments on placements: set up while draft, then start, ramp, pause, kill or promote.

    Every write goes through merch.services, so the render path hears about it on commit; a
    refused transition is shown as an error message, never a server error.
    """

    change_form_template = "admin/merch/experiment/change_form.html"
    action_form_template = "admin/merch/experiment/action_form.html"
    list_display = ("name", "placement", "status", "traffic", "started_at", "winner")
    list_select_related = ("placement", "winner")
    list_filter = ("status", "placement")
    search_fields = ("name", "hypothesis")
    inlines = [ExperimentVariantInline]
    fields = (
        "name", "placement", "hypothesis", "starts_at", "ends_at", "salt", "status", "traffic",
        "winner", "started_at", "stopped_at", "created_at", "updated_at",
    )  # fmt: skip
    readonly_fields = (
        "status", "traffic", "winner", "started_at", "stopped_at", "created_at", "updated_at",
    )  # fmt: skip
    actions = ["start", "pause", "kill"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("variants")

    def get_readonly_fields(self, request, obj=None):
        # Moving a started experiment or changing its salt would reshuffle who sees what.
        return (
            self.readonly_fields if _is_draft(obj) else (*self.readonly_fields, "placement", "salt")
        )

    def has_delete_permission(self, request, obj=None):
        return obj is not None and _is_draft(obj) and super().has_delete_permission(request, obj)

    @admin.display(description="traffic")
    def traffic(self, experiment: Experiment) -> str:
        return traffic_summary(experiment.variants.all()) if experiment.pk else "-"

    def save_model(self, request, obj, form, change):
        services.save_experiment(obj)

    def save_formset(self, request, form, formset, change):
        if formset.model is not ExperimentVariant:
            return super().save_formset(request, form, formset, change)
        formset.save(commit=False)  # fills new/changed/deleted_objects for the change message
        changed = [*formset.new_objects, *(variant for variant, _ in formset.changed_objects)]
        if changed or formset.deleted_objects:
            services.save_variants(form.instance, changed, deleted=formset.deleted_objects)
        return None

    def delete_model(self, request, obj):
        services.delete_experiment(obj)

    def _apply(
        self,
        request: HttpRequest,
        queryset: Iterable[Experiment],
        service: Callable[[Experiment], object],
        done: str,
    ) -> None:
        applied = 0
        for experiment in queryset:
            try:
                service(experiment)
            except ValidationError as error:
                self.message_user(
                    request, f"{experiment}: {' '.join(error.messages)}", messages.ERROR
                )
            else:
                applied += 1
        if applied:
            self.message_user(request, f"{done} {applied} experiment(s).", messages.SUCCESS)

    @admin.action(description="Start selected experiments", permissions=["change"])
    def start(self, request, queryset):
        self._apply(request, queryset, services.start_experiment, "Started")

    @admin.action(
        description="Pause selected experiments (everyone sees the control)",
        permissions=["change"],
    )
    def pause(self, request, queryset):
        self._apply(request, queryset, services.pause_experiment, "Paused")

    @admin.action(
        description="Kill selected experiments: all traffic to control now", permissions=["change"]
    )
    def kill(self, request, queryset):
        self._apply(request, queryset, services.kill_experiment, "Killed")

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/ramp/",
                self.admin_site.admin_view(self.ramp_view),
                name="{}_{}_ramp".format(*info),
            ),
            path(
                "<path:object_id>/promote/",
                self.admin_site.admin_view(self.promote_view),
                name="{}_{}_promote".format(*info),
            ),
            *super().get_urls(),
        ]

    def _experiment_for_change(self, request: HttpRequest, object_id: str) -> Experiment | None:
        experiment = self.get_object(request, unquote(object_id))
        if experiment is not None and not self.has_change_permission(request, experiment):
            raise PermissionDenied
        return experiment

    def _change_url(self, experiment: Experiment) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[experiment.pk]
        )

    def _action_form_page(
        self,
        request: HttpRequest,
        experiment: Experiment,
        form: forms.Form,
        *,
        title: str,
        intro: str,
        submit_label: str,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": experiment,
            "title": title,
            "intro": intro,
            "submit_label": submit_label,
            "summary": traffic_summary(experiment.variants.all()),
            "form": form,
            "media": self.media + form.media,
            "change_url": self._change_url(experiment),
        }
        return TemplateResponse(request, self.action_form_template, context)

    def ramp_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Set one variant's share of traffic; the control takes whatever the others do not."""
        experiment = self._experiment_for_change(request, object_id)
        if experiment is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = RampForm(experiment, data=request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                variant = services.ramp_experiment(
                    experiment, form.cleaned_data["percent"], form.cleaned_data["variant"] or None
                )
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
            else:
                split = traffic_summary(ExperimentVariant.objects.filter(experiment=experiment))
                self.message_user(
                    request,
                    f"'{variant.name}' now takes {_percent_text(variant.traffic_percent)} % of "
                    f"traffic: {split}.",
                    messages.SUCCESS,
                )
                return redirect(self._change_url(experiment))
        return self._action_form_page(
            request,
            experiment,
            form,
            title=f"Ramp {experiment}",
            intro="Set the share of shoppers who see a variant. The control takes whatever the "
            "others do not; the change reaches the storefront without a deploy.",
            submit_label="Ramp",
        )

    def promote_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Stop the experiment and make the chosen variant the placement's default."""
        experiment = self._experiment_for_change(request, object_id)
        if experiment is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = PromoteForm(experiment, data=request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                result = services.promote_winner(experiment, form.cleaned_data["variant"])
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Promoted '{result.winner}' and stopped the experiment. The "
                    f"{result.placement_key} placement now uses {result.default_strategy} "
                    f"(was {result.previous_strategy}).",
                    messages.SUCCESS,
                )
                if result.note:
                    self.message_user(request, result.note, messages.WARNING)
                return redirect(self._change_url(experiment))
        return self._action_form_page(
            request,
            experiment,
            form,
            title=f"Promote a winner of {experiment}",
            intro="This stops the experiment at once and makes the winner's strategy the "
            "placement's default for every shopper.",
            submit_label="Promote and stop",
        )
