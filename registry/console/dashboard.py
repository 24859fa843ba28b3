"""Selectors of the console: the dashboard's figures and the series behind its charts.

Usage figures come from registry/telemetry/usage.py (hourly rollups for whole hours, raw rows
for the partial hours at the window's edges), so the dashboard's cost grows with the hours it
shows, not with the records in them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from registry.console.charts import Series
from registry.models import Alert, ModelPerformance, ModelRuntime, ModelStatus, Provider, RegisteredModel
from registry.telemetry.selectors import Bucket, spend_by_bucket, spend_by_model, usage_summary_of
from registry.telemetry.usage import usage_figures

TOP_MODELS: Final = 10
CHART_MODELS: Final = 5
RECENTLY_UNAVAILABLE_DAYS: Final = 7

RANGES: Final[dict[str, tuple[timedelta, Bucket]]] = {
    "24h": (timedelta(hours=24), "hour"),
    "7d": (timedelta(days=7), "hour"),
    "30d": (timedelta(days=30), "day"),
}


def models_by_provider_status() -> list[dict[str, Any]]:
    """One row per provider with a count per status (one GROUP BY)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(ModelStatus.values, 0))
    for row in RegisteredModel.objects.order_by().values("provider", "status").annotate(n=Count("id")):
        counts[row["provider"]][row["status"]] = row["n"]
    labels = dict(Provider.choices)
    return [
        {
            "provider": provider,
            "label": labels.get(provider, provider),
            "counts": by_status,
            "total": sum(by_status.values()),
        }
        for provider, by_status in sorted(counts.items())
    ]


def alerts_open_summary(*, newest: int = 5) -> dict[str, Any]:
    open_alerts = Alert.objects.open()
    return {
        "count": open_alerts.count(),
        "newest": list(open_alerts.select_related("model", "source").order_by("-opened_at")[:newest]),
    }


def models_recently_unavailable(*, now: datetime | None = None, limit: int = 10) -> list[RegisteredModel]:
    """Models that became unavailable in the last days, newest change first."""
    since = (now or timezone.now()) - timedelta(days=RECENTLY_UNAVAILABLE_DAYS)
    return list(
        RegisteredModel.objects.filter(status=ModelStatus.UNAVAILABLE, updated_at__gte=since)
        .select_related("source")
        .order_by("-updated_at")[:limit]
    )


def models_loaded_now(*, limit: int = 20) -> list[ModelRuntime]:
    """The (model, host) pairs loaded at their host's last check, largest in VRAM first (one query)."""
    return list(
        ModelRuntime.objects.filter(loaded=True)
        .select_related("model", "source")
        .order_by(F("size_vram").desc(nulls_last=True), "model__name", "source__name")[:limit]
    )


def model_runtime_rows(*, model_id: int) -> list[ModelRuntime]:
    """A model's runtime row per host, by host name (one query)."""
    return list(ModelRuntime.objects.filter(model_id=model_id).select_related("source").order_by("source__name"))


@dataclass(frozen=True)
class UsageOverview:
    """The last 24 hours of usage: the busiest models and their requests per hour.

    Each top row's ``cost`` leaves out its ``uncosted_requests`` (records without a cost).
    """

    start: datetime
    end: datetime
    top: list[dict[str, Any]]
    hours: list[datetime]
    series: list[Series]
    # What the spend chart over the same 24 hours needs from the same read (``spend_overview``):
    # every model's totals as ``spend_by_model`` gives them.
    spend_totals: list[dict[str, Any]]


