"""Provider sources (API keys write-only) and the history of discovery runs."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from discovery.models import DiscoveryRun, ProviderSource
from registry.forms import WriteOnlySecretsForm


class ProviderSourceForm(WriteOnlySecretsForm):
    class Meta:
        model = ProviderSource
        fields = ["name", "kind", "base_url", "enabled", "interval_seconds"]


@admin.register(ProviderSource)
class ProviderSourceAdmin(admin.ModelAdmin):
    form = ProviderSourceForm
    list_display = ["name", "kind", "base_url", "enabled", "interval_seconds", "last_run_at", "last_status"]
    list_filter = ["kind", "enabled", "last_status"]
    search_fields = ["name", "base_url"]
    readonly_fields = ["from_environment", "last_run_at", "last_status", "last_error", "consecutive_failures"]


@admin.register(DiscoveryRun)
class DiscoveryRunAdmin(admin.ModelAdmin):
    list_display = [
        "started_at",
        "source",
        "trigger",
        "status",
        "models_seen",
        "models_added",
        "models_updated",
        "models_unavailable",
        "models_skipped",
        "finished_at",
    ]
    list_filter = ["status", "trigger", "source"]
    list_select_related = ["source"]
    date_hierarchy = "started_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
