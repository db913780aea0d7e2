"""Admin of the right to erasure: the audit list, an "Erase a shopper" page, and an action on
the session-link and event lists. Each calls recs.erasure.erase_shopper; nothing else here.

Erasing needs staff with the "add erasure record" permission (superusers have it): a staff
member who may only view the event log cannot erase from it.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from recs.erasure import MAX_ID_LENGTH, erase_shopper, erasure_preview, subject_digest
from recs.models import ErasureRecord, Event, SessionLink
from recs.redis_clients import CONNECTION_ERRORS

ERASE_PERMISSION = "recs.add_erasurerecord"
# An action erases at most this many shoppers at once: "select all" on the event log must not
# turn into a mass erasure by one click.
ACTION_MAX_SHOPPERS = 100
REDIS_DOWN = "Redis did not answer: the erasure is incomplete (see the audit list); erase again."

ERASE_TEMPLATE = "admin/recs/erasurerecord/erase.html"


def can_erase(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and user.has_perm(ERASE_PERMISSION))


def staff_requester(request: HttpRequest) -> str:
    return f"staff:{request.user.get_username()}"


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in counts.items() if count) or "nothing"


class EraseShopperForm(forms.Form):
    user_id = forms.CharField(
        label="Customer id", max_length=MAX_ID_LENGTH, strip=True,
        help_text="The shop's customer id, as the events name it (user_id).",
    )  # fmt: skip


@admin.register(ErasureRecord)
class ErasureRecordAdmin(admin.ModelAdmin):
    """The audit of erasures, read-only. Search takes a customer id and finds its records by
    digest, so staff can answer "was this shopper erased?" without the id being stored."""

    list_display = ("digest_prefix", "requested_by", "erased_at", "removed")
    date_hierarchy = "erased_at"
    search_fields = ("requested_by",)
    search_help_text = "A customer id (matched by its digest), or who asked."

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="subject digest")
    def digest_prefix(self, record: ErasureRecord) -> str:
        return f"{record.subject_digest[:12]}…"

    @admin.display(description="removed")
    def removed(self, record: ErasureRecord) -> str:
        return _summary(record.counts) if record.counts else "incomplete: erase again"

    def get_search_results(self, request, queryset, search_term):
        results, duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            results |= queryset.filter(subject_digest=subject_digest(search_term.strip()))
        return results, duplicates

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {**(extra_context or {}), "can_erase": can_erase(request)}
        )

    def get_urls(self):
        return [
            path(
                "erase/",
                self.admin_site.admin_view(self.erase_view),
                name="recs_erasurerecord_erase",
            ),
            *super().get_urls(),
        ]

    def erase_view(self, request: HttpRequest) -> HttpResponse:
        """Two steps: name the shopper, then confirm what was found; only the second erases."""
        if not can_erase(request):
            raise PermissionDenied
        form = EraseShopperForm(request.POST if request.method == "POST" else None)
        preview = None
        if form.is_valid():
            user_id = form.cleaned_data["user_id"]
            if request.POST.get("confirm") == "yes":
                try:
                    record = erase_shopper(user_id, requested_by=staff_requester(request))
                except CONNECTION_ERRORS:
                    self.message_user(request, REDIS_DOWN, messages.ERROR)
                else:
                    self.message_user(
                        request, f"Shopper erased ({_summary(record.counts)}).", messages.SUCCESS
                    )
                return HttpResponseRedirect(reverse("admin:recs_erasurerecord_changelist"))
            preview = erasure_preview(user_id)
        return TemplateResponse(
            request,
            ERASE_TEMPLATE,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Erase a shopper",
                "form": form,
                "preview": preview,
            },
        )


def _shoppers_of(queryset: QuerySet) -> list[str]:
    """The users behind selected session links or events (an anonymous event counts for the
    user its session was linked to; one of a never-linked session has nobody to erase)."""
    if queryset.model is SessionLink:
        return sorted(set(queryset.values_list("user_id", flat=True)))
    rows = list(queryset.values_list("user_id", "session_id"))
    users = {user for user, _ in rows if user}
    anonymous = {session for user, session in rows if not user and session}
    users.update(
        SessionLink.objects.filter(session_id__in=anonymous).values_list("user_id", flat=True)
    )
    return sorted(users)


@admin.action(description="Erase the shoppers of the selected rows")
def erase_shoppers_of_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponse | None:
    if not can_erase(request):
        modeladmin.message_user(request, "Erasing needs the erasure permission.", messages.ERROR)
        return None
    user_ids = _shoppers_of(queryset)
    if not user_ids:
        modeladmin.message_user(request, "No shopper to erase in the selection.", messages.WARNING)
        return None
    if len(user_ids) > ACTION_MAX_SHOPPERS:
        modeladmin.message_user(
            request,
            f"The selection names {len(user_ids)} shoppers; erase at most "
            f"{ACTION_MAX_SHOPPERS} at a time.",
            messages.ERROR,
        )
        return None
    if request.POST.get("post") == "yes":
        requester = staff_requester(request)
        try:
            for user_id in user_ids:
                erase_shopper(user_id, requested_by=requester)
        except CONNECTION_ERRORS:
            modeladmin.message_user(request, REDIS_DOWN, messages.ERROR)
            return None
        modeladmin.message_user(request, f"Erased {len(user_ids)} shopper(s).", messages.SUCCESS)
        return None
    return TemplateResponse(
        request,
        ERASE_TEMPLATE,
        {
            **modeladmin.admin_site.each_context(request),
            "opts": ErasureRecord._meta,
            "title": "Erase the shoppers of the selected rows",
            "user_ids": user_ids,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": request.POST.get("action", "erase_shoppers_of_selected"),
            "select_across": request.POST.get("select_across", "0"),
        },
    )


def add_erase_action(model: type[Model]) -> None:
    """Offer the action on a model's existing admin (registered in recs/admin.py), without
    replacing that admin."""
    if not admin.site.is_registered(model):
        return
    model_admin = admin.site.get_model_admin(model)
    model_admin.actions = [*(model_admin.actions or ()), erase_shoppers_of_selected]


for _model in (SessionLink, Event):
    add_erase_action(_model)
