"""Models with their endpoints, capabilities and parameters inline; status actions; CSV export; charts.

Ownership is explicit. Whatever an operator changes here is the operator's: a capability or
parameter row becomes ``set_by=operator``, a model field joins ``operator_fields``, and discovery
leaves both as they are until the operator hands them back (a tick box beside each). Endpoints that
discovery manages keep their address from the provider; their credentials are the operator's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from discovery.models import DiscoveryRun
from registry.access.accounts import request_role
from registry.access.roles import Role
from registry.api.catalog.serializers import (
    CapabilitySerializer,
    EndpointSerializer,
    ParameterSerializer,
    PriceSerializer,
    RegisteredModelSerializer,
)
from registry.api.evidence import NOTE_MAX_LENGTH
from registry.catalog.prices import price_delete, price_set
from registry.catalog.selectors import model_fact_sources
from registry.catalog.services import (
    OPERATOR_EVIDENCE,
    PRICE_FIELDS,
    headers_split,
    model_status_recorded,
    models_set_status,
    operator_fields_mark,
    price_from_model_fields,
)
from registry.console.availability import availability_context
from registry.console.charts import line_chart, stacked_bar_chart
from registry.console.compare import compare_url, model_ref
from registry.console.dashboard import RANGES, model_charts, model_runtime_rows
from registry.console.export import CsvExportMixin, columns_of
from registry.console.figures import cost_text, count_text, percent_text, unload_text
from registry.console.forms import ApiValidatedForm, OptionalJSONField, WriteOnlySecretsForm
from registry.models import (
    OPERATOR_OWNABLE_FIELDS,
    EvidenceSource,
    ModelCapability,
    ModelEndpoint,
    ModelParameter,
    ModelPrice,
    ModelStatus,
    RegisteredModel,
    SetBy,
)
from registry.selection.compare import MAX_MODELS, MIN_MODELS
from registry.telemetry.availability import operator_status_cause

HAND_BACK_HELP = "Tick to hand this value back to discovery: its next run writes the provider's value."


def is_admin(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_authenticated and request_role(request) == Role.ADMIN)


# --- Endpoints -------------------------------------------------------------------------------------


class ModelEndpointForm(WriteOnlySecretsForm, ApiValidatedForm):
    """An endpoint: address checked as the API checks it; its key and secret headers write-only (admins)."""

    api_serializer = EndpointSerializer
    api_fields = ("endpoint_type", "endpoint_url", "auth_type", "headers")
    may_set_secrets = True
    headers = OptionalJSONField(widget=forms.Textarea(attrs={"rows": 2, "cols": 60}))
    clear_secret_headers = forms.BooleanField(required=False, label="Clear the stored secret headers")

    class Meta:
        model = ModelEndpoint
        fields = ["endpoint_type", "endpoint_url", "auth_type", "headers"]
        widgets = {"endpoint_url": forms.TextInput(attrs={"size": 60})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = sorted(self.instance.secret_headers or {}) if self.instance.pk else []
        self.fields["headers"].help_text = (
            "A JSON object of header names to string values. "
            + (
                "Authorization-like headers are stored encrypted and never shown again"
                if self.may_set_secrets
                else "Credential-like headers can only be set by an admin"
            )
            + (f"; stored secret headers: {', '.join(stored)}." if stored else ".")
        )
        if not stored and "clear_secret_headers" in self.fields:
            self.fields["clear_secret_headers"].disabled = True
        if self.instance.pk and self.instance.source_id:
            # Discovery writes these from the provider at every run; editing them here would be undone.
            for name in ("endpoint_type", "endpoint_url", "auth_type", "headers"):
                self.fields[name].disabled = True
                self.fields[name].help_text = "Managed by discovery (change the provider source instead)."

    def clean_headers(self) -> dict[str, str] | None:
        headers = self.cleaned_data.get("headers")
        if headers in (None, "", {}):
            return None
        if not isinstance(headers, dict):
            raise forms.ValidationError("Headers must be a JSON object of header names to string values.")
        if self.fields["headers"].disabled:
            return headers
        clear, secret = headers_split({str(k): v for k, v in headers.items()})
        if secret and not self.may_set_secrets:
            names = ", ".join(sorted(secret))
            raise forms.ValidationError(f"Only an admin may set credentials ({names}).")
        if secret:
            # Not a form field, so set on the instance; it is saved with the form.
            self.instance.secret_headers = {**(self.instance.secret_headers or {}), **secret}
        return clear or None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("clear_secret_headers"):
            self.instance.secret_headers = None
        return cleaned


class EditorEndpointForm(ModelEndpointForm):
    """What an editor gets: everything but the secrets, which only admins set."""

    secret_fields = ()
    may_set_secrets = False
    api_key = None  # type: ignore[assignment]
    clear_api_key = None  # type: ignore[assignment]
    clear_secret_headers = None  # type: ignore[assignment]


class ModelEndpointInline(admin.StackedInline):
    model = ModelEndpoint
    form = ModelEndpointForm
    extra = 0
    readonly_fields = ["source", "credentials", "last_seen_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelEndpoint]:
        return super().get_queryset(request).select_related("model", "source")

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> type[BaseInlineFormSet]:
        kwargs["form"] = ModelEndpointForm if is_admin(request) else EditorEndpointForm
        return super().get_formset(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["endpoint_type", "endpoint_url", "auth_type", "headers", "source", "credentials", "last_seen_at"]
        if is_admin(request):
            fields[4:4] = ["api_key", "clear_api_key", "clear_secret_headers"]
        return fields

    @admin.display(description="credentials stored")
    def credentials(self, endpoint: ModelEndpoint) -> str:
        if endpoint.pk is None:
            return "-"
        stored = (["API key"] if endpoint.api_key else []) + sorted(endpoint.secret_headers or {})
        return ", ".join(stored) + " (hidden)" if stored else "none"


# --- Capabilities and parameters -------------------------------------------------------------------

# The evidence of an operator's score without a note.
OPERATOR_NOTE = "operator"


class OwnedRowForm(ApiValidatedForm):
    """A capability or parameter row: the operator's once changed here, or handed back to discovery."""

    return_to_discovery = forms.BooleanField(required=False, label="hand back", help_text=HAND_BACK_HELP)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        row = self.instance
        if not (row.pk and row.set_by == SetBy.OPERATOR and row.model.source_id):
            # Only an operator's row of a discovered model has anything to hand back.
            self.fields["return_to_discovery"].disabled = True


