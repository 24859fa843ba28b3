"""The console's site: titles, and the dashboard that is its front page.

The dashboard's figures come from selectors (``registry.console.dashboard``, ``discovery.selectors``);
this module only decides what a user may see, and the template lays it out.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.http import urlencode

from discovery.selectors import sources_with_last_run
from registry.catalog.selectors import models_unpriced
from registry.console.charts import stacked_bar_chart
from registry.console.dashboard import (
    RANGES,
    UsageOverview,
    alerts_open_summary,
    models_by_provider_status,
    models_loaded_now,
    models_recently_unavailable,
    spend_overview,
    usage_overview,
)
from registry.console.figures import cost_text, count_text, percent_text, requests_uncosted_text
from registry.operations.retention import table_sizes


class ConsoleSite(admin.AdminSite):
    site_header = "Model Registry"
    site_title = "Model Registry"
    index_title = "Dashboard"
    # The registry has no public site; the link people want from the console is the API's docs.
    site_url = "/api/docs"
    index_template = "admin/dashboard.html"

    def dashboard_context(self, request: HttpRequest) -> dict[str, Any]:
        """What the dashboard shows this user: each panel only with the permission to view its list."""
        user = request.user
        context: dict[str, Any] = {}
        if user.has_perm("registry.view_registeredmodel"):
            context["models_by_provider"] = models_by_provider_status()
            context["recently_unavailable"] = models_recently_unavailable()
            context["loaded_now"] = models_loaded_now()
            # Their usage is costed at zero and selection cannot apply a cost ceiling to them.
            context["unpriced_available"] = models_unpriced().count()
        if user.has_perm("discovery.view_providersource"):
            context["sources"] = sources_with_last_run()
        if user.has_perm("registry.view_alert"):
            context["alerts"] = alerts_open_summary()
        # The admin role's (and superusers'): what grows, and how long each table keeps it.
        if user.has_perm("auditlog.view_logentry"):
            context["retention"] = table_sizes()
        if user.has_perm("registry.view_modelusage"):
            overview = usage_overview()
            context["usage"] = overview
            context["usage_chart"] = stacked_bar_chart(
                title="Requests per hour, last 24 hours, by model",
                labels=[f"{hour:%H:00}" for hour in overview.hours],
                series=overview.series,
                empty="No usage recorded in the last 24 hours yet.",
            )
            # Each top model's usage records of the window (the list's date filter takes a day).
            usage_list = reverse("admin:registry_modelusage_changelist")
            since = f"{overview.start:%Y-%m-%d}"

            def usage_link(model_id: int | None) -> str | None:
                if model_id is None:
                    return None  # a deleted model's records: no list filters by a model that is gone
                query: dict[str, str | int] = {"model__id__exact": model_id, "timestamp__gte": since}
                return f"{usage_list}?{urlencode(query)}"

            context["top_models"] = [
                {
                    **row,
                    "usage_link": usage_link(row["model_id"]),
                    "cost_text": cost_text(
                        cost=row["cost"], requests=row["requests"], uncosted_requests=row["uncosted_requests"]
                    ),
                    "requests_text": count_text(row["requests"]),
                    "tokens_text": count_text(row["tokens"]),
                    "error_rate_text": percent_text(row["error_rate"]),
                }
                for row in overview.top
            ]
            context.update(self.spend_context(request.GET.get("spend", "24h"), overview))
        return context

    @staticmethod
    def spend_context(spend_range: str, usage: UsageOverview) -> dict[str, Any]:
        """The spend chart by model for 24h, 7d or 30d (``?spend=``), and its table with unknown cost said."""
        spend = spend_overview(spend_range=spend_range, usage=usage)
        total_uncosted = sum(spend.uncosted)
        return {
            "spend": spend,
            "spend_ranges": list(RANGES),
            "spend_chart": stacked_bar_chart(
                title=f"Spend by model, last {spend.range}, USD",
                labels=spend.labels,
                series=spend.series,
                empty="No usage recorded in this range yet.",
                uncosted=spend.uncosted,
            ),
            "spend_rows": [
                {
                    **row,
                    "cost_text": cost_text(
                        cost=row["cost"], requests=row["requests"], uncosted_requests=row["uncosted_requests"]
                    ),
                    "requests_text": count_text(row["requests"]),
                }
                for row in spend.rows
            ],
            "spend_uncosted_text": requests_uncosted_text(total_uncosted) if total_uncosted else "",
        }

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        return super().index(request, {**self.dashboard_context(request), **(extra_context or {})})

    def get_urls(self) -> list[URLPattern | URLResolver]:
        # Imported here: the console's pages (registry.admin imports them) register on this site when imported.
        from registry.console.compare import compare_view
        from registry.console.registry_file import apply_view, export_view
        from registry.console.selection import selection_view

        def selection(request: HttpRequest) -> TemplateResponse:
            return selection_view(self, request)

        def registry_file_apply(request: HttpRequest) -> TemplateResponse:
            return apply_view(self, request)

        def compare(request: HttpRequest) -> HttpResponse:
            return compare_view(self, request)

        return [
            path("selection/", self.admin_view(selection), name="selection"),
            path("compare/", self.admin_view(compare), name="compare"),
            path("registry-file/export/", self.admin_view(export_view), name="registry_file_export"),
            path("registry-file/apply/", self.admin_view(registry_file_apply), name="registry_file_apply"),
            *super().get_urls(),
        ]
