"""Provider sources (API keys write-only), "Discover now", the history of discovery runs and of catalog refreshes."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from discovery.api.serializers import ProviderSourceSerializer
from discovery.catalogs import catalog_labels_in_use
from discovery.models import CatalogSnapshot, DiscoveryRun, ProviderSource
from discovery.selectors import runs_recent
from discovery.services import source_delete, source_save, source_test_connection
from discovery.tasks import discovery_enqueue
from registry.access.accounts import request_role
from registry.access.roles import Role
from registry.console.forms import ApiValidatedForm, WriteOnlySecretsForm

RECENT_RUNS = 10


class ProviderSourceForm(WriteOnlySecretsForm, ApiValidatedForm):
    """A source: validated as ``/sources`` validates it; its API key write-only."""

    api_serializer = ProviderSourceSerializer
    api_fields = ("name", "kind", "base_url", "enabled", "interval_seconds", "runtime_poll_seconds")

    class Meta:
        model = ProviderSource
        fields = ["name", "kind", "base_url", "enabled", "interval_seconds", "runtime_poll_seconds"]
        widgets = {"base_url": forms.TextInput(attrs={"size": 60})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Left empty (or not sent, by a script), it keeps its value, as the API does when it is omitted.
        if "runtime_poll_seconds" in self.fields:  # a read-only page's form has no fields
            self.fields["runtime_poll_seconds"].required = False

    def clean_runtime_poll_seconds(self) -> int:
        value = self.cleaned_data.get("runtime_poll_seconds")
        return int(self.instance.runtime_poll_seconds) if value is None else int(value)


@admin.register(ProviderSource)
class ProviderSourceAdmin(admin.ModelAdmin):
    form = ProviderSourceForm
    list_display = ["name", "kind", "base_url", "enabled", "last_run", "consecutive_failures", "runs_link"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "kind",
                    "base_url",
                    "api_key",
                    "clear_api_key",
                    "enabled",
                    "interval_seconds",
                    "runtime_poll_seconds",
                ]
            },
        ),
        (
            "State",
            {"fields": ["from_environment", "last_run_at", "last_status", "last_error", "consecutive_failures"]},
        ),
        ("Recent runs", {"fields": ["recent_runs"]}),
    ]
    list_filter = ["kind", "enabled", "last_status"]
    search_fields = ["name", "base_url"]
    readonly_fields = [
        "from_environment",
        "last_run_at",
        "last_status",
        "last_error",
        "consecutive_failures",
        "recent_runs",
    ]
    actions = ["discover_now", "test_connection"]
    change_form_template = "admin/discovery/providersource/change_form.html"

    def get_urls(self) -> list[URLPattern]:
        # The same two actions as the list's, from the source's own page: POST only (the page's forms carry
        # the CSRF token), the same permission, the same messages.
        own = [
            path(
                "<int:source_id>/discover/",
                self.admin_site.admin_view(require_POST(self.discover_view)),
                name="discovery_providersource_discover",
            ),
            path(
                "<int:source_id>/test-connection/",
                self.admin_site.admin_view(require_POST(self.test_connection_view)),
                name="discovery_providersource_test",
            ),
        ]
        return own + super().get_urls()

    def _one_source(self, request: HttpRequest, source_id: int) -> QuerySet[ProviderSource]:
        if not self.has_discover_permission(request):
            raise PermissionDenied
        source = get_object_or_404(ProviderSource, pk=source_id)
        return ProviderSource.objects.filter(pk=source.pk)

    def discover_view(self, request: HttpRequest, source_id: int) -> HttpResponse:
        self.discover_now(request, self._one_source(request, source_id))
        return HttpResponseRedirect(reverse("admin:discovery_providersource_change", args=[source_id]))

    def test_connection_view(self, request: HttpRequest, source_id: int) -> HttpResponse:
        self.test_connection(request, self._one_source(request, source_id))
        return HttpResponseRedirect(reverse("admin:discovery_providersource_change", args=[source_id]))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {**(extra_context or {}), "may_discover": self.has_discover_permission(request)}
        return super().change_view(request, object_id, form_url, extra)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        hidden = set()
        if obj is None or not obj.api_key:
            hidden.add("clear_api_key")  # nothing stored, nothing to clear: the form has no such box then
        if not self.has_change_permission(request, obj):
            # A read-only page would display the field's value: the key never appears, even to viewers.
            hidden.update({"api_key", "clear_api_key"})
        first = [name for name in fieldsets[0][1]["fields"] if name not in hidden]
        return [(None, {"fields": first}), *fieldsets[1:]]

    @admin.display(description="recent runs")
    def recent_runs(self, obj: ProviderSource) -> str:
        if obj.pk is None:
            return "-"
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{} / {} / {} / {}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:discovery_discoveryrun_change", args=[run.pk]),
                    run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                    run.trigger,
                    run.get_status_display(),
                    run.models_added,
                    run.models_updated,
                    run.models_unavailable,
                    run.models_skipped,
                    run.error_message[:200],
                )
                for run in runs_recent(source=obj, limit=RECENT_RUNS)
            ),
        )
        return format_html(
            "<table><thead><tr><th>started</th><th>trigger</th><th>status</th>"
            "<th>added / updated / unavailable / skipped</th><th>error</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">all runs</a></p>',
            rows,
            reverse("admin:discovery_discoveryrun_changelist") + f"?source__id__exact={obj.pk}",
        )

    @admin.display(description="last run", ordering="last_run_at")
    def last_run(self, obj: ProviderSource) -> str:
        if obj.last_run_at is None:
            return "never"
        return format_html(
            '<span class="status run-{}">{}</span> {}',
            obj.last_status,
            obj.get_last_status_display(),
            f"{obj.last_run_at:%Y-%m-%d %H:%M}",
        )

    @admin.display(description="runs")
    def runs_link(self, obj: ProviderSource) -> str:
        url = reverse("admin:discovery_discoveryrun_changelist") + f"?source__id__exact={obj.pk}"
        return format_html('<a href="{}">history</a>', url)

    def save_model(self, request: HttpRequest, obj: ProviderSource, form: Any, change: bool) -> None:
        # Through the service, so the source's beat schedule follows the change.
        source_save(source=obj)

    def delete_model(self, request: HttpRequest, obj: ProviderSource) -> None:
        source_delete(source=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ProviderSource]) -> None:
        for source in queryset:
            source_delete(source=source)

    def has_discover_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_authenticated and user.is_staff and request_role(request) == Role.ADMIN)

    @admin.action(description="Discover now", permissions=["discover"])
    def discover_now(self, request: HttpRequest, queryset: QuerySet[ProviderSource]) -> None:
        sources = list(queryset.filter(enabled=True))
        disabled = queryset.count() - len(sources)
        discovery_enqueue(source_ids=[s.pk for s in sources], trigger="manual")
        if sources:
            names = ", ".join(s.name for s in sources)
            self.message_user(
                request, f"Discovery queued for {names}; its outcome appears in the runs' history.", messages.SUCCESS
            )
        if disabled:
            self.message_user(
                request, f"{disabled} disabled source(s) not queued; enable them first.", messages.WARNING
            )

    @admin.action(description="Test connection (list models now, change nothing)", permissions=["discover"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet[ProviderSource]) -> None:
        for source in queryset:
            check = source_test_connection(source=source)
            self.message_user(request, check.message, messages.SUCCESS if check.ok else messages.ERROR)


@admin.register(DiscoveryRun)
class DiscoveryRunAdmin(admin.ModelAdmin):
    list_display = ["started", "source", "trigger", "outcome", "counts", "duration", "short_error"]
    list_filter = ["status", "trigger", "dry_run", "source"]
    list_select_related = ["source"]
    date_hierarchy = "started_at"
    search_fields = ["error_message", "source__name"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "source",
                    "trigger",
                    "dry_run",
                    "status",
                    ("started_at", "finished_at"),
                    "error_message",
                    "warning_list",
                ]
            },
        ),
        ("What it changed", {"fields": ["counts", "changed_models"]}),
    ]
    readonly_fields = ["counts", "changed_models", "warning_list"]

    @admin.display(description="warnings")
    def warning_list(self, obj: DiscoveryRun) -> str:
        warnings = obj.warnings if isinstance(obj.warnings, list) else []
        if not warnings:
            return "-"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((str(w),) for w in warnings)))

    @admin.display(description="models by change")
    def changed_models(self, obj: DiscoveryRun) -> str:
        changes = obj.changes or {}
        if not any(changes.values()):
            return "Nothing changed." if obj.status == "succeeded" else "-"
        # Names link to the model list searched by name: a run keeps names, which outlive renames.
        model_list = reverse("admin:registry_registeredmodel_changelist")
        sections = []
        for key, label, total in (
            ("added", "Added", obj.models_added),
            ("updated", "Updated", obj.models_updated),
            ("unavailable", "Made unavailable", obj.models_unavailable),
            ("skipped", "Skipped", obj.models_skipped),
        ):
            names = changes.get(key) or []
            if not names:
                continue
            links = format_html_join(
                ", ", '<a href="{}?{}">{}</a>', ((model_list, urlencode({"q": name}), name) for name in names)
            )
            more = f" and {total - len(names)} more" if total > len(names) else ""
            if key != "skipped":  # the model list filtered to exactly these (skipped models are not registered)
                label = format_html('<a href="{}?run_change={}.{}">{}</a>', model_list, obj.pk, key, label)
            sections.append(format_html("<p><b>{}</b> ({}): {}{}</p>", label, total, links, more))
        return format_html_join("", "{}", ((section,) for section in sections))

    @admin.display(description="started", ordering="started_at")
    def started(self, obj: DiscoveryRun) -> str:
        return f"{obj.started_at:%Y-%m-%d %H:%M:%S}"

    @admin.display(description="outcome", ordering="status")
    def outcome(self, obj: DiscoveryRun) -> str:
        dry = " (dry run)" if obj.dry_run else ""
        return format_html('<span class="status run-{}">{}</span>{}', obj.status, obj.get_status_display(), dry)

    @admin.display(description="seen · added · updated · gone · skipped")
    def counts(self, obj: DiscoveryRun) -> str:
        return (
            f"{obj.models_seen} · {obj.models_added} · {obj.models_updated} · "
            f"{obj.models_unavailable} · {obj.models_skipped}"
        )

    @admin.display(description="took")
    def duration(self, obj: DiscoveryRun) -> str:
        seconds = obj.duration_seconds
        return "-" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="error")
    def short_error(self, obj: DiscoveryRun) -> str:
        if not obj.error_message and isinstance(obj.warnings, list) and obj.warnings:
            return f"warning: {str(obj.warnings[0])[:110]}"
        return obj.error_message[:120]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CatalogSnapshot)
class CatalogSnapshotAdmin(admin.ModelAdmin):
    """Catalog refreshes (discovery/catalog_refresh.py): read-only; the page says which snapshots are in use."""

    list_display = ["fetched_at", "catalog", "version", "status", "entries", "affected_count", "short_problems"]
    list_filter = ["catalog", "status"]
    fields = ("catalog", "status", "version", "url", "fetched_at", "entries", "affected_models", "problem_list")
    readonly_fields = fields

    @admin.display(description="models affected")
    def affected_count(self, obj: CatalogSnapshot) -> int:
        return len(obj.models_affected or [])

    @admin.display(description="models affected")
    def affected_models(self, obj: CatalogSnapshot) -> str:
        names = obj.models_affected or []
        if not names:
            return "-"
        model_list = reverse("admin:registry_registeredmodel_changelist")
        return format_html_join(
            ", ", '<a href="{}?{}">{}</a>', ((model_list, urlencode({"q": name}), name) for name in names)
        )

    @admin.display(description="problems and warnings")
    def problem_list(self, obj: CatalogSnapshot) -> str:
        problems = obj.problems if isinstance(obj.problems, list) else []
        if not problems:
            return "-"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((str(p),) for p in problems)))

    @admin.display(description="problems")
    def short_problems(self, obj: CatalogSnapshot) -> str:
        return "; ".join(str(p) for p in (obj.problems or []))[:120] or "-"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        # The labels only: a web process has no use for the catalogs' data (15 MB loaded).
        prices, facts = catalog_labels_in_use()
        messages.info(request, f"In use: {prices}; {facts}.")
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request: HttpRequest) -> QuerySet[CatalogSnapshot]:
        # The stored catalog (megabytes of JSON) is never shown: not loaded for the list either.
        return super().get_queryset(request).defer("data")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
