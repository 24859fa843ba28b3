"""Explainable selection: the models that meet a router's requirements, ranked, and why each other one does not.

``select_explained`` answers ``POST /models/select``. Every model of the registry is either in the
ranked chain (the first is the primary, the rest the fallbacks in order) or excluded with the one
reason that excluded it: the first check it fails, in the order of ``CHECKS``. The checks that need
only the models table and capabilities run on every model; the ones on recent usage (p95 latency,
error rate) and on what Ollama has loaded run only on the models that passed the others, so the
usage table is read for a handful of models, not for the whole registry.

Ranking, among the models that pass every check: loaded models first when ``prefer_loaded``; then
the mean score on the requested capabilities, higher first; then the p95 latency of recent usage,
lower first (models without recent usage after those with); then the mean of the input and output
prices, lower first (unknown last); then the name.

A fixed number of queries whatever the number of models: the models with their scores on the
requested capabilities (and, for ``prefer_loaded``, whether a host has them loaded), recent usage
of the candidates (two on SQLite, which computes the p95 in Python), then for the chain only its
scores' evidence, its runtime and its endpoints. What only the chain shows is read only for the
chain: a miss over 1,000 models reads one narrow row per model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Subquery, Sum
from django.utils import timezone

from registry.api.representations import endpoint_bodies
from registry.models import (
    EndpointType,
    ModelCapability,
    ModelEndpoint,
    ModelRuntime,
    ModelStatus,
    ModelUsage,
    RegisteredModel,
)
from registry.selectors import (
    CAPABILITY_EVIDENCE_COLUMNS,
    CLOUD_PROVIDERS,
    RECENT_LATENCY_WINDOW,
    capability_evidence_rows,
    of_model_ids,
    runtimes_of,
)
from registry.statistics import PERCENTILE_SAMPLE_LIMIT, PercentileCont, percentile

# The checks in the order they are applied; an excluded model's ``check`` is the first it failed.
CHECKS: Final = (
    "excluded",  # named in the request's exclude list
    "status",  # not available (unavailable or deprecated)
    "capability",  # lacks a requested capability
    "score",  # a requested capability's score is below its minimum
    "context",  # context window below min_context, or unknown
    "local",  # local_only, and served in a provider's cloud
    "cost",  # a price above its ceiling, or unknown for a cloud model
    "latency",  # p95 latency of recent usage above max_latency_p95
    "error_rate",  # error rate of recent usage above max_error_rate
    "limit",  # met every requirement, ranked after the last place of the chain
)


@dataclass(frozen=True)
class SelectionRequest:
    """What a router asks for; every field but ``capabilities`` optional (see SelectionRequestSerializer)."""

    capabilities: dict[str, float]
    min_context: int | None = None
    max_input_cost: Decimal | None = None
    max_output_cost: Decimal | None = None
    max_latency_p95: float | None = None
    max_error_rate: float | None = None
    local_only: bool = False
    prefer_loaded: bool = False
    exclude: frozenset[str] = field(default_factory=frozenset)
    limit: int = 5

    @classmethod
    def from_validated(cls, validated: Mapping[str, Any]) -> SelectionRequest:
        """The request of a body validated by ``SelectionRequestSerializer``."""
        ceilings = validated.get("max_cost_per_mtok") or {}
        return cls(
            capabilities=dict(validated["capabilities"]),
            min_context=validated.get("min_context"),
            max_input_cost=ceilings.get("input"),
            max_output_cost=ceilings.get("output"),
            max_latency_p95=validated.get("max_latency_p95"),
            max_error_rate=validated.get("max_error_rate"),
            local_only=validated.get("local_only", False),
            prefer_loaded=validated.get("prefer_loaded", False),
            exclude=frozenset(validated.get("exclude", ())),
            limit=validated.get("limit", 5),
        )


@dataclass
class _Candidate:
    row: dict[str, Any]
    scores: dict[str, float]
    local: bool
    score: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)
    runtime: dict[str, Any] | None = None

    @property
    def loaded(self) -> bool:
        if self.runtime is not None:
            return bool(self.runtime.get("loaded"))
        return bool(self.row.get("loaded_now"))


def _number(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def _figure(value: float) -> str:
    """A figure in a reason: as short as it can be and still exact enough to compare (0.55, 32000, 2.5)."""
    return f"{value:.4g}" if not float(value).is_integer() else str(int(value))


def _static_reason(
    request: SelectionRequest,
    minimums: list[tuple[str, float]],
    row: dict[str, Any],
    scores: dict[str, float],
    *,
    local: bool,
) -> tuple[str, str] | None:
    """The first check before usage that the model of ``row`` fails, as (check, reason); None when it passes them.

    ``minimums`` is the request's capabilities in the order they are checked (by name).
    """
    if row["name"] in request.exclude or str(row["id"]) in request.exclude:
        return "excluded", "Named in the request's exclude list."
    if row["status"] != ModelStatus.AVAILABLE:
        return "status", f"Status is {row['status']}."
    for name, minimum in minimums:
        score = scores.get(name)
        if score is None:
            return "capability", f"Has no '{name}' capability."
        if score < minimum:
            return "score", f"'{name}' score {_figure(score)} is below {_figure(minimum)}."
    if request.min_context is not None:
        if row["context_window"] is None:
            return "context", f"Context window unknown; {request.min_context} tokens required."
        if row["context_window"] < request.min_context:
            return "context", f"Context window {row['context_window']} is below {request.min_context} tokens."
    if request.local_only and not local:
        return "local", f"Served in {row['provider']}'s cloud; only local models were asked for."
    for side, ceiling in (("input", request.max_input_cost), ("output", request.max_output_cost)):
        if ceiling is None:
            continue
        price = row[f"{side}_cost_per_mtok"]
        if price is None:
            # A local model without a price costs the platform nothing per token; a cloud one is unknown.
            if not local:
                return "cost", f"No known {side} price; the ceiling is {_figure(float(ceiling))} per million tokens."
        elif price > ceiling:
            return (
                "cost",
                f"{side.capitalize()} price {_figure(float(price))} is above {_figure(float(ceiling))} "
                "per million tokens.",
            )
    return None


def _is_local(row: dict[str, Any]) -> bool:
    return row["provider"] not in CLOUD_PROVIDERS or bool(row["has_local_endpoint"])


def _usage_reason(request: SelectionRequest, candidate: _Candidate) -> tuple[str, str] | None:
    """The first usage check that ``candidate`` fails; a model without recent usage passes them (unknown is not bad)."""
    usage = candidate.usage
    p95 = usage.get("latency_p95")
    if request.max_latency_p95 is not None and p95 is not None and p95 > request.max_latency_p95:
        return "latency", f"p95 latency {_figure(p95)} s is above {_figure(request.max_latency_p95)} s."
    rate = usage.get("error_rate")
    if request.max_error_rate is not None and rate is not None and rate > request.max_error_rate:
        return "error_rate", f"Error rate {_figure(rate)} is above {_figure(request.max_error_rate)}."
    return None


def _models(names: list[str], *, with_loaded: bool) -> list[dict[str, Any]]:
    """Every model's row, with whether it is served locally, its score on each of ``names`` (``score_<i>``,
    None where it lacks the capability) and, ``with_loaded``, whether a host has it loaded now.

    One query: the scores are subqueries on the (model, capability) index, and nothing else of a
    capability (its evidence) is read for the models that are not in the chain.
    """
    annotations: dict[str, Any] = {
        "has_local_endpoint": Exists(
            ModelEndpoint.objects.filter(model=OuterRef("pk"), endpoint_type=EndpointType.LOCAL)
        ),
    }
    for index, name in enumerate(names):
        score = ModelCapability.objects.filter(model=OuterRef("pk"), capability=name).values("capability_score")
        annotations[f"score_{index}"] = Subquery(score[:1])
    if with_loaded:
        annotations["loaded_now"] = Exists(ModelRuntime.objects.filter(model=OuterRef("pk"), loaded=True))
    return list(
        RegisteredModel.objects.order_by()
        .annotate(**annotations)
        .values(
            "id",
            "name",
            "provider",
            "model_type",
            "status",
            "context_window",
            "input_cost_per_mtok",
            "output_cost_per_mtok",
            *annotations,
        )
    )


def _evidence_of(ids: list[int], names: list[str]) -> dict[int, dict[str, dict[str, Any]]]:
    """``{model_id: {capability: {"score", "evidence"}}}`` of the scores on ``names`` of the models ``ids``."""
    if not ids:
        return {}
    rows = ModelCapability.objects.filter(**of_model_ids(ids), capability__in=names)
    return capability_evidence_rows(list(rows.values_list(*CAPABILITY_EVIDENCE_COLUMNS)))


def recent_usage(ids: list[int], *, since: datetime) -> dict[int, dict[str, Any]]:
    """Per model of ``ids``: requests, errors, error rate and the p95 of the records' latency since ``since``."""
    if not ids:
        return {}
    records = ModelUsage.objects.filter(**of_model_ids(ids), timestamp__gte=since).order_by()
    totals = records.values("model_id").annotate(
        requests=Sum("request_count"), errors=Sum("error_count"), latency_records=Count("average_latency")
    )
    if connection.vendor == "postgresql":
        rows = list(totals.annotate(latency_p95=PercentileCont("average_latency", 0.95)))
    else:
        rows = list(totals)
        samples: dict[int, list[float]] = defaultdict(list)
        timed = records.filter(average_latency__isnull=False).values_list("model_id", "average_latency")
        for model_id, latency in timed[:PERCENTILE_SAMPLE_LIMIT]:
            if latency is not None:
                samples[model_id].append(latency)
        for row in rows:
            values = samples.get(row["model_id"])
            row["latency_p95"] = percentile(values, 0.95) if values else None
    found = {}
    for row in rows:
        requests = int(row["requests"] or 0)
        errors = int(row["errors"] or 0)
        found[row["model_id"]] = {
            "requests": requests,
            "errors": errors,
            "error_rate": errors / requests if requests else None,
            "latency_records": int(row["latency_records"] or 0),
            "latency_p95": row["latency_p95"],
        }
    return found


