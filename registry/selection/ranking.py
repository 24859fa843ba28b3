"""The selection routers read: available models at or above a capability score, best first.

A fixed number of queries whatever the number of models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import (
    Case,
    DecimalField,
    Exists,
    F,
    FloatField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from registry.catalog.selectors import CLOUD_PROVIDERS, with_representation
from registry.models import (
    Alert,
    EndpointType,
    ModelCapability,
    ModelEndpoint,
    RegisteredModel,
    RegisteredModelQuerySet,
)
from registry.telemetry.alerts import SELECTION_ALERTS
from registry.telemetry.usage import latency_mean_since

# How far back "recent latency" looks when ranking models for selection.
RECENT_LATENCY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class RankedModel:
    """A model chosen by ``models_select`` and the figures that ranked it."""

    model: RegisteredModel
    score: float | None
    capability_scores: dict[str, float]
    recent_latency: float | None
    cost_per_mtok: float | None
    fallback_only: bool = False


def _capability_score(capability: str) -> Subquery:
    return Subquery(
        ModelCapability.objects.filter(model=OuterRef("pk"), capability=capability).values("capability_score")[:1],
        output_field=FloatField(),
    )


def _recent_latency(since: datetime) -> Any:
    """Request-weighted mean latency of a model's usage since ``since`` (seconds), or NULL: rollups and the edge."""
    return latency_mean_since(since)


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

    Models with an open error-rate or unavailability alert come after the others (they fail now: a
    fallback, never the first choice; ``alerting``); then ranked by the mean score on the requested
    capabilities, then by lower recent latency (request-weighted, last 24 h; models without recent
    usage after those with), then by lower cost per million tokens (mean of input and output prices;
    unknown prices last), then by name.
    Annotated with ``alerting``, ``score``, ``cap_<i>`` (the score of ``capabilities[i]``, which must be
    sorted and distinct), ``recent_latency`` and ``cost_per_mtok``. One query for the ranking.
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
    alerting = Exists(Alert.objects.filter(model=OuterRef("pk"), kind__in=SELECTION_ALERTS, resolved_at__isnull=True))
    queryset = queryset.annotate(
        alerting=alerting,
        score=score,
        recent_latency=_recent_latency(since or timezone.now() - RECENT_LATENCY_WINDOW),
        cost_per_mtok=cost,
    ).order_by(
        F("alerting").asc(),
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
                fallback_only=bool(getattr(model, "alerting", False)),
            )
        )
    return ranked