def _hours(start: datetime, end: datetime) -> list[datetime]:
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    count = int((end - first).total_seconds() // 3600) + 1
    return [first + timedelta(hours=i) for i in range(count)]


def usage_overview(*, now: datetime | None = None, hours: int = 24) -> UsageOverview:
    """The window's usage per model, then per hour for the charted models and for all: three small reads.

    Each from the rollups (raw rows at the window's edges): totals per model (one row a model),
    hours of the CHART_MODELS busiest (one row a model and hour), hours of every model together
    ("others" is all minus the charted), rather than every model's every hour.
    """
    end = now or timezone.now()
    start = end - timedelta(hours=hours)
    totals: dict[tuple[int | None, str], dict[str, Any]] = {}
    for row in usage_figures(start=start, end=end, by_model=True, by_name=True):
        totals[(row.model_id, row.model_name or "")] = {
            "requests": row.requests,
            "tokens": row.tokens,
            "errors": row.errors,
            "cost": row.cost or 0,
            "uncosted_requests": row.uncosted_requests,
        }
    ranked = sorted(totals.items(), key=lambda item: (-item[1]["requests"], item[0][1]))
    top = [
        {
            "model_id": model_id,
            "model_name": name,
            **figures,
            "error_rate": figures["errors"] / figures["requests"] if figures["requests"] else 0.0,
        }
        for (model_id, name), figures in ranked[:TOP_MODELS]
    ]
    buckets = _hours(start, end)
    charted = [key for key, _ in ranked[:CHART_MODELS]]
    per_hour: dict[tuple[int | None, str], dict[datetime, int]] = defaultdict(dict)
    # A deleted model (no id) among the charted: its hours are found by name, over every model's rows.
    ids = [model_id for model_id, _ in charted if model_id is not None]
    if charted:
        deleted = len(ids) < len(charted)
        hours_of = usage_figures(
            start=start, end=end, model_ids=None if deleted else ids, by_model=True, by_name=True, bucket="hour"
        )
        for row in hours_of:
            key = (row.model_id, row.model_name or "")
            if key in totals and row.start is not None:
                per_hour[key][row.start] = row.requests
    series = [
        Series(name=name, values=[per_hour[(model_id, name)].get(hour, 0) for hour in buckets])
        for model_id, name in charted
    ]
    # Read whether or not there are others: the page's queries stay the same for 1 model or 1,000.
    every = {row.start: row.requests for row in usage_figures(start=start, end=end, bucket="hour")} if charted else {}
    others = ranked[CHART_MODELS:]
    if others:
        series.append(
            Series(
                name=f"{len(others)} other model(s)",
                values=[every.get(hour, 0) - sum(per_hour[key].get(hour, 0) for key in charted) for hour in buckets],
            )
        )
    spend_totals = sorted(
        (
            {
                "model_id": model_id,
                "model_name": name,
                "requests": figures["requests"],
                "cost": figures["cost"],
                "uncosted_requests": figures["uncosted_requests"],
            }
            for (model_id, name), figures in totals.items()
        ),
        key=lambda row: (-row["cost"], -row["uncosted_requests"], row["model_name"]),
    )
    return UsageOverview(
        start=start,
        end=end,
        top=top,
        hours=buckets,
        series=series,
        spend_totals=spend_totals,
    )


# --- One model's charts ----------------------------------------------------------------------------


def _bucket_starts(start: datetime, end: datetime, bucket: Bucket) -> list[datetime]:
    if bucket == "hour":
        return _hours(start, end)
    first = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [first + timedelta(days=i) for i in range((end - first).days + 1)]


def _label(moment: datetime, bucket: Bucket, span: timedelta) -> str:
    if bucket == "day":
        return f"{moment:%m-%d}"
    return f"{moment:%H:00}" if span <= timedelta(hours=24) else f"{moment:%m-%d %H}h"


@dataclass(frozen=True)
class ModelCharts:
    """The series of a model's page for one range: usage, latency, errors and each performance metric."""

    range: str
    labels: list[str]
    totals: dict[str, Any]
    requests: list[Series]
    tokens: list[Series]
    latency: list[Series]
    error_rate: list[Series]
    performance: dict[str, tuple[list[str], list[Series]]]
    # Known cost per bucket, and the requests of each bucket whose cost is unknown (never drawn as 0).
    spend: list[Series]
    uncosted: list[int]


def model_charts(*, model_id: int, chart_range: str = "24h", now: datetime | None = None) -> ModelCharts:
    """Everything a model's charts show for ``chart_range`` (24h, 7d or 30d): three aggregated queries.

    Usage comes from the hourly rollups (and raw rows at the window's edges) with their latency
    histograms: the p50 and p95 per bucket are within 2 % of the records' exact percentiles.
    """
    span, bucket = RANGES.get(chart_range, RANGES["24h"])
    end = now or timezone.now()
    start = end - span
    rows = usage_figures(start=start, end=end, model_ids=[model_id], bucket=bucket, histograms=True)
    summary = usage_summary_of(rows, bucket=bucket, start=start, end=end)
    starts = _bucket_starts(start, end, bucket)
    labels = [_label(moment, bucket, span) for moment in starts]
    by_start = {row["start"]: row for row in summary["buckets"]}
    percentiles = {
        row.start: (row.latency_percentile(0.5), row.latency_percentile(0.95))
        for row in rows
        if row.start is not None and row.latency_records
    }

    def values(name: str) -> list[float | None]:
        return [by_start[moment][name] if moment in by_start else None for moment in starts]

    performance: dict[str, tuple[list[str], list[Series]]] = {}
    metric_rows = (
        ModelPerformance.objects.filter(model_id=model_id, timestamp__gte=start, timestamp__lt=end)
        .order_by()
        .annotate(b=(TruncHour if bucket == "hour" else TruncDay)("timestamp", tzinfo=UTC))
        .values("metric_name", "task_category", "b")
        .annotate(value=Sum("metric_value") / Count("id"))
    )
    per_metric: dict[str, dict[str, dict[datetime, float]]] = defaultdict(lambda: defaultdict(dict))
    for row in metric_rows:
        per_metric[row["metric_name"]][row["task_category"] or "all tasks"][row["b"]] = row["value"]
    for metric, categories in sorted(per_metric.items()):
        performance[metric] = (
            labels,
            [
                Series(name=category, values=[points.get(moment) for moment in starts])
                for category, points in sorted(categories.items())
            ],
        )
    return ModelCharts(
        range=chart_range if chart_range in RANGES else "24h",
        labels=labels,
        totals=summary["totals"],
        requests=[Series("requests", [v or 0 for v in values("requests")])],
        tokens=[Series("tokens", [v or 0 for v in values("tokens")])],
        latency=[
            Series("p50", [percentiles[m][0] if m in percentiles else None for m in starts]),
            Series("p95", [percentiles[m][1] if m in percentiles else None for m in starts]),
        ],
        error_rate=[Series("error rate", [(v * 100) if v is not None else None for v in values("error_rate")])],
        performance=performance,
        spend=[Series("cost (USD)", [float(v) if v is not None else None for v in values("cost")])],
        uncosted=[int(v or 0) for v in values("uncosted_requests")],
    )


# --- Spend by model over a range ---------------------------------------------------------------------


@dataclass(frozen=True)
class SpendOverview:
    """Cost per bucket of the five models that cost most in the range, and of the rest together.

    ``uncosted`` counts, per bucket, the requests whose cost is unknown (no tokens, or no price known
    at their time): the chart marks them and the table says them, so that unknown never reads as 0.
    """

    range: str
    start: datetime
    end: datetime
    labels: list[str]
    series: list[Series]
    uncosted: list[int]
    # The five and "the rest": name, model id (None for the rest or a deleted model), cost, requests, uncosted.
    rows: list[dict[str, Any]]


def spend_overview(
    *, spend_range: str = "24h", now: datetime | None = None, usage: UsageOverview | None = None
) -> SpendOverview:
    """The dashboard's spend chart for ``spend_range`` (24h, 7d or 30d), from the rollups.

    The five models of largest known cost get a series each; every other model (a deleted model's
    usage too) is "the rest". A model whose cost is all unknown says so in the legend. Over 24 hours,
    ``usage`` (the dashboard's usage overview, which read the same hours per model) spares the totals' read.
    """
    spend_range = spend_range if spend_range in RANGES else "24h"
    span, bucket = RANGES[spend_range]
    from_usage = usage is not None and spend_range == "24h"
    end = usage.end if usage is not None and from_usage else (now or timezone.now())
    start = end - span
    starts = _bucket_starts(start, end, bucket)
    totals = usage.spend_totals if usage is not None and from_usage else spend_by_model(start=start, end=end)
    top = [row for row in totals if row["model_id"] is not None][:CHART_MODELS]
    top_ids = {row["model_id"] for row in top}
    rest = [row for row in totals if row["model_id"] not in top_ids]
    per_bucket: dict[int | None, dict[datetime, float]] = defaultdict(lambda: defaultdict(float))
    uncosted_by_bucket: dict[datetime, int] = defaultdict(int)
    buckets = spend_by_bucket(bucket=bucket, start=start, end=end, model_ids=sorted(top_ids))
    for row in buckets:
        series_key = row["model_id"] if row["model_id"] in top_ids else None
        per_bucket[series_key][row["start"]] += float(row["cost"])
        uncosted_by_bucket[row["start"]] += row["uncosted_requests"]
    series = []
    for row in top:
        unknown = row["uncosted_requests"] and row["uncosted_requests"] >= row["requests"]
        # No bar to draw for an unknown cost: the legend says why rather than show a colour never used.
        name = f"{row['model_name']} (cost unknown)" if unknown else row["model_name"]
        series.append(Series(name=name, values=[per_bucket[row["model_id"]].get(m) for m in starts]))
    rows = list(top)
    if rest:
        label = f"the rest ({len(rest)} model{'' if len(rest) == 1 else 's'})"
        series.append(Series(name=label, values=[per_bucket[None].get(m) for m in starts]))
        rows.append(
            {
                "model_id": None,
                "model_name": label,
                "cost": sum((row["cost"] for row in rest), start=0),
                "requests": sum(row["requests"] for row in rest),
                "uncosted_requests": sum(row["uncosted_requests"] for row in rest),
                "rest": True,
            }
        )
    return SpendOverview(
        range=spend_range,
        start=start,
        end=end,
        labels=[_label(moment, bucket, span) for moment in starts],
        series=series,
        uncosted=[uncosted_by_bucket.get(moment, 0) for moment in starts],
        rows=rows,
    )
