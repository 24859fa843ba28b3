"""Reads of the registry: lookups, lists, selection for routers, usage and performance roll-ups.

Every function here runs a fixed number of queries whatever the number of models or records:
representations come from ``with_representation()`` (one query per related table), rankings and
roll-ups are computed by the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from django.db import connection
from django.db.models import (
    Avg,
    Case,
    Count,
    DecimalField,
    Exists,
    F,
    FloatField,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce, TruncDay, TruncHour
from django.utils import timezone

from registry import compiled
from registry.models import (
    EndpointType,
    ModelCapability,
    ModelEndpoint,
    ModelPerformance,
    ModelPrice,
    ModelRuntime,
    ModelUsage,
    Provider,
    RegisteredModel,
    RegisteredModelQuerySet,
)

# Providers whose models run in someone else's cloud; every other provider is served by the platform.
CLOUD_PROVIDERS = (Provider.OPENAI, Provider.ANTHROPIC)
# How far back "recent latency" looks when ranking models for selection.
RECENT_LATENCY_WINDOW = timedelta(hours=24)


def is_model_id(ref: str) -> bool:
    """Whether ``ref`` reads as a model's id: ASCII digits only ("²" is a digit to ``str.isdigit``, not to ``int``)."""
    return ref.isascii() and ref.isdigit()


# A capability row's columns as its evidence reads them, after model_id, capability and score.
CAPABILITY_EVIDENCE_COLUMNS: Final = (
    "model_id",
    "capability",
    "capability_score",
    *ModelCapability.EVIDENCE_FIELDS,
    "evaluated_at",
)


