"""The merchandiser's admin for experiments: set up, start, pause, kill, ramp, promote a winner,
set guardrails, acknowledge a sample ratio mismatch.

Writes call merch.services.experiments, so that the render path hears about them on commit.
"""

from collections.abc import Callable, Iterable
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from merch.models import (
    Experiment,
    ExperimentGuardrail,
    ExperimentVariant,
    Placement,
    experiment_strategies,
    remaining_traffic,
)
from merch.services import experiments


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
            experiments.validate_variants(self.instance, variants)
        except ValidationError as error:
            raise ValidationError(error.messages) from None


class ExperimentVariantInline(admin.TabularInline):
    """Editable while the experiment is a draft; afterwards only Ramp and Promote change it."""

    model = ExperimentVariant
    form = ExperimentVariantForm
    formset = ExperimentVariantFormSet
    fields = ("name", "strategy", "traffic_percent", "is_control", "is_shadow", "serving")
    readonly_fields = ("serving",)

    @admin.display(description="serving")
    def serving(self, variant: ExperimentVariant) -> str:
        if variant.pk is None:
            return "-"
        if variant.paused_at is not None:
            at = timezone.localtime(variant.paused_at)
            return f"Paused {at:%Y-%m-%d %H:%M}: {variant.paused_reason} Ramp it to serve it again."
        return "shadow (never shown)" if variant.is_shadow else "yes"

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


class ExperimentGuardrailInline(admin.TabularInline):
    """Guardrails can be set at any time before the experiment stops: they change no one's
    assignment until the workers find a challenger confidently worse."""

    model = ExperimentGuardrail
    fields = ("metric", "max_drop_percent")
    extra = 0

    def has_add_permission(self, request, obj=None):
        return _is_live_or_draft(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return _is_live_or_draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _is_live_or_draft(obj) and super().has_delete_permission(request, obj)


def _is_live_or_draft(experiment: Experiment | None) -> bool:
    return experiment is None or experiment.status != Experiment.Status.STOPPED


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
    inlines = [ExperimentVariantInline, ExperimentGuardrailInline]
    fields = (
        "name", "placement", "hypothesis", "planned_shoppers_per_arm", "starts_at", "ends_at",
        "salt", "status", "traffic",
        "sample_ratio", "winner", "started_at", "stopped_at", "created_at", "updated_at",
    )  # fmt: skip
    readonly_fields = (
        "status", "traffic", "sample_ratio", "winner", "started_at", "stopped_at", "created_at",
        "updated_at",
    )  # fmt: skip
    actions = ["start", "pause", "kill"]

    class Media:
        css = {"all": ["merch/admin/experiments.css"]}  # narrower inline inputs: fits 1280 px

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("variants")

    def get_readonly_fields(self, request, obj=None):
        # Moving a started experiment or changing its salt would reshuffle who sees what; a new
        # plan would retune the always-valid test to data already seen.
        return (
            self.readonly_fields
            if _is_draft(obj)
            else (*self.readonly_fields, "placement", "salt", "planned_shoppers_per_arm")
        )

    def has_delete_permission(self, request, obj=None):
        return obj is not None and _is_draft(obj) and super().has_delete_permission(request, obj)

    @admin.display(description="traffic")
    def traffic(self, experiment: Experiment) -> str:
        return traffic_summary(experiment.variants.all()) if experiment.pk else "-"

    @admin.display(description="sample ratio")
    def sample_ratio(self, experiment: Experiment) -> str:
        if experiment.srm_p_value is None:
            return "not checked yet"
        if experiment.srm_flagged_at is None:
            return f"matches the split (p = {experiment.srm_p_value:.3f})"
        state = (
            "promotion blocked until acknowledged on the dashboard"
            if experiment.srm_blocks_promotion
            else f"acknowledged by {experiment.srm_acknowledged_by}"
        )
        return f"MISMATCH (p = {experiment.srm_p_value:.2g}): {state}"

    def save_model(self, request, obj, form, change):
        experiments.save_experiment(obj)

    def save_formset(self, request, form, formset, change):
        formset.save(commit=False)  # fills new/changed/deleted_objects for the change message
        changed = [*formset.new_objects, *(item for item, _ in formset.changed_objects)]
        if not changed and not formset.deleted_objects:
            return None
        if formset.model is ExperimentVariant:
            experiments.save_variants(form.instance, changed, deleted=formset.deleted_objects)
        elif formset.model is ExperimentGuardrail:
            experiments.save_guardrails(form.instance, changed, deleted=formset.deleted_objects)
        else:
            raise TypeError(f"No service saves {formset.model.__name__}")
        return None

    def delete_model(self, request, obj):
        experiments.delete_experiment(obj)

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
        self._apply(request, queryset, experiments.start_experiment, "Started")

    @admin.action(
        description="Pause selected experiments (everyone sees the control)",
        permissions=["change"],
    )
    def pause(self, request, queryset):
        self._apply(request, queryset, experiments.pause_experiment, "Paused")

    @admin.action(
        description="Kill selected experiments: all traffic to control now", permissions=["change"]
    )
    def kill(self, request, queryset):
        self._apply(request, queryset, experiments.kill_experiment, "Killed")

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
            path(
                "<path:object_id>/acknowledge-srm/",
                self.admin_site.admin_view(require_POST(self.acknowledge_srm_view)),
                name="{}_{}_acknowledge_srm".format(*info),
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
                variant = experiments.ramp_experiment(
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
                result = experiments.promote_winner(experiment, form.cleaned_data["variant"])
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

    def acknowledge_srm_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The merchandiser has seen the sample ratio mismatch: promotion is allowed again."""
        experiment = self._experiment_for_change(request, object_id)
        if experiment is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        try:
            experiments.acknowledge_sample_ratio_mismatch(experiment, request.user.get_username())
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
        else:
            self.message_user(
                request,
                "Sample ratio mismatch acknowledged; a winner can be promoted. A new mismatch "
                "will need acknowledging again.",
                messages.WARNING,
            )
        try:
            return redirect(reverse("aisle:recs-experiment-dashboard", args=[experiment.pk]))
        except NoReverseMatch:  # the engine's dashboards are not mounted in this project
            return redirect(self._change_url(experiment))
