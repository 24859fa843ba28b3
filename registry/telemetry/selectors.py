"""Reads of telemetry: usage summaries in time buckets and performance records with their statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final, Literal

from django.db.models import (
    Avg,
    Count,
    F,
    FloatField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import TruncDay, TruncHour

from registry.models import (
    ModelPerformance,
    ModelUsage,
)

Bucket = Literal["hour", "day"]


def _rates(row: dict[str, Any]) -> dict[str, Any]:
    requests = int(row["requests"] or 0)
    errors = int(row["errors"] or 0)
    latency_requests = int(row["latency_requests"] or 0)
    return {
        "requests": requests,
        "tokens": int(row["tokens"] or 0),
        "errors": errors,
        "error_rate": errors / requests if requests else 0.0,
        "average_latency": float(row["latency_weighted"]) / latency_requests if latency_requests else None,
        "cost": row["cost_total"] if row["cost_total"] is not None else 0,
        "uncosted_requests": int(row["uncosted_requests"] or 0),
    }


# The requests of records without a cost (no tokens, or no price known at their time): a summed
# ``cost`` leaves them out, so a reader tells "unknown" from "free" by this count. Both columns are
# in the covering indexes: still an index-only scan.
UNCOSTED_REQUESTS: Final = Sum("request_count", filter=Q(cost__isnull=True))

_USAGE_AGGREGATES: dict[str, Any] = {
    "requests": Sum("request_count"),
    "tokens": Sum("token_count"),
    "errors": Sum("error_count"),
    # Latency is a per-record mean: weight it by the record's requests, over records that report it.
    "latency_weighted": Sum(
        F("average_latency") * F("request_count"),
        filter=Q(average_latency__isnull=False),
        output_field=FloatField(),
    ),
    "latency_requests": Sum("request_count", filter=Q(average_latency__isnull=False)),
    # Not named "cost": an annotation of a column's name would shadow the column in the filter below.
    "cost_total": Sum("cost"),
    "uncosted_requests": UNCOSTED_REQUESTS,
}


def usage_summary(*, model_id: int, bucket: Bucket, start: datetime, end: datetime) -> dict[str, Any]:
    """Totals and per-bucket figures of a model's usage in ``[start, end)``, aggregated by the database."""
    records = ModelUsage.objects.filter(model_id=model_id, timestamp__gte=start, timestamp__lt=end).order_by()
    truncate = TruncHour if bucket == "hour" else TruncDay
    rows = (
        # Buckets are UTC hours and days; an explicit zone also spares a current-zone lookup per row.
        records.annotate(bucket_start=truncate("timestamp", tzinfo=UTC))
        .values("bucket_start")
        .annotate(**_USAGE_AGGREGATES)
        .order_by("bucket_start")
    )
    buckets = [{"start": row["bucket_start"], **_rates(row)} for row in rows]
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