def _rank_key(request: SelectionRequest, candidate: _Candidate) -> tuple[Any, ...]:
    p95 = candidate.usage.get("latency_p95")
    prices = [p for p in (candidate.row["input_cost_per_mtok"], candidate.row["output_cost_per_mtok"]) if p is not None]
    cost = sum(prices) / len(prices) if prices else None
    return (
        not candidate.loaded if request.prefer_loaded else False,
        -candidate.score,
        p95 is None,
        p95 or 0.0,
        cost is None,
        cost or Decimal(0),
        candidate.row["name"],
    )


def _usage_figures(usage: dict[str, Any], window_hours: float) -> dict[str, Any]:
    return {
        "latency_p95": {
            "value": usage.get("latency_p95"),
            "records": usage.get("latency_records", 0),
            "window_hours": window_hours,
        },
        "error_rate": {
            "value": usage.get("error_rate"),
            "requests": usage.get("requests", 0),
            "errors": usage.get("errors", 0),
            "window_hours": window_hours,
        },
    }


def select_explained(request: SelectionRequest, *, now: datetime | None = None) -> dict[str, Any]:
    """``{"chain": [...], "excluded": [...]}`` for ``request`` (the JSON of ``ExplainedSelectionSerializer``)."""
    now = now or timezone.now()
    names = sorted(request.capabilities)
    minimums = [(name, request.capabilities[name]) for name in names]
    excluded: list[dict[str, Any]] = []
    candidates: list[_Candidate] = []
    for row in _models(names, with_loaded=request.prefer_loaded):
        scores = {name: row[f"score_{index}"] for index, name in enumerate(names) if row[f"score_{index}"] is not None}
        local = _is_local(row)
        failed = _static_reason(request, minimums, row, scores, local=local)
        if failed is None:
            candidate = _Candidate(row=row, scores=scores, local=local)
            candidate.score = sum(scores.values()) / len(names)
            candidates.append(candidate)
        else:
            excluded.append({"id": row["id"], "name": row["name"], "check": failed[0], "reason": failed[1]})

    usage = recent_usage([candidate.row["id"] for candidate in candidates], since=now - RECENT_LATENCY_WINDOW)
    passed: list[_Candidate] = []
    for candidate in candidates:
        candidate.usage = usage.get(candidate.row["id"], {})
        failed = _usage_reason(request, candidate)
        if failed is None:
            passed.append(candidate)
        else:
            row = candidate.row
            excluded.append({"id": row["id"], "name": row["name"], "check": failed[0], "reason": failed[1]})

    passed.sort(key=lambda candidate: _rank_key(request, candidate))
    chain, beyond = passed[: request.limit], passed[request.limit :]
    for place, candidate in enumerate(beyond, start=request.limit + 1):
        row = candidate.row
        excluded.append(
            {
                "id": row["id"],
                "name": row["name"],
                "check": "limit",
                "reason": f"Meets every requirement; ranked {place}, after the {request.limit} asked for.",
            }
        )
    excluded.sort(key=lambda entry: (CHECKS.index(entry["check"]), entry["name"]))

    # What only the chain shows: its scores' evidence, its runtime (ranking read only whether a
    # host has it loaded) and its endpoints.
    chain_ids = [candidate.row["id"] for candidate in chain]
    evidence = _evidence_of(chain_ids, names)
    runtimes = runtimes_of(chain_ids)
    for candidate in chain:
        candidate.runtime = runtimes.get(candidate.row["id"])
    endpoints = endpoint_bodies(chain_ids)
    window_hours = RECENT_LATENCY_WINDOW.total_seconds() / 3600
    return {
        "chain": [
            {
                "rank": rank,
                "id": candidate.row["id"],
                "name": candidate.row["name"],
                "provider": candidate.row["provider"],
                "model_type": candidate.row["model_type"],
                "score": candidate.score,
                "capabilities": {
                    name: {
                        "score": candidate.scores[name],
                        "minimum": request.capabilities[name],
                        "evidence": evidence[candidate.row["id"]][name]["evidence"],
                    }
                    for name in names
                },
                "context_window": candidate.row["context_window"],
                "price": {
                    "input_per_mtok": _number(candidate.row["input_cost_per_mtok"]),
                    "output_per_mtok": _number(candidate.row["output_cost_per_mtok"]),
                },
                **_usage_figures(candidate.usage, window_hours),
                "local": candidate.local,
                "loaded": candidate.loaded,
                "runtime": candidate.runtime,
                "endpoints": endpoints.get(candidate.row["id"], []),
            }
            for rank, candidate in enumerate(chain, start=1)
        ],
        "excluded": excluded,
    }