def iso_moment(value: datetime | None) -> str | None:
    """A datetime as DRF's DateTimeField writes it: in the current time zone, ISO 8601, "Z" for UTC."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def evidence_body(
    source: str,
    note: str,
    metric: str | None,
    task_category: str | None,
    sample_size: int | None,
    window_start: datetime | None,
    window_end: datetime | None,
    evaluated_at: datetime | None,
    *,
    moment: Callable[[datetime | None], Any] = iso_moment,
) -> dict[str, Any]:
    """The API's ``evidence`` object of a capability score, from its columns (CAPABILITY_EVIDENCE_COLUMNS[3:]).

    ``window`` is null unless both of its ends are known. ``moment`` writes the datetimes (the
    read path hands the encoder UTC datetimes as they are, which it writes as ``iso_moment`` does).
    """
    window = (
        {"from": moment(window_start), "to": moment(window_end)}
        if window_start is not None and window_end is not None
        else None
    )
    return {
        "source": source,
        "note": note,
        "metric": metric,
        "task_category": task_category,
        "sample_size": sample_size,
        "window": window,
        "evaluated_at": moment(evaluated_at),
    }


def capability_evidence_rows(rows: Sequence[Sequence[Any]]) -> dict[int, dict[str, dict[str, Any]]]:
    """``{model_id: {capability: {"score": ..., "evidence": {...}}}}`` of rows in CAPABILITY_EVIDENCE_COLUMNS order."""
    found: dict[int, dict[str, dict[str, Any]]] = {}
    for model_id, capability, score, *evidence in rows:
        found.setdefault(model_id, {})[capability] = {"score": score, "evidence": evidence_body(*evidence)}
    return found


def capability_evidence_of(ids: list[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """The capabilities of the models ``ids`` with their scores and evidence, in one query.

    ``{model_id: {capability: {"score": 0.82, "evidence": {"source": "measured", ...}}}}``; a model
    without capabilities is absent. Datetimes are ISO 8601 strings, as the API writes them.
    """
    if not ids:
        return {}
    rows = (
        ModelCapability.objects.filter(model_id__in=ids)
        .order_by("model_id", "capability")
        .values_list(*CAPABILITY_EVIDENCE_COLUMNS)
    )
    return capability_evidence_rows(list(rows))


def ids_in(field: str, ids: list[int]) -> dict[str, Any]:
    """The filter ``field`` in ``ids``: one array parameter on PostgreSQL, not one per id."""
    if connection.vendor == "postgresql":
        # Django would prepare 500 parameters one by one (a tenth of a page's build) for a plain IN list.
        return {f"{field}__in": RawSQL("SELECT unnest(%s::bigint[])", (ids,))}
    return {f"{field}__in": ids}


def of_model_ids(ids: list[int]) -> dict[str, Any]:
    """The filter on ``model_id`` for these ids (``ids_in``)."""
    return ids_in("model_id", ids)


def with_representation(queryset: RegisteredModelQuerySet) -> RegisteredModelQuerySet:
    """Everything the API's representation of a model reads, in a fixed number of queries.

    ``with_related()`` plus each endpoint's source, joined into the endpoints' query rather than
    fetched by one more.
    """
    return queryset.select_related("source").prefetch_related(
        "capabilities",
        "parameters",
        Prefetch("endpoints", queryset=ModelEndpoint.objects.select_related("source")),
        "runtimes",
    )


# A model's runtime rows as ``runtime_summary`` reads them: (loaded, size_vram, context_length, expires_at, checked_at).
RuntimeRow = tuple[bool, int | None, int | None, datetime | None, datetime]
_RUNTIME_COLUMNS = ("loaded", "size_vram", "context_length", "expires_at", "checked_at")


def runtime_summary(rows: Iterable[RuntimeRow]) -> dict[str, Any] | None:
    """A model's runtime over its hosts' rows; None when no host was ever asked (no row).

    ``loaded`` when any host has it loaded; ``size_vram``, ``context_length`` and ``expires_at``
    from the loaded row that expires last (a row without an expiry counts as the earliest), all
    None when no host has it loaded; ``checked_at`` the latest of the rows'.
    """
    rows = list(rows)
    if not rows:
        return None
    if len(rows) == 1:  # one host, most models: no choosing to do
        (is_loaded, size_vram, context_length, expires_at, checked_at) = rows[0]
        return {
            "loaded": is_loaded,
            "size_vram": size_vram if is_loaded else None,
            "context_length": context_length if is_loaded else None,
            "expires_at": expires_at if is_loaded else None,
            "checked_at": checked_at,
        }
    loaded = [row for row in rows if row[0]]
    # max() keeps the first of equals: rows come ordered by source id, so the choice is stable.
    best = (
        max(loaded, key=lambda row: (row[3] is not None, row[3] or datetime.min.replace(tzinfo=UTC)))
        if loaded
        else None
    )
    return {
        "loaded": best is not None,
        "size_vram": best[1] if best else None,
        "context_length": best[2] if best else None,
        "expires_at": best[3] if best else None,
        "checked_at": max(row[4] for row in rows),
    }


def runtime_rows_of(model: RegisteredModel) -> list[RuntimeRow]:
    """A model's runtime rows, from its prefetched ``runtimes`` (``with_representation``) when there are."""
    return [
        (row.loaded, row.size_vram, row.context_length, row.expires_at, row.checked_at)
        for row in sorted(model.runtimes.all(), key=lambda row: row.source_id)
    ]


def runtimes_of(ids: list[int]) -> dict[int, dict[str, Any]]:
    """The runtime of each of the models ``ids`` that a host was ever asked about, in one query.

    ``{model_id: {"loaded", "size_vram", "context_length", "expires_at", "checked_at"}}`` (see
    ``runtime_summary``); a model missing from the answer has ``runtime: null``. Datetimes are
    aware UTC datetimes: ``representations.json_bytes`` writes them as DRF does.
    """
    if not ids:
        return {}
    by_model: dict[int, list[RuntimeRow]] = {}

    def build(ids: list[int]) -> Any:
        runtimes = ModelRuntime.objects.filter(**of_model_ids(ids)).order_by("model_id", "source_id")
        return runtimes.values_list("model_id", *_RUNTIME_COLUMNS)

    for row in compiled.rows("selectors.runtimes_of", build, ids):
        by_model.setdefault(row[0], []).append(row[1:])
    return {model_id: summary for model_id, found in by_model.items() if (summary := runtime_summary(found))}


