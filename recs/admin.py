"""Admin for the engine: storefront keys (shown once, stored hashed) and the event log."""

from django.contrib import admin, messages

from recs.keys import StorefrontKey, create_storefront_key, revoke_keys
from recs.models import DatasetImport, Event, SessionLink


@admin.register(StorefrontKey)
class StorefrontKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "key_prefix", "scopes", "is_active", "created_at", "last_used_at")
    list_filter = ("is_active",)
    search_fields = ("name", "key_prefix")
    fields = ("name", "scopes", "is_active", "key_prefix", "created_at", "last_used_at")
    readonly_fields = ("key_prefix", "created_at", "last_used_at")
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if not change:
            key, plaintext = create_storefront_key(obj.name, obj.scopes or ["write"])
            obj.pk, obj.key_prefix, obj.key_hash = key.pk, key.key_prefix, key.key_hash
            obj._state.adding = False
            self.message_user(
                request,
                f"Key for {key.name}: {plaintext} — copy it now, it is not stored and will not "
                "be shown again.",
                messages.WARNING,
            )
            return
        if "is_active" in form.changed_data and not obj.is_active:
            revoke_keys([obj])
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        self.message_user(request, f"Revoked {revoke_keys(list(queryset))} key(s).")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The event log, read-only: it is the source of truth."""

    list_display = ("occurred_at", "event_type", "product_sku", "user_id", "session_id", "country")
    list_filter = ("event_type",)
    search_fields = ("event_id", "user_id", "session_id", "product_sku", "order_id")
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


admin.site.register(SessionLink, list_display=("session_id", "user_id", "linked_at"))
admin.site.register(DatasetImport, list_display=("name", "file_sha256", "imported_at"))