class CapabilityForm(OwnedRowForm):
    api_serializer = CapabilitySerializer
    # The operator's note is the score's evidence (the API's ``evidence.note``): why this score.
    note = forms.CharField(
        required=False,
        max_length=NOTE_MAX_LENGTH,
        widget=forms.TextInput(attrs={"size": 24, "placeholder": "why this score"}),
        help_text="Stored with the score as its evidence (the API's evidence.note), and audited.",
    )

    class Meta:
        model = ModelCapability
        fields = ["capability", "capability_score"]
        widgets = {
            "capability": forms.TextInput(attrs={"size": 16}),
            "capability_score": forms.NumberInput(attrs={"step": "0.01", "min": "0", "max": "1", "style": "width:6em"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        row = self.instance
        # Only an operator's own note is theirs to edit: discovery's evidence is not carried into it.
        if row.pk and row.set_by == SetBy.OPERATOR and row.evidence != OPERATOR_NOTE:
            self.initial.setdefault("note", row.evidence)

    def api_data(self, cleaned: Mapping[str, Any]) -> dict[str, Any]:
        data = super().api_data(cleaned)
        if cleaned.get("note"):
            data["evidence"] = cleaned["note"]
        return data


class ParameterForm(OwnedRowForm):
    api_serializer = ParameterSerializer
    default_value = forms.JSONField(widget=forms.TextInput(attrs={"size": 10}), help_text='JSON: 0.7, 512, "text"')
    min_value = OptionalJSONField(help_text="Empty: no minimum.")
    max_value = OptionalJSONField(help_text="Empty: no maximum.")

    class Meta:
        model = ModelParameter
        fields = ["parameter_name", "default_value", "min_value", "max_value", "description"]
        widgets = {
            "parameter_name": forms.TextInput(attrs={"size": 16}),
            "description": forms.TextInput(attrs={"size": 30}),
        }


class OwnedRowInline(admin.TabularInline):
    """Capabilities and parameters: who set each row is shown, never edited (saving here makes it the operator's)."""

    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # Each row's form asks whether its model was discovered: one join instead of a query per row.
        return super().get_queryset(request).select_related("model")

    @admin.display(description="set by")
    def owner(self, row: ModelCapability | ModelParameter) -> SafeString | str:
        if row.pk is None:
            return "-"
        if row.set_by == SetBy.OPERATOR:
            return mark_safe('<span class="owner owner-operator">operator</span>')
        if getattr(row, "evidence_source", None) == EvidenceSource.MEASURED:
            # The score derivation's (registry.selection.scores): discovery leaves it, it decays when stale.
            return mark_safe('<span class="owner owner-discovery" title="derived from performance">measured</span>')
        evidence = getattr(row, "evidence", "") or "set by discovery"
        return format_html('<span class="owner owner-discovery" title="{}">discovery</span>', evidence)


def evidence_line(row: ModelCapability) -> str:
    """A capability's evidence in one compact line: source, sample size, window, evaluated, metric; then the note."""
    parts = [str(row.evidence_source)]
    if row.sample_size is not None:
        parts.append(f"n={row.sample_size:,}")
    if row.window_start is not None and row.window_end is not None:
        parts.append(f"{row.window_start:%Y-%m-%d} → {row.window_end:%Y-%m-%d}")
    if row.evaluated_at is not None:
        parts.append(f"evaluated {row.evaluated_at:%Y-%m-%d %H:%M}")
    if row.metric_name:
        parts.append(row.metric_name + (f" ({row.task_category})" if row.task_category else ""))
    if row.evidence and row.evidence != "operator":
        parts.append(row.evidence)
    return " · ".join(parts)


class ModelCapabilityInline(OwnedRowInline):
    model = ModelCapability
    form = CapabilityForm
    fields = ["capability", "capability_score", "note", "owner", "evidence_summary", "return_to_discovery"]
    readonly_fields = ["owner", "evidence_summary"]

    @admin.display(description="evidence")
    def evidence_summary(self, row: ModelCapability) -> str:
        return "-" if row.pk is None else evidence_line(row)


class ModelParameterInline(OwnedRowInline):
    model = ModelParameter
    form = ParameterForm
    fields = ["parameter_name", "default_value", "min_value", "max_value", "description"]
    fields += ["owner", "return_to_discovery"]
    readonly_fields = ["owner"]


# --- Prices ----------------------------------------------------------------------------------------


class PriceForm(ApiValidatedForm):
    api_serializer = PriceSerializer

    class Meta:
        model = ModelPrice
        fields = ["input_per_mtok", "output_per_mtok", "effective_from"]


class PriceFormSet(BaseInlineFormSet):
    """The price rows of one save, refused when the model's price fields were set to another price in it.

    Both are stored otherwise (the fields as a price from now, each row at its moment), and which one
    the model then shows depends on their dates: the operator meant one price, so they are asked which.
    """

    def clean(self) -> None:
        super().clean()
        model = self.instance
        typed = (model.input_cost_per_mtok, model.output_cost_per_mtok)
        stored = (
            RegisteredModel.objects.filter(pk=model.pk).values_list(*PRICE_FIELDS).first() if model.pk else None
        ) or (None, None)
        if typed == stored or typed == (None, None):
            return  # the price fields were not set in this save
        deleted = set(self.deleted_forms)
        for row_form in self.forms:
            if row_form in deleted or not row_form.has_changed() or not getattr(row_form, "cleaned_data", None):
                continue
            data = row_form.cleaned_data
            row = (data.get("input_per_mtok"), data.get("output_per_mtok"))
            if row != typed:
                when = data.get("effective_from")
                raise forms.ValidationError(
                    f"The price fields (input {_price(typed[0])} / output {_price(typed[1])}) and a price row "
                    f"(input {_price(row[0])} / output {_price(row[1])} from "
                    f"{f'{when:%Y-%m-%d %H:%M}' if when else 'now'}) were both set in this save, to different "
                    "prices. Set it in one place: a dated row here, or the price fields for a price from now on.",
                    code="conflicting_prices",
                )


def _price(value: Any) -> str:
    return "unset" if value is None else f"{value:g}"


class ModelPriceInline(admin.TabularInline):
    """The model's dated prices: saved through ``services.price_set``, as the API's are (past costs stay)."""

    model = ModelPrice
    form = PriceForm
    formset = PriceFormSet
    extra = 0
    fields = [
        "input_per_mtok",
        "output_per_mtok",
        "cache_read_per_mtok",
        "cache_write_per_mtok",
        "effective_from",
        "set_by",
        "created_at",
    ]
    readonly_fields = ["set_by", "created_at"]
    verbose_name = "price"
    verbose_name_plural = "prices (per million tokens, USD; the model's price fields follow the one in force)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelPrice]:
        # Each row is labelled with str(row): its model's name, not "model 51", with no query per row.
        return super().get_queryset(request).select_related("model")


# --- The model -------------------------------------------------------------------------------------


class RegisteredModelForm(ApiValidatedForm):
    api_serializer = RegisteredModelSerializer
    return_to_discovery = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Hand back to discovery",
        help_text="Fields an operator set, which discovery leaves alone; tick one to let discovery manage it again.",
    )

    class Meta:
        model = RegisteredModel
        fields = [
            "name",
            "display_name",
            "provider",
            "model_type",
            "version",
            "status",
            "description",
            "context_window",
            "input_cost_per_mtok",
            "output_cost_per_mtok",
            "cache_read_cost_per_mtok",
            "cache_write_cost_per_mtok",
            "details",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3, "cols": 60}),
            "details": forms.Textarea(attrs={"rows": 4, "cols": 60}),
        }

    @staticmethod
    def offers_hand_back(model: RegisteredModel | None) -> bool:
        """Only a discovered model with fields an operator set has anything to hand back to discovery."""
        return bool(model is not None and model.pk and model.source_id and model.operator_fields)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.offers_hand_back(self.instance):
            field: forms.MultipleChoiceField = self.fields["return_to_discovery"]  # type: ignore[assignment]
            field.choices = [(name, name.replace("_", " ")) for name in self.instance.operator_fields]
        else:
            self.fields.pop("return_to_discovery")


