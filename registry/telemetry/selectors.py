"""Reads of telemetry: usage summaries in time buckets and performance records with their statistics."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from django.db.models import Avg, Count, Max, Min, Q, QuerySet, Sum

from registry.models import Alert, ModelPerformance
from registry.telemetry.usage import Bucket, UsageFigures, usage_figures

__all__ = [
    "UNCOSTED_REQUESTS",
    "Bucket",
    "Windows",
    "open_alerts_of_models",
    "performance_records",
    "performance_summary",
    "spend_by_bucket",
    "spend_by_model",
    "usage_buckets_of_models",
    "usage_of_models",
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


# --- Several models side by side, and spend by model ------------------------------------------------
# Compare (``registry.selection.compare``) and the dashboard's spend chart read usage here, through
# ``usage_figures`` as every other reader: rollups for the whole hours, raw rows at the edges only.

Windows = dict[str, tuple[datetime, datetime]]


Latency = tuple[float | None, float | None]


def usage_of_models(
    *, model_ids: list[int], windows: Windows
) -> tuple[dict[int, dict[str, dict[str, Any]]], dict[int, dict[str, Latency]]]:
    """Each model's usage figures and (p50, p95) latency in each ``[start, end)`` window.

    ``({model_id: {window: figures}}, {model_id: {window: (p50, p95)}})``: one ``usage_figures``
    read a window with the latency histograms (two queries: its hours' rollups, its edges' raw
    rows), so the totals and the percentiles come from the same rows. The percentiles are of the
    records' reported mean latency, within 2 % (registry/telemetry/histograms.py), on PostgreSQL and
    SQLite alike; ``(None, None)`` without any. No usage in a window: zero figures.
    """
    if not model_ids or not windows:
        return {}, {}
    empty = _rates(UsageFigures())
    usage: dict[int, dict[str, dict[str, Any]]] = {model_id: dict.fromkeys(windows, empty) for model_id in model_ids}
    latency: dict[int, dict[str, Latency]] = {model_id: dict.fromkeys(windows, (None, None)) for model_id in model_ids}
    for name, (start, end) in windows.items():
        for figures in usage_figures(start=start, end=end, model_ids=model_ids, by_model=True, histograms=True):
            if figures.model_id not in usage:
                continue
            usage[figures.model_id][name] = _rates(figures)
            if figures.histogram:
                latency[figures.model_id][name] = (figures.latency_percentile(0.5), figures.latency_percentile(0.95))
    return usage, latency


def usage_buckets_of_models(
    *, model_ids: list[int], bucket: Bucket, start: datetime, end: datetime
) -> dict[int, dict[datetime, dict[str, Any]]]:
    """``{model_id: {bucket_start: figures}}`` of each model's usage in ``[start, end)``; only buckets with usage."""
    if not model_ids:
        return {}
    found: dict[int, dict[datetime, dict[str, Any]]] = {model_id: {} for model_id in model_ids}
    for figures in usage_figures(start=start, end=end, model_ids=model_ids, by_model=True, bucket=bucket):
        if figures.model_id in found and figures.start is not None:
            found[figures.model_id][figures.start] = _rates(figures)
    return found


def spend_by_model(*, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Each model's cost in ``[start, end)`` (by id and recorded name), largest known cost first.

    Each row: ``model_id`` (None once the model is deleted), ``model_name``, ``requests``, ``cost``
    (the known part, a Decimal) and ``uncosted_requests`` (requests of records without a cost,
    which ``cost`` leaves out: unknown, not free).
    """
    found = [
        {
            "model_id": figures.model_id,
            "model_name": figures.model_name,
            "requests": figures.requests,
            "cost": figures.cost if figures.cost is not None else Decimal(0),
            "uncosted_requests": figures.uncosted_requests,
        }
        for figures in usage_figures(start=start, end=end, by_model=True, by_name=True)
    ]
    # A model whose cost is all unknown ranks by its uncosted requests, after the known costs.
    return sorted(found, key=lambda row: (-row["cost"], -row["uncosted_requests"], row["model_name"] or ""))


def spend_by_bucket(*, bucket: Bucket, start: datetime, end: datetime, model_ids: list[int]) -> list[dict[str, Any]]:
    """Cost per bucket in ``[start, end)`` of each of ``model_ids``, and of every other model together.

    Each row: ``model_id`` (None for the rest), ``start``, ``cost`` (known part) and
    ``uncosted_requests``; the rest has a row in each bucket where another model has usage. Two
    reads of the rollups, each a few rows a bucket: the charted models by bucket, and every model
    (deleted ones included) by bucket, from which the charted ones are subtracted (sums of known
    costs and of counts subtract exactly). Reading every model by bucket instead would bring
    models x buckets rows to Python (200 models over a day: 5,000).
    """
    rows: list[dict[str, Any]] = []
    charted: dict[datetime | None, list[Any]] = defaultdict(lambda: [Decimal(0), 0, 0])  # cost, uncosted, records
    if model_ids:
        for figures in usage_figures(start=start, end=end, model_ids=model_ids, by_model=True, bucket=bucket):
            cost = figures.cost if figures.cost is not None else Decimal(0)
            rows.append(
                {
                    "model_id": figures.model_id,
                    "start": figures.start,
                    "cost": cost,
                    "uncosted_requests": figures.uncosted_requests,
                }
            )
            sums = charted[figures.start]
            sums[0] += cost
            sums[1] += figures.uncosted_requests
            sums[2] += figures.records
    for figures in usage_figures(start=start, end=end, bucket=bucket):
        cost, uncosted, records = charted[figures.start]
        if figures.records > records:  # another model has usage in the bucket
            rows.append(
                {
                    "model_id": None,
                    "start": figures.start,
                    "cost": (figures.cost if figures.cost is not None else Decimal(0)) - cost,
                    "uncosted_requests": figures.uncosted_requests - uncosted,
                }
            )
    return rows


def open_alerts_of_models(model_ids: list[int]) -> dict[int, list[Alert]]:
    """The open alerts of each of ``model_ids``, oldest first (one query); a model without any maps to ``[]``."""
    found: dict[int, list[Alert]] = {model_id: [] for model_id in model_ids}
    for alert in Alert.objects.open().filter(model_id__in=model_ids).order_by("opened_at", "id"):
        if alert.model_id is not None:
            found[alert.model_id].append(alert)
    return found
