"""The audit log and the trusted networks' read counts beside it: read-only for everyone, superusers included."""

from __future__ import annotations

from typing import Any

from auditlog.admin import LogEntryAdmin as AuditLogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest

from registry.api.operations.serializers import read_summary
from registry.console.readonly import ReadOnlyAdminMixin
from registry.models import (
    ModelCapability,
    ModelEndpoint,
    ModelParameter,
    ModelPrice,
    RegisteredModel,
    TrustedNetworkRead,
)


class ModelHistoryFilter(admin.SimpleListFilter):
    """``?model=<id>``: the entries of a model and of its endpoints, capabilities, parameters and prices.

    A row that still exists is found by its id, whoever wrote its entries (the admin, the API, or
    discovery's bulk writes, whose entries may name the model by id). A deleted row's entries are
    found by their ``object_repr``, which starts with the model's name and ": ", or "model <id>: "
    when the model was not loaded (names have no whitespace, so either prefix is unambiguous);
    entries written before a rename keep the old name.
    """

    title = "model"
    parameter_name = "model"
    rows: tuple[type[Model], ...] = (ModelEndpoint, ModelCapability, ModelParameter, ModelPrice)

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        value = self.value()
        if not value or not value.isdigit():
            return []
        return [(str(pk), name) for pk, name in RegisteredModel.objects.filter(pk=value).values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> QuerySet[LogEntry]:
        value = self.value()
        if not value:
            return queryset
        model = RegisteredModel.objects.filter(pk=value if value.isdigit() else 0).first()
        if model is None:
            return queryset.none()
        types = ContentType.objects.get_for_models(RegisteredModel, *self.rows)
        matches = Q(content_type=types[RegisteredModel], object_pk=str(model.pk))
        for table in self.rows:
            # auditlog and log_bulk both fill the integer object_id for these integer keys.
            ids = table._default_manager.filter(model_id=model.pk).values("pk")
            matches |= Q(content_type=types[table], object_id__in=ids)
        named = Q(object_repr__startswith=f"{model.name}: ") | Q(object_repr__startswith=f"model {model.pk}: ")
        matches |= Q(content_type__in=[types[table] for table in self.rows]) & named
        return queryset.filter(matches)


class ReadOnlyLogEntryAdmin(ReadOnlyAdminMixin, AuditLogEntryAdmin):
    """No one adds, changes or deletes an entry here."""

    list_filter = [ModelHistoryFilter, *AuditLogEntryAdmin.list_filter]


# auditlog registers its own admin (it lets a delete cascade through); ours replaces it.
if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)
admin.site.register(LogEntry, ReadOnlyLogEntryAdmin)


@admin.register(TrustedNetworkRead)
class TrustedNetworkReadAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Token-less reads and usage posts from trusted networks, a row per client, route and minute; audit readers."""

    # The record as a sentence an operator reads, with the count and the network beside it to sort and filter.
    list_display = ["summary", "count", "network"]
    list_display_links = ["summary"]
    list_filter = ["method", "route", "network"]
    search_fields = ["=client_address", "route"]
    date_hierarchy = "minute"
    ordering = ["-minute", "client_address", "route", "method"]
    list_per_page = 100

    @admin.display(description="reads", ordering="minute")
    def summary(self, row: TrustedNetworkRead) -> str:
        return read_summary(row)

    # The same readers as the audit log (the admin role, superusers), with no permission of its own to grant.
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("auditlog.view_logentry"))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)