def model_get(ref: str, *, related: bool = True) -> RegisteredModel:
    """The model named ``ref``, or whose id is ``ref`` when it is all digits (names may not be).

    ``related`` prefetches what the model's representation shows. Raises ``RegisteredModel.DoesNotExist``.
    """
    queryset = with_representation(RegisteredModel.objects.all()) if related else RegisteredModel.objects.all()
    if is_model_id(ref):
        return queryset.get(pk=int(ref))
    return queryset.get(name=ref)


def model_lookup(ref: str) -> RegisteredModelQuerySet:
    """The models (none or one) named ``ref``, or whose id is ``ref`` when it is all digits."""
    if is_model_id(ref):
        return RegisteredModel.objects.filter(pk=int(ref))
    return RegisteredModel.objects.filter(name=ref)


def model_key_get(ref: str) -> tuple[int, str]:
    """The id and name of the model ``ref`` (id or name), with one small query; raises ``DoesNotExist``."""
    lookup: dict[str, Any] = {"pk": int(ref)} if is_model_id(ref) else {"name": ref}
    row = RegisteredModel.objects.filter(**lookup).values_list("pk", "name").first()
    if row is None:
        raise RegisteredModel.DoesNotExist(f"No model {ref!r}.")
    return int(row[0]), str(row[1])


def models_filtered(
    *,
    provider: str | None = None,
    model_type: str | None = None,
    status: str | None = None,
    available: bool | None = None,
    capability: str | None = None,
    min_score: float | None = None,
    search: str | None = None,
    ordering: str = "name",
) -> RegisteredModelQuerySet:
    """Models matching every given filter, in ``ordering`` then id (a stable order for pagination)."""
    queryset = with_representation(RegisteredModel.objects.all())
    if provider:
        queryset = queryset.filter(provider=provider)
    if model_type:
        queryset = queryset.filter(model_type=model_type)
    if status:
        queryset = queryset.filter(status=status)
    if available is not None:
        queryset = queryset.available() if available else queryset.exclude(pk__in=RegisteredModel.objects.available())
    if capability:
        # Exists, not a join: a join would repeat a model once per matching capability row.
        queryset = queryset.filter(
            Exists(
                ModelCapability.objects.filter(
                    model=OuterRef("pk"), capability=capability, capability_score__gte=min_score or 0.0
                )
            )
        )
    if search:
        queryset = queryset.filter(
            Q(name__icontains=search) | Q(display_name__icontains=search) | Q(description__icontains=search)
        )
    return queryset.order_by(ordering, "pk" if not ordering.startswith("-") else "-pk")


@dataclass(frozen=True)
class RankedModel:
    """A model chosen by ``models_select`` and the figures that ranked it."""

    model: RegisteredModel
    score: float | None
    capability_scores: dict[str, float]
    recent_latency: float | None
    cost_per_mtok: float | None


def _capability_score(capability: str) -> Subquery:
    return Subquery(
        ModelCapability.objects.filter(model=OuterRef("pk"), capability=capability).values("capability_score")[:1],
        output_field=FloatField(),
    )


def _recent_latency(since: datetime) -> Subquery:
    """Request-weighted mean latency of a model's usage records since ``since`` (seconds), or NULL."""
    weighted = (
        ModelUsage.objects.filter(model=OuterRef("pk"), timestamp__gte=since, average_latency__isnull=False)
        .order_by()
        .values("model")
        .annotate(
            latency=Sum(F("average_latency") * F("request_count"), output_field=FloatField())
            / Cast(Sum("request_count"), FloatField())
        )
        .values("latency")
    )
    return Subquery(weighted[:1], output_field=FloatField())