class CapabilityFilter(admin.SimpleListFilter):
    """Models that have a capability at 0.5 or more."""

    title = "capability (score ≥ 0.5)"
    parameter_name = "capability"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        names = ModelCapability.objects.order_by("capability").values_list("capability", flat=True).distinct()
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[RegisteredModel]) -> QuerySet[RegisteredModel]:
        if self.value():
            return queryset.with_capability(self.value(), min_score=0.5)  # type: ignore[attr-defined]
        return queryset


class PriceFilter(admin.SimpleListFilter):
    """Models with a price (input and output known), or without one: usage of those cannot be costed."""

    title = "price"
    parameter_name = "price"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("known", "known"), ("unknown", "unknown")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[RegisteredModel]) -> QuerySet[RegisteredModel]:
        unknown = Q(input_cost_per_mtok__isnull=True) | Q(output_cost_per_mtok__isnull=True)
        if self.value() == "unknown":
            return queryset.filter(unknown)
        if self.value() == "known":
            return queryset.exclude(unknown)
        return queryset


class RunChangeFilter(admin.SimpleListFilter):
    """The models one discovery run added, updated or made unavailable: ``?run_change=<run id>.<kind>``.

    The dashboard's counts of a source's last run link here, so they open exactly the models the run
    changed (the run keeps their names, CHANGES_NAMES_MAX of each kind), not all of the source's. Shown
    in the sidebar only while it is in use: there is nothing to pick from.
    """

    title = "changed by discovery run"
    parameter_name = "run_change"
    kinds: ClassVar[dict[str, str]] = {"added": "added", "updated": "updated", "unavailable": "made unavailable"}

    def _run_and_kind(self) -> tuple[DiscoveryRun, str] | None:
        run_id, _, kind = (self.value() or "").partition(".")
        if not run_id.isdigit() or kind not in self.kinds:
            return None
        run = DiscoveryRun.objects.filter(pk=int(run_id)).select_related("source").first()
        return (run, kind) if run is not None else None

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        if not self.value():
            return []
        found = self._run_and_kind()
        if found is None:
            # Kept in the sidebar (so that it still filters, to nothing) with what went wrong.
            return [(str(self.value()), "no such run (removed by retention?)")]
        run, kind = found
        names = (run.changes or {}).get(kind) or []
        total = getattr(run, f"models_{kind}", len(names))
        shown = f" (the first {len(names)} of {total})" if total > len(names) else ""
        label = f"{self.kinds[kind]} by {run.source.name}'s run of {run.started_at:%Y-%m-%d %H:%M}{shown}"
        return [(str(self.value()), label)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[RegisteredModel]) -> QuerySet[RegisteredModel]:
        if not self.value():
            return queryset
        found = self._run_and_kind()
        if found is None:
            return queryset.none()
        run, kind = found
        return queryset.filter(source_id=run.source_id, name__in=(run.changes or {}).get(kind) or [])


