"""The operator console: models with their endpoints, capabilities and parameters inline.

Performance and usage records are history: visible, filterable, never edited here. Endpoint
credentials are never shown; the form accepts a new value and says whether one is stored.
"""

from __future__ import annotations

from typing import Any

from auditlog.admin import LogEntryAdmin as AuditLogEntryAdmin
from auditlog.models import LogEntry
from django import forms
from django.contrib import admin
from django.http import HttpRequest

from registry.forms import WriteOnlySecretsForm
from registry.models import (
    Alert,
    ModelCapability,
    ModelEndpoint,
    ModelParameter,
    ModelPerformance,
    ModelUsage,
    RegisteredModel,
    SetBy,
)
from registry.services import headers_split


class ModelEndpointForm(WriteOnlySecretsForm):
    """An endpoint's form: credential-like headers typed into ``headers`` are moved to the encrypted side."""

    class Meta:
        model = ModelEndpoint
        fields = ["endpoint_type", "endpoint_url", "auth_type", "headers", "source"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = sorted(self.instance.secret_headers or {}) if self.instance.pk else []
        self.fields["headers"].help_text = (
            "A flat JSON object of string values. Authorization-like headers are stored encrypted and "
            "never shown again" + (f"; stored now: {', '.join(stored)}." if stored else ".")
        )

    def clean_headers(self) -> dict[str, str] | None:
        headers = self.cleaned_data.get("headers")
        if headers in (None, "", {}):
            return None
        if not isinstance(headers, dict) or not all(
            isinstance(name, str) and isinstance(value, str) for name, value in headers.items()
        ):
            raise forms.ValidationError("Headers must be a flat JSON object of string values.")
        if any("\r" in text or "\n" in text for item in headers.items() for text in item):
            raise forms.ValidationError("Header names and values may not contain CR or LF.")
        clear, secret = headers_split(headers)
        if secret:
            # Not a form field (never rendered), so set it on the instance; it is saved with the form.
            self.instance.secret_headers = {**(self.instance.secret_headers or {}), **secret}
        return clear or None


class ModelEndpointInline(admin.StackedInline):
    model = ModelEndpoint
    form = ModelEndpointForm
    extra = 0
    readonly_fields = ["last_seen_at"]


class ModelCapabilityInline(admin.TabularInline):
    model = ModelCapability
    extra = 0
    fields = ["capability", "capability_score", "set_by", "evidence"]
    readonly_fields = ["evidence"]


class ModelParameterInline(admin.TabularInline):
    model = ModelParameter
    extra = 0
    fields = ["parameter_name", "default_value", "min_value", "max_value", "description", "set_by"]


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ["name", "display_name", "provider", "model_type", "status", "source", "last_seen_at", "updated_at"]
    list_filter = ["provider", "model_type", "status", "source"]
    search_fields = ["name", "display_name", "description"]
    readonly_fields = ["first_seen_at", "last_seen_at", "created_at", "updated_at"]
    list_select_related = ["source"]
    inlines = [ModelEndpointInline, ModelCapabilityInline, ModelParameterInline]
    fieldsets = [
        (None, {"fields": ["name", "display_name", "provider", "model_type", "version", "status", "description"]}),
        ("Limits and prices", {"fields": ["context_window", "input_cost_per_mtok", "output_cost_per_mtok"]}),
        ("Discovery", {"fields": ["source", "first_seen_at", "last_seen_at", "details"]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Whatever an operator saves here is theirs: discovery must not overwrite it afterwards.
        instances = formset.save(commit=False)
        for instance in instances:
            if isinstance(instance, ModelCapability | ModelParameter) and instance.pk is None:
                instance.set_by = SetBy.OPERATOR
            instance.save()
        for obj in formset.deleted_objects:
            obj.delete()
        formset.save_m2m()


class HistoryAdmin(admin.ModelAdmin):
    """Read-only: usage and performance records are history, written by the API only."""

    list_select_related = ["model"]
    date_hierarchy = "timestamp"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ModelPerformance)
class ModelPerformanceAdmin(HistoryAdmin):
    list_display = ["timestamp", "model_name", "metric_name", "metric_value", "task_category", "sample_size"]
    list_filter = ["metric_name", "task_category"]
    search_fields = ["model_name", "metric_name"]


@admin.register(ModelUsage)
class ModelUsageAdmin(HistoryAdmin):
    list_display = [
        "timestamp",
        "model_name",
        "request_count",
        "token_count",
        "error_count",
        "average_latency",
        "cost",
    ]
    search_fields = ["model_name"]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["opened_at", "kind", "model", "source", "message", "resolved_at"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter)]
    list_select_related = ["model", "source"]
    readonly_fields = ["kind", "model", "source", "message", "details", "opened_at", "resolved_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class ReadOnlyLogEntryAdmin(AuditLogEntryAdmin):
    """The audit log: no one adds, changes or deletes an entry here, superusers included."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# auditlog registers its own admin (it lets a delete cascade through); ours replaces it.
if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)
admin.site.register(LogEntry, ReadOnlyLogEntryAdmin)
