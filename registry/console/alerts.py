"""Alerts: open ones first, acknowledged and resolved by hand with who and when recorded."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from auditlog.middleware import AuditlogMiddleware
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from registry.access.audit import acting_as
from registry.models import Alert
from registry.telemetry.alerts import alerts_acknowledge, alerts_resolve


class AlertStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("open", "Open"), ("unacknowledged", "Open, not acknowledged"), ("resolved", "Resolved")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Alert]) -> QuerySet[Alert]:
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "unacknowledged":
            return queryset.filter(resolved_at__isnull=True, acknowledged_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["opened_at", "kind", "subject", "message", "acknowledged", "resolved"]
    list_filter = [AlertStateFilter, "kind", ("resolved_at", admin.EmptyFieldListFilter)]
    list_select_related = ["model", "source"]
    search_fields = ["message", "model__name", "source__name"]
    readonly_fields = [
        "kind",
        "model",
        "source",
        "message",
        "details",
        "opened_at",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "resolved_by",
    ]
    actions = ["acknowledge", "resolve"]

    @admin.display(description="subject")
    def subject(self, alert: Alert) -> str:
        return str(alert.model or alert.source)

    @admin.display(description="acknowledged")
    def acknowledged(self, alert: Alert) -> str:
        if alert.acknowledged_at is None:
            return "-"
        return f"{alert.acknowledged_by} · {alert.acknowledged_at:%Y-%m-%d %H:%M}"

    @admin.display(description="resolved")
    def resolved(self, alert: Alert) -> str:
        if alert.resolved_at is None:
            return "open"
        return f"{alert.resolved_by or 'check'} · {alert.resolved_at:%Y-%m-%d %H:%M}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Nothing of an alert is edited in a form; the actions below are its changes.
        return False

    def acting(self, request: HttpRequest) -> AbstractContextManager[None]:
        """The signed-in operator as the actor of the audit entries the services write (they bypass signals)."""
        return acting_as(user=request.user, remote_addr=AuditlogMiddleware._get_remote_addr(request))  # type: ignore[arg-type]

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("registry.change_alert")

    @admin.action(description="Acknowledge selected alerts", permissions=["acknowledge"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        with self.acting(request):
            count = alerts_acknowledge(alerts=queryset, by=request.user.get_username())
        self.message_user(request, f"{count} alert(s) acknowledged.", messages.SUCCESS)

    @admin.action(description="Resolve selected alerts", permissions=["acknowledge"])
    def resolve(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        with self.acting(request):
            resolved = alerts_resolve(alerts=queryset, by=request.user.get_username())
        self.message_user(
            request,
            f"{len(resolved)} alert(s) resolved; an alert whose condition still holds opens again at the next check.",
            messages.SUCCESS,
        )
