"""Usage and performance records: history, filterable by date, provider and model, exported as CSV, never edited.

These tables hold millions of rows, so their lists never count the whole table (the paginator
counts at most ``COUNT_CAP`` rows), never build a date hierarchy (a ``DISTINCT`` over every
timestamp), and search by model name through the small models table, not with a ``LIKE`` scan.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import cached_property

from registry.console.export import EXPORT_CHANGE_LIST, CsvExportMixin, columns_of
from registry.console.figures import count_text
from registry.console.readonly import ReadOnlyAdminMixin
from registry.models import ModelPerformance, ModelUsage, Provider, RegisteredModel

COUNT_CAP = 10_000
MODEL_SEARCH_LIMIT = 500


class CappedCountPaginator(Paginator):
    """Counts at most ``COUNT_CAP + 1`` rows: a bounded ``COUNT(*)`` over a ``LIMIT``-ed subquery."""

    @cached_property
    def count(self) -> int:
        return int(self.object_list[: COUNT_CAP + 1].count())  # type: ignore[attr-defined]

    @property
    def count_is_capped(self) -> bool:
        return self.count > COUNT_CAP


class ProviderFilter(admin.SimpleListFilter):
    title = "provider"
    parameter_name = "provider"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(Provider.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(model__provider=self.value())
        return queryset


class ErrorsFilter(admin.SimpleListFilter):
    title = "errors"
    parameter_name = "errors"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "With errors"), ("no", "Without errors")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(error_count__gt=0)
        if self.value() == "no":
            return queryset.filter(error_count=0)
        return queryset


class RecentValuesFilter(admin.SimpleListFilter):
    """The distinct values of a column among the last 30 days' records: Django's own filter reads them
    from the whole table (a full scan of millions of rows on every page load)."""

    field_name = ""
    window = timedelta(days=30)

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        since = timezone.now() - self.window
        values = (
            model_admin.model.objects.filter(timestamp__gte=since)
            .exclude(**{f"{self.field_name}__isnull": True})
            .order_by(self.field_name)
            .values_list(self.field_name, flat=True)
            .distinct()[:100]
        )
        return [(value, value) for value in values]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(**{self.field_name: self.value()})
        return queryset


class MetricFilter(RecentValuesFilter):
    title = "metric (last 30 days)"
    parameter_name = field_name = "metric_name"


class TaskCategoryFilter(RecentValuesFilter):
    title = "task category (last 30 days)"
    parameter_name = field_name = "task_category"


class HistoryAdmin(ReadOnlyAdminMixin, CsvExportMixin, admin.ModelAdmin):
    """Read-only: usage and performance records are history, written by the API only."""

    @admin.display(description="when (UTC)", ordering="timestamp")
    def when(self, record: ModelUsage | ModelPerformance) -> str:
        return f"{record.timestamp.astimezone(UTC):%Y-%m-%d %H:%M:%S}"

    @admin.display(description="model", ordering="model_name")
    def model_column(self, record: ModelUsage | ModelPerformance) -> str:
        return record.model_name

    list_select_related = ["model"]
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    change_list_template = EXPORT_CHANGE_LIST

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        # Names are matched in the models table (small, indexed), then records by model_id (indexed).
        term = search_term.strip()
        if not term:
            return queryset, False
        ids = list(
            RegisteredModel.objects.filter(name__icontains=term).values_list("pk", flat=True)[:MODEL_SEARCH_LIMIT]
        )
        return queryset.filter(model_id__in=ids), False


@admin.register(ModelPerformance)
class ModelPerformanceAdmin(HistoryAdmin):
    list_display = ["when", "model_column", "metric_name", "metric_value", "task_category", "sample_size"]
    list_filter = [("timestamp", admin.DateFieldListFilter), ProviderFilter, MetricFilter, TaskCategoryFilter]
    search_fields = ["model_name"]
    search_help_text = "Model name (or part of it)."
    export_values = ["timestamp", "model_name", "metric_name", "metric_value", "task_category", "sample_size"]
    export_columns = columns_of(export_values)


@admin.register(ModelUsage)
class ModelUsageAdmin(HistoryAdmin):
    list_display = ["when", "model_column", "requests", "tokens", "errors", "latency", "cost_column", "cost_source"]
    list_filter = [("timestamp", admin.DateFieldListFilter), ProviderFilter, "model__model_type", ErrorsFilter]
    search_fields = ["model_name"]
    search_help_text = "Model name (or part of it)."

    @admin.display(description="requests", ordering="request_count")
    def requests(self, record: ModelUsage) -> str:
        return count_text(record.request_count)

    @admin.display(description="tokens", ordering="token_count")
    def tokens(self, record: ModelUsage) -> str:
        return count_text(record.token_count)

    @admin.display(description="errors", ordering="error_count")
    def errors(self, record: ModelUsage) -> str:
        return count_text(record.error_count)

    @admin.display(description="latency (s)", ordering="average_latency")
    def latency(self, record: ModelUsage) -> str:
        return "-" if record.average_latency is None else f"{record.average_latency:.3f}"

    @admin.display(description="cost (USD)", ordering="cost")
    def cost_column(self, record: ModelUsage) -> str:
        # No cost is an unknown one (no tokens, or no price at the time), not a free request.
        return "unknown" if record.cost is None else f"{record.cost:.6f}"

    export_values = [
        "timestamp",
        "model_name",
        "request_count",
        "token_count",
        "error_count",
        "average_latency",
        "cost",
        "input_tokens",
        "output_tokens",
        "cost_source",
    ]
    export_columns = columns_of(export_values)