def models_ranked(
    *,
    capabilities: list[str],
    min_score: float = 0.0,
    model_type: str | None = None,
    provider: str | None = None,
    local_only: bool = False,
    since: datetime | None = None,
) -> RegisteredModelQuerySet:
    """The available models holding every capability at ``min_score`` or above, best first.

    Ranked by the mean score on the requested capabilities, then by lower recent latency
    (request-weighted, last 24 h; models without recent usage after those with), then by lower
    cost per million tokens (mean of input and output prices; unknown prices last), then by name.
    Annotated with ``score``, ``cap_<i>`` (the score of ``capabilities[i]``, which must be sorted
    and distinct), ``recent_latency`` and ``cost_per_mtok``. One query for the ranking.
    Recent means since ``since`` (default: RECENT_LATENCY_WINDOW ago).
    """
    queryset = RegisteredModel.objects.available()
    if model_type:
        queryset = queryset.filter(model_type=model_type)
    if provider:
        queryset = queryset.filter(provider=provider)
    if local_only:
        # Served by the platform: any provider but the clouds, or a cloud model with a local endpoint.
        queryset = queryset.filter(
            ~Q(provider__in=CLOUD_PROVIDERS)
            | Exists(ModelEndpoint.objects.filter(model=OuterRef("pk"), endpoint_type=EndpointType.LOCAL))
        )
    annotations: dict[str, Any] = {f"cap_{index}": _capability_score(name) for index, name in enumerate(capabilities)}
    queryset = queryset.annotate(**annotations)
    for index in range(len(capabilities)):
        queryset = queryset.filter(**{f"cap_{index}__gte": min_score})
    score: Any = Value(None, output_field=FloatField())
    if capabilities:
        total: Any = F("cap_0")
        for index in range(1, len(capabilities)):
            total = total + F(f"cap_{index}")
        score = total / Value(float(len(capabilities)))
    cost = Case(
        When(
            input_cost_per_mtok__isnull=False,
            output_cost_per_mtok__isnull=False,
            then=(F("input_cost_per_mtok") + F("output_cost_per_mtok")) / Value(2),
        ),
        default=Coalesce("input_cost_per_mtok", "output_cost_per_mtok"),
        output_field=DecimalField(max_digits=13, decimal_places=6),
    )
    queryset = queryset.annotate(
        score=score,
        recent_latency=_recent_latency(since or timezone.now() - RECENT_LATENCY_WINDOW),
        cost_per_mtok=cost,
    ).order_by(
        F("score").desc(nulls_last=True),
        F("recent_latency").asc(nulls_last=True),
        F("cost_per_mtok").asc(nulls_last=True),
        "name",
    )
    return queryset


def models_select(
    *,
    capabilities: list[str],
    min_score: float = 0.0,
    model_type: str | None = None,
    provider: str | None = None,
    local_only: bool = False,
    limit: int = 10,
) -> list[RankedModel]:
    """The available models holding every capability at ``min_score`` or above, best first (see ``models_ranked``)."""
    capabilities = sorted(set(capabilities))
    queryset = models_ranked(
        capabilities=capabilities, min_score=min_score, model_type=model_type, provider=provider, local_only=local_only
    )
    queryset = with_representation(queryset)
    ranked = []
    for model in queryset[:limit]:
        cost_value = getattr(model, "cost_per_mtok", None)
        ranked.append(
            RankedModel(
                model=model,
                score=getattr(model, "score", None),
                capability_scores={
                    name: float(getattr(model, f"cap_{index}")) for index, name in enumerate(capabilities)
                },
                recent_latency=getattr(model, "recent_latency", None),
                cost_per_mtok=float(cost_value) if cost_value is not None else None,
            )
        )
    return ranked


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
    # Both columns are in the covering indexes: still an index-only scan.
    "uncosted_requests": Sum("request_count", filter=Q(cost__isnull=True)),
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


def model_prices(*, model_id: int) -> list[ModelPrice]:
    """A model's price history, newest first."""
    return list(ModelPrice.objects.filter(model_id=model_id).order_by("-effective_from"))


def price_in_force_id(prices: list[ModelPrice], *, now: datetime | None = None) -> int | None:
    """The id of the price of ``prices`` (newest first) in force at ``now``."""
    now = now or timezone.now()
    return next((price.pk for price in prices if price.effective_from <= now), None)


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
