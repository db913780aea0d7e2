"""Admin for the engine: API keys (shown once, stored hashed), the event log, models."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from merch.selectors.catalog import example_category_path
from merch.selectors.merchandising import merchandising_config
from recs.api_keys import (
    ApiKey,
    announce_key_change,
    create_api_key,
    revoke_keys,
    validate_key_scopes,
)
from recs.models import DatasetImport, Event, ModelVersion, SessionLink
from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext
from recs.training.registry import promote
from recs.training.tasks import precompute_candidates_task, train_models_task


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("name", "kind", "scopes", "is_active")

    def clean(self):
        cleaned = super().clean()
        scopes = cleaned.get("scopes") or []
        if not isinstance(scopes, list):
            self.add_error("scopes", 'A JSON list, e.g. ["read", "write"].')
            return cleaned
        try:
            cleaned["scopes"] = validate_key_scopes(cleaned.get("kind", ""), scopes)
        except ValueError as error:
            self.add_error("scopes", str(error))
        return cleaned


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are shown once, when created, and stored hashed. Secret keys never go into a page."""

    form = ApiKeyForm
    list_display = ("name", "kind", "key_prefix", "scopes", "is_active", "created_at",
                    "last_used_at")  # fmt: skip
    list_filter = ("kind", "is_active")
    search_fields = ("name", "key_prefix")
    fields = ("name", "kind", "scopes", "is_active", "key_prefix", "created_at", "last_used_at")
    readonly_fields = ("key_prefix", "created_at", "last_used_at")
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        # A key's kind is part of what was handed out: change it by making a new key.
        return (*self.readonly_fields, "kind") if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change:
            key, plaintext = create_api_key(obj.name, obj.kind, obj.scopes)
            obj.pk, obj.key_prefix, obj.key_hash = key.pk, key.key_prefix, key.key_hash
            obj._state.adding = False
            self.message_user(
                request,
                f"{key.get_kind_display().split(' (')[0].capitalize()} key for {key.name}: "
                f"{plaintext} — copy it now, it is not stored and will not be shown again.",
                messages.WARNING,
            )
            return
        if "is_active" in form.changed_data and not obj.is_active:
            revoke_keys([obj])
        super().save_model(request, obj, form, change)
        announce_key_change()  # processes holding the key check its scopes again

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


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    """Trained versions; promote one to serve, or start a training run in the background."""

    list_display = ("key", "pk", "status", "recall_at_20", "ndcg_at_10", "interactions", "fit_seconds",
                    "training_run", "created_at")  # fmt: skip
    list_filter = ("status", "key")
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ["promote_selected", "train_now"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="recall@20")
    def recall_at_20(self, version):
        return f"{version.metrics.get('recall@20', 0):.4f}"

    @admin.display(description="ndcg@10")
    def ndcg_at_10(self, version):
        return f"{version.metrics.get('ndcg@10', 0):.4f}"

    @admin.action(description="Promote selected versions to serving (and refresh candidate lists)")
    def promote_selected(self, request, queryset):
        versions = list(queryset)
        if len({v.key for v in versions}) != len(versions):
            self.message_user(request, "Pick at most one version per model key.", messages.ERROR)
            return
        for version in versions:
            promote(version)
        precompute_candidates_task.delay()
        self.message_user(
            request,
            f"Promoted {len(versions)} version(s); candidate lists refresh in the background.",
        )

    @admin.action(description="Train new versions now (in the background)")
    def train_now(self, request, queryset):
        train_models_task.delay()
        self.message_user(
            request, "Training started on the training queue; new versions appear here when done."
        )


class PreviewForm(forms.Form):
    placement = forms.ChoiceField(choices=())
    user_id = forms.CharField(required=False, help_text="A customer id, e.g. 12347")
    session_id = forms.CharField(required=False)
    product_sku = forms.CharField(label="Product SKU", required=False)
    category_path = forms.CharField(required=False)
    country = forms.CharField(required=False)
    device = forms.ChoiceField(
        required=False, choices=[("", "any"), ("desktop", "desktop"), ("mobile", "mobile"),
                                 ("tablet", "tablet")]
    )  # fmt: skip
    # Optional: the preview is opened by links that name only a placement (the rules list).
    limit = forms.IntegerField(
        min_value=1, max_value=50, required=False, help_text="Blank: the placement's size"
    )

    def __init__(self, *args, placements: list[str], category_example: str | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["placement"].choices = [(key, key) for key in placements]
        self.fields["category_path"].help_text = (
            f"e.g. {category_example}"
            if category_example
            else "Slugs from the root, '/'-joined (the catalog has no categories yet)"
        )


def recommendation_preview_view(request: HttpRequest) -> HttpResponse:
    """What a shopper would be served on a placement, with and without the live rules side by
    side, so a merchandiser sees a pin, boost, bury or exclude before shoppers do."""
    placements, _ = merchandising_config()
    form = PreviewForm(
        request.GET or None,
        placements=sorted(placements),
        category_example=example_category_path(),
    )
    without_rules = with_rules = None
    if form.is_valid():
        fields = {k: v for k, v in form.cleaned_data.items() if v not in ("", None)}
        with_rules = recommend(RecommendationContext(**fields))
        without_rules = recommend(RecommendationContext(**fields, apply_rules=False))
    context = {
        **admin.site.each_context(request),
        "title": "Preview recommendations",
        "form": form,
        "with_rules": with_rules,
        "without_rules": without_rules,
        "moved": _moves(without_rules, with_rules) if with_rules else {},
    }
    return render(request, "admin/recs/preview.html", context)


def _moves(before, after) -> dict[str, str]:
    """What the rules did to each product: pinned, new in the list, moved up or down."""
    old = {item.sku: i for i, item in enumerate(before.items)}
    moves = {}
    for i, item in enumerate(after.items):
        if item.pinned:
            moves[item.sku] = "pinned"
        elif item.sku not in old:
            moves[item.sku] = "entered"
        elif old[item.sku] != i:
            moves[item.sku] = "up" if i < old[item.sku] else "down"
    for sku in old.keys() - {item.sku for item in after.items}:
        moves[sku] = "removed"
    return moves


import recs.admin_erasure  # noqa: E402, F401  (registers the erasure admin)
