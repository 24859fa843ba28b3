"""Reads of telemetry: usage summaries in time buckets and performance records with their statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from django.db.models import Avg, Count, Max, Min, Q, QuerySet, Sum

from registry.models import ModelPerformance
from registry.telemetry.usage import Bucket, UsageFigures, usage_figures

__all__ = [
    "UNCOSTED_REQUESTS",
    "Bucket",
    "performance_records",
    "performance_summary",
    "usage_summary",
    "usage_summary_of",
]


def _rates(figures: UsageFigures) -> dict[str, Any]:
    return {
        "requests": figures.requests,
        "tokens": figures.tokens,
        "errors": figures.errors,
        "error_rate": figures.error_rate,
        "average_latency": figures.average_latency,
        "cost": figures.cost if figures.cost is not None else 0,
        "uncosted_requests": figures.uncosted_requests,
    }


# The requests of records without a cost (no tokens, or no price known at their time): a summed
# ``cost`` leaves them out, so a reader tells "unknown" from "free" by this count.
UNCOSTED_REQUESTS: Final = Sum("request_count", filter=Q(cost__isnull=True))


def usage_summary(*, model_id: int, bucket: Bucket, start: datetime, end: datetime) -> dict[str, Any]:
    """Totals and per-bucket figures of a model's usage in ``[start, end)``: hourly rollups, raw rows at the edges."""
    rows = usage_figures(start=start, end=end, model_ids=[model_id], bucket=bucket)
    return usage_summary_of(rows, bucket=bucket, start=start, end=end)


def usage_summary_of(rows: list[UsageFigures], *, bucket: Bucket, start: datetime, end: datetime) -> dict[str, Any]:
    """``usage_summary``'s answer from one model's ``usage_figures`` by ``bucket`` (a caller that has them already)."""
    buckets = [{"start": row.start, **_rates(row)} for row in rows]
    totals = _totals_of(buckets)
    return {"bucket": bucket, "from": start, "to": end, "totals": totals, "buckets": buckets}


def _totals_of(buckets: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals from the buckets themselves: one query fewer, and they always add up."""
    requests = sum(b["requests"] for b in buckets)
    errors = sum(b["errors"] for b in buckets)
    latency_requests = sum(b["requests"] for b in buckets if b["average_latency"] is not None)
    latency_weighted = sum(b["average_latency"] * b["requests"] for b in buckets if b["average_latency"] is not None)
    return {
        "requests": requests,
        "tokens": sum(b["tokens"] for b in buckets),
        "errors": errors,
        "error_rate": errors / requests if requests else 0.0,
        "average_latency": latency_weighted / latency_requests if latency_requests else None,
        "cost": sum((b["cost"] for b in buckets), start=0),
        "uncosted_requests": sum(b["uncosted_requests"] for b in buckets),
    }


def performance_records(
    *,
    model_id: int,
    metric_name: str | None = None,
    task_category: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[ModelPerformance]:
    """A model's performance records matching the filters, newest first."""
    queryset = ModelPerformance.objects.filter(model_id=model_id)
    if metric_name:
        queryset = queryset.filter(metric_name=metric_name)
    if task_category:
        queryset = queryset.filter(task_category=task_category)
    if start is not None:
        queryset = queryset.filter(timestamp__gte=start)
    if end is not None:
        queryset = queryset.filter(timestamp__lt=end)
    return queryset.order_by("-timestamp", "-id")


def performance_summary(records: QuerySet[ModelPerformance]) -> dict[str, dict[str, Any]]:
    """Count, mean, min and max of each metric over ``records``."""
    rows = (
        records.order_by()
        .values("metric_name")
        .annotate(count=Count("id"), avg=Avg("metric_value"), min=Min("metric_value"), max=Max("metric_value"))
        .order_by("metric_name")
    )
    return {row["metric_name"]: {k: row[k] for k in ("count", "avg", "min", "max")} for row in rows}
