"""The merchandiser's admin for merchandising: placements and their rules.

Writes call merch.services.merchandising, so that the engine hears about them on commit.
"""

from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone

from merch.admin._shared import selected_ids
from merch.models import MerchandisingRule, Placement
from merch.services import merchandising


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    """Where recommendations show and how each place is filled; edited right in the list."""

    list_display = (
        "key", "name", "default_strategy", "anchor", "size", "exclude_purchased",
        "max_per_category", "is_active",
    )  # fmt: skip
    list_display_links = ("key", "name")
    list_editable = ("default_strategy", "anchor", "size", "is_active")
    list_filter = ("default_strategy", "anchor", "is_active")
    search_fields = ("key", "name")
    readonly_fields = ("updated_at",)

    def get_readonly_fields(self, request, obj=None):
        # Templates and API clients name a placement by its key: renaming it would orphan them.
        return (*self.readonly_fields, "key") if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False  # templates name placements by key: deactivate one instead

    def save_model(self, request, obj, form, change):
        merchandising.save_placement(obj)


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
        merchandising.save_merchandising_rule(obj)

    def delete_model(self, request, obj):
        merchandising.delete_merchandising_rules([obj.pk])

    def delete_queryset(self, request, queryset):
        """The site-wide "delete selected" action (after its confirmation page) lands here."""
        merchandising.delete_merchandising_rules(selected_ids(queryset))

    @admin.action(description="Activate selected rules")
    def activate(self, request, queryset):
        changed = merchandising.set_rules_active(selected_ids(queryset), is_active=True)
        self.message_user(request, f"Activated {changed} rule(s).", messages.SUCCESS)

    @admin.action(description="Deactivate selected rules")
    def deactivate(self, request, queryset):
        changed = merchandising.set_rules_active(selected_ids(queryset), is_active=False)
        self.message_user(request, f"Deactivated {changed} rule(s).", messages.SUCCESS)