def _status_action(status: str, description: str) -> Any:
    @admin.action(description=description, permissions=["change"])
    def action(model_admin: RegisteredModelAdmin, request: HttpRequest, queryset: QuerySet[RegisteredModel]) -> None:
        changed = models_set_status(models=list(queryset), status=status, actor=request.user.get_username())
        model_admin.message_user(request, f"{changed} model(s) marked {status}.", messages.SUCCESS)

    action.__name__ = f"mark_{status}"
    return action


@admin.action(description="Compare selected models (2 to 6)", permissions=["view"])
def compare_selected(
    model_admin: RegisteredModelAdmin, request: HttpRequest, queryset: QuerySet[RegisteredModel]
) -> HttpResponse | None:
    """To the Compare page of the ticked models, at its shareable address (their names)."""
    models = list(queryset.order_by("name")[: MAX_MODELS + 1])
    if not MIN_MODELS <= len(models) <= MAX_MODELS:
        model_admin.message_user(
            request, f"Tick {MIN_MODELS} to {MAX_MODELS} models to compare them.", messages.WARNING
        )
        return None
    return HttpResponseRedirect(compare_url([model_ref(model) for model in models]))


@admin.register(RegisteredModel)
class RegisteredModelAdmin(CsvExportMixin, admin.ModelAdmin):
    form = RegisteredModelForm
    list_display = ["name", "kind", "status_badge", "capability_summary", "source", "last_seen"]
    list_filter = ["provider", "model_type", "status", CapabilityFilter, PriceFilter, "source", RunChangeFilter]
    search_fields = ["name", "display_name", "description"]
    list_select_related = ["source"]
    list_per_page = 50
    # EXPORT_CHANGE_LIST plus "Export registry" and "Apply a file" (registry/console/registry_file.py).
    change_list_template = "admin/registry/registeredmodel/change_list.html"
    readonly_fields = [
        "source",
        "first_seen_at",
        "last_seen_at",
        "created_at",
        "updated_at",
        "ownership",
        "runtime_per_host",
        "fact_sources",
    ]
    inlines = [ModelCapabilityInline, ModelParameterInline, ModelPriceInline, ModelEndpointInline]
    change_form_template = "admin/registry/registeredmodel/change_form.html"
    actions = [
        compare_selected,
        _status_action(ModelStatus.AVAILABLE, "Mark selected models available"),
        _status_action(ModelStatus.UNAVAILABLE, "Mark selected models unavailable"),
        _status_action(ModelStatus.DEPRECATED, "Mark selected models deprecated"),
    ]
    export_values = [
        "name",
        "display_name",
        "provider",
        "model_type",
        "status",
        "source__name",
        "context_window",
        "input_cost_per_mtok",
        "output_cost_per_mtok",
        "first_seen_at",
        "last_seen_at",
    ]
    export_columns = columns_of(export_values)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        # A viewer's page is read-only: a form-only field there has no value to show (and would not render).
        can_hand_back = RegisteredModelForm.offers_hand_back(obj) and self.has_change_permission(request, obj)
        ownership = ["ownership", "return_to_discovery"] if can_hand_back else ["ownership"]
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (
                None,
                {"fields": [("name", "status"), "display_name", ("provider", "model_type", "version"), "description"]},
            ),
            (
                "Limits and prices",
                {
                    "fields": [
                        ("context_window", "input_cost_per_mtok", "output_cost_per_mtok"),
                        ("cache_read_cost_per_mtok", "cache_write_cost_per_mtok"),
                    ]
                },
            ),
            (
                "Discovery",
                {"fields": ["source", ("first_seen_at", "last_seen_at"), *ownership, "fact_sources", "details"]},
            ),
        ]
        if obj is not None:
            # A read-only field, not an inline: observations have nothing to edit, and a form posted
            # without an inline's management data stays valid.
            fieldsets.append(("Runtime: loaded now (Ollama GET /api/ps)", {"fields": ["runtime_per_host"]}))
        if obj is not None:
            fieldsets.append(("Record", {"fields": [("created_at", "updated_at")]}))
        return fieldsets

    def get_queryset(self, request: HttpRequest) -> QuerySet[RegisteredModel]:
        return super().get_queryset(request).prefetch_related("capabilities")

    @admin.display(description="status", ordering="status")
    def status_badge(self, model: RegisteredModel) -> SafeString:
        return format_html('<span class="status status-{}">{}</span>', model.status, model.get_status_display())

    @admin.display(description="provider · type", ordering="provider")
    def kind(self, model: RegisteredModel) -> str:
        return f"{model.get_provider_display()} · {model.model_type}"

    @admin.display(description="last seen", ordering="last_seen_at")
    def last_seen(self, model: RegisteredModel) -> str:
        return f"{model.last_seen_at:%Y-%m-%d %H:%M}" if model.last_seen_at else "-"

    @admin.display(description="capabilities")
    def capability_summary(self, model: RegisteredModel) -> str:
        rows = sorted(model.capabilities.all(), key=lambda row: -row.capability_score)[:4]
        return ", ".join(f"{row.capability} {row.capability_score:.2f}" for row in rows) or "-"

    @admin.display(description="per host")
    def runtime_per_host(self, model: RegisteredModel) -> SafeString | str:
        rows = model_runtime_rows(model_id=model.pk) if model.pk else []
        if not rows:
            return format_html(
                '<div id="model-runtime-section">{}</div>',
                "No Ollama host was asked about this model yet (discovery and the runtime poll ask).",
            )
        now = timezone.now()
        cells = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    row.source.name,
                    format_html(
                        '<span class="status status-{}">{}</span>',
                        "available" if row.loaded else "unavailable",
                        "loaded" if row.loaded else "not loaded",
                    ),
                    filesizeformat(row.size_vram) if row.size_vram is not None else "-",
                    row.context_length or "-",
                    format_html(
                        '<span title="{}">{}</span>',
                        f"{row.expires_at:%Y-%m-%d %H:%M:%S} UTC" if row.expires_at else "",
                        unload_text(loaded=row.loaded, expires_at=row.expires_at, now=now),
                    ),
                    f"{row.checked_at:%Y-%m-%d %H:%M:%S}",
                )
                for row in rows
            ),
        )
        return format_html(
            '<div id="model-runtime-section"><table id="model-runtime"><thead><tr><th>host</th><th>loaded</th>'
            "<th>VRAM</th><th>context</th><th>unloads</th><th>checked at</th></tr></thead>"
            "<tbody>{}</tbody></table></div>",
            cells,
        )

    @admin.display(description="where each fact came from")
    def fact_sources(self, model: RegisteredModel) -> SafeString | str:
        if model.pk is None:
            return "-"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td></tr>",
            ((fact.replace("_", " "), source or "unknown") for fact, source in model_fact_sources(model).items()),
        )
        return format_html('<table id="fact-sources"><tbody>{}</tbody></table>', rows)

    @admin.display(description="who sets what")
    def ownership(self, model: RegisteredModel) -> SafeString | str:
        if model.pk is None:
            return "-"
        if model.source_id is None:
            return "Registered by hand: every value is the operator's; discovery only adds endpoints."
        owned = set(model.operator_fields or [])
        managed = [name for name in OPERATOR_OWNABLE_FIELDS if name not in owned]
        return format_html(
            "Discovery (source <b>{}</b>) manages: {}.<br>Set by an operator (discovery leaves them): {}.",
            model.source,
            ", ".join(name.replace("_", " ") for name in managed) or "nothing",
            ", ".join(name.replace("_", " ") for name in sorted(owned)) or "nothing",
        )

    def save_model(self, request: HttpRequest, obj: RegisteredModel, form: Any, change: bool) -> None:
        if change:
            operator_fields_mark(obj, form.changed_data, handed_back=form.cleaned_data.get("return_to_discovery") or [])
        super().save_model(request, obj, form, change)
        if not change or "status" in form.changed_data:
            cause = (
                operator_status_cause(obj.status, "console")
                if change
                else f"registered {obj.status} by an operator (console)"
            )
            model_status_recorded(model=obj, actor=request.user.get_username(), cause=cause)
        if set(PRICE_FIELDS) & set(form.changed_data):
            price_from_model_fields(obj, set_by=SetBy.OPERATOR)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is ModelPrice:
            self.save_prices(form.instance, formset)
            return
        deleted = set(formset.deleted_forms)
        for row_form in formset.forms:
            row = row_form.instance
            if row_form in deleted or not row_form.has_changed():
                continue
            if isinstance(row, ModelCapability | ModelParameter):
                # Changed here, it is the operator's (discovery never overwrites it) unless handed back.
                row.set_by = SetBy.DISCOVERY if row_form.cleaned_data.get("return_to_discovery") else SetBy.OPERATOR
                if isinstance(row, ModelCapability) and row.set_by == SetBy.OPERATOR:
                    # As services.capability_set writes an operator's score: the operator's evidence alone,
                    # with their note when they wrote one.
                    row.evidence = row_form.cleaned_data.get("note") or OPERATOR_NOTE
                    for name, value in OPERATOR_EVIDENCE.items():
                        setattr(row, name, value)
                    row.evaluated_at = timezone.now()
        super().save_formset(request, form, formset, change)

    def save_prices(self, model: RegisteredModel, formset: Any) -> None:
        """Prices go through the same services as the API's, so the model's price fields follow them."""
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for row_form in formset.deleted_forms:
            if row_form.instance.pk is not None:
                price_delete(price=row_form.instance)
                formset.deleted_objects.append(row_form.instance)
        for row_form in formset.forms:
            if row_form in formset.deleted_forms or not row_form.has_changed():
                continue
            data = row_form.cleaned_data
            if row_form.instance.pk is not None and data["effective_from"] != row_form.initial.get("effective_from"):
                price_delete(price=row_form.instance)  # moved to another moment: the old row goes
            row, created = price_set(
                model=model,
                input_per_mtok=data["input_per_mtok"],
                output_per_mtok=data["output_per_mtok"],
                effective_from=data["effective_from"],
                cache_read_per_mtok=data.get("cache_read_per_mtok"),
                cache_write_per_mtok=data.get("cache_write_per_mtok"),
            )
            if created:
                formset.new_objects.append(row)
            else:
                formset.changed_objects.append((row, row_form.changed_data))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = dict(extra_context or {})
        if object_id.isdigit():
            extra["compare_link"] = compare_url([object_id])
        if object_id.isdigit() and request.user.has_perm("registry.view_modelusage"):
            extra.update(self.charts_context(int(object_id), request.GET.get("range", "24h")))
        if object_id.isdigit():
            # Four queries, whatever the history's length (an id of no model shows nothing: it redirects).
            extra.update(availability_context(model_id=int(object_id), period=request.GET.get("availability", "")))
        return super().change_view(request, object_id, form_url, extra)

    def charts_context(self, model_id: int, chart_range: str) -> dict[str, Any]:
        charts = model_charts(model_id=model_id, chart_range=chart_range)
        nothing = "No usage recorded in this range yet."
        return {
            "chart_range": charts.range,
            "chart_ranges": list(RANGES),
            "chart_totals": charts.totals,
            "chart_cost": cost_text(
                cost=charts.totals["cost"],
                requests=charts.totals["requests"],
                uncosted_requests=charts.totals["uncosted_requests"],
                unit=" USD",
            ),
            "chart_requests": count_text(charts.totals["requests"]),
            "chart_tokens": count_text(charts.totals["tokens"]),
            "chart_error_rate": percent_text(charts.totals["error_rate"]),
            "charts": [
                (
                    "Requests",
                    stacked_bar_chart(title="Requests", labels=charts.labels, series=charts.requests, empty=nothing),
                ),
                (
                    "Tokens",
                    stacked_bar_chart(title="Tokens", labels=charts.labels, series=charts.tokens, empty=nothing),
                ),
                (
                    "Latency (p50, p95 of reported means, within 2 %)",
                    line_chart(title="Latency", labels=charts.labels, series=charts.latency, unit="s", empty=nothing),
                ),
                (
                    "Error rate",
                    line_chart(
                        title="Error rate", labels=charts.labels, series=charts.error_rate, unit="%", empty=nothing
                    ),
                ),
                (
                    "Spend (USD; uncosted requests marked under their bucket)",
                    stacked_bar_chart(
                        title="Spend",
                        labels=charts.labels,
                        series=charts.spend,
                        empty=nothing,
                        uncosted=charts.uncosted,
                    ),
                ),
            ],
            "performance_charts": [
                (metric, line_chart(title=metric, labels=labels, series=series, empty="No records."))
                for metric, (labels, series) in charts.performance.items()
            ],
        }
