"""The audit log: read-only for everyone, superusers included."""

from __future__ import annotations

from auditlog.admin import LogEntryAdmin as AuditLogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from registry.console.readonly import ReadOnlyAdminMixin
from registry.models import ModelCapability, ModelEndpoint, ModelParameter, RegisteredModel


class ModelHistoryFilter(admin.SimpleListFilter):
    """``?model=<id>``: the entries of a model and of its endpoints, capabilities and parameters.

    Those rows' entries are found by their ``object_repr``, which starts with the model's name and
    ": " (names have no whitespace, so the prefix is unambiguous); entries written before a rename
    keep the old name.
    """

    title = "model"
    parameter_name = "model"

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
        types = ContentType.objects.get_for_models(RegisteredModel, ModelEndpoint, ModelCapability, ModelParameter)
        rows = [types[ModelEndpoint], types[ModelCapability], types[ModelParameter]]
        return queryset.filter(
            Q(content_type=types[RegisteredModel], object_pk=str(model.pk))
            | Q(content_type__in=rows, object_repr__startswith=f"{model.name}: ")
        )


class ReadOnlyLogEntryAdmin(ReadOnlyAdminMixin, AuditLogEntryAdmin):
    """No one adds, changes or deletes an entry here."""

    list_filter = [ModelHistoryFilter, *AuditLogEntryAdmin.list_filter]


# auditlog registers its own admin (it lets a delete cascade through); ours replaces it.
if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)
admin.site.register(LogEntry, ReadOnlyLogEntryAdmin)
