"""Explainable selection: the models that meet a router's requirements, ranked, and why each other one does not.

``select_explained`` answers ``POST /models/select``. Every model of the registry is either in the
ranked chain (the first is the primary, the rest the fallbacks in order) or excluded with the one
reason that excluded it: the first check it fails, in the order of ``CHECKS``. The checks that need
only the models table and capabilities run on every model; the ones on recent usage (p95 latency,
error rate) and on what Ollama has loaded run only on the models that passed the others, so the
usage table is read for a handful of models, not for the whole registry.

Ranking, among the models that pass every check: models without an open error-rate or
unavailability alert first (``DEMOTING_ALERTS``: the console says the model is failing now, so a
router must not make it its primary; it stays in the chain as a fallback, its entry saying why);
then loaded models first when ``prefer_loaded``; then the mean score on the requested capabilities,
higher first; then the p95 latency of recent usage, lower first (models without recent usage after
those with); then the mean of the input and output prices, lower first (unknown last); then the name.
Recent usage is the last 24 hours for latency, and the error-rate alert's window for the error rate
(``error_rate_window``), so that the selection's error rate is the one the alert judges.

A fixed number of queries whatever the number of models: the models with their scores on the
requested capabilities (and, for ``prefer_loaded``, whether a host has them loaded), recent usage
of the candidates (two for latency: hourly rollups with their latency histograms, raw rows of
the partial hour, the p95 within 2 % of the records' exact one, registry/telemetry/histograms.py;
two more for errors over the error-rate alert's window), their open alerts, then for the chain only its
scores' evidence, its runtime and its endpoints. What only the chain shows is read only for the
chain: a miss over 1,000 models reads one narrow row per model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any, Final

from django.conf import settings
from django.db.models import BooleanField, Case, Exists, F, FilteredRelation, OuterRef, Q, Value, When
from django.utils import timezone

from registry.catalog.selectors import CLOUD_PROVIDERS, of_model_ids, runtimes_of
from registry.models import (
    Alert,
    EndpointType,
    ModelCapability,
    ModelEndpoint,
    ModelRuntime,
    ModelStatus,
    RegisteredModel,
)
from registry.reads import compiled
from registry.reads.representations import endpoint_bodies
from registry.selection.evidence import CAPABILITY_EVIDENCE_COLUMNS, capability_evidence_rows
from registry.selection.ranking import RECENT_LATENCY_WINDOW
from registry.telemetry.alerts import SELECTION_ALERTS
from registry.telemetry.usage import usage_figures

# Open alerts that keep a model from being the primary of a chain: it fails now, whatever its
# longer record says. (A latency regression is judged by the request's max_latency_p95 instead.)
# Opening or resolving one invalidates cached answers (alerts_check).
DEMOTING_ALERTS: Final = SELECTION_ALERTS


def error_rate_window() -> timedelta:
    """The window of a chain's recent error rate: the error-rate alert's (ALERT_WINDOW_MINUTES).

    One window for both, so that the selection and the alerts never disagree on whether a model
    is failing now (a 24-hour rate dilutes a burst the alert sees).
    """
    return timedelta(minutes=settings.ALERT_WINDOW_MINUTES)


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


# A model's row as ``_models`` reads it: these columns (``local``: a local provider's model, or one
# with a local endpoint), then one score per requested capability (None where the model lacks it),
# then, for ``prefer_loaded``, whether a host has it loaded now.
_COLUMNS: Final = (
    "id",
    "name",
    "provider",
    "model_type",
    "status",
    "context_window",
    "input_cost_per_mtok",
    "output_cost_per_mtok",
    "local",
)
_NO_USAGE: Final[dict[str, Any]] = {}
_AVAILABLE: Final = str(ModelStatus.AVAILABLE)
_ZERO: Final = Decimal(0)


def _number(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def _figure(value: float) -> str:
    """A figure in a reason: as short as it can be and still exact enough to compare (0.55, 32000, 2.5)."""
    return f"{value:.4g}" if not float(value).is_integer() else str(int(value))


class _StaticChecks:
    """The checks that need only a model's row (``_COLUMNS`` and its scores), prepared once per request.

    ``reason(row)`` is the first of them the model fails, as (check, reason), or None when it passes
    them all. It runs on every model of the registry, so what does not depend on the model (the
    request's figures as text, the exclude list's ids) is computed here, once.
    """

    def __init__(self, request: SelectionRequest, names: list[str]) -> None:
        self.request = request
        self.exclude_ids = {int(ref) for ref in request.exclude if ref.isdigit()}
        # (its place among the row's scores, name, minimum, minimum as a reason shows it)
        self.minimums = [
            (index, name, request.capabilities[name], _figure(request.capabilities[name]))
            for index, name in enumerate(names)
        ]
        self.ceilings = [
            (side, ceiling, _figure(float(ceiling)))
            for side, ceiling in (("input", request.max_input_cost), ("output", request.max_output_cost))
            if ceiling is not None
        ]
        # Scores take few distinct values (two decimals, mostly): each reason is written once.
        self.below: dict[tuple[int, float], str] = {}

    def reason(self, row: tuple[Any, ...], scores: tuple[Any, ...]) -> tuple[str, str] | None:
        request = self.request
        # The row read field by field as each check needs it: most models fail one of the first.
        model_id, name = row[0], row[1]
        if name in request.exclude or model_id in self.exclude_ids:
            return "excluded", "Named in the request's exclude list."
        status = row[4]
        if status != _AVAILABLE:
            return "status", f"Status is {status}."
        for index, capability, minimum, shown in self.minimums:
            score = scores[index]
            if score is None:
                return "capability", f"Has no '{capability}' capability."
            if score < minimum:
                below = self.below.get((index, score))
                if below is None:
                    below = self.below[index, score] = f"'{capability}' score {_figure(score)} is below {shown}."
                return "score", below
        if request.min_context is not None:
            context = row[5]
            if context is None:
                return "context", f"Context window unknown; {request.min_context} tokens required."
            if context < request.min_context:
                return "context", f"Context window {context} is below {request.min_context} tokens."
        local = row[8]
        if request.local_only and not local:
            return "local", f"Served in {row[2]}'s cloud; only local models were asked for."
        for side, ceiling, shown in self.ceilings:
            price = row[6] if side == "input" else row[7]
            if price is None:
                # A local model without a price costs the platform nothing per token; a cloud one is unknown.
                if not local:
                    return "cost", f"No known {side} price; the ceiling is {shown} per million tokens."
            elif price > ceiling:
                return (
                    "cost",
                    f"{side.capitalize()} price {_figure(float(price))} is above {shown} per million tokens.",
                )
        return None


def _usage_reason(request: SelectionRequest, usage: dict[str, Any]) -> tuple[str, str] | None:
    """The first usage check that ``usage`` fails; a model without recent usage passes them (unknown is not bad)."""
    p95 = usage.get("latency_p95")
    if request.max_latency_p95 is not None and p95 is not None and p95 > request.max_latency_p95:
        return "latency", f"p95 latency {_figure(p95)} s is above {_figure(request.max_latency_p95)} s."
    rate = usage.get("error_rate")
    if request.max_error_rate is not None and rate is not None and rate > request.max_error_rate:
        return "error_rate", f"Error rate {_figure(rate)} is above {_figure(request.max_error_rate)}."
    return None


def _models_queryset(names: list[str], *, with_loaded: bool) -> Any:
    # A local provider's model is local; only a cloud provider's needs its endpoints looked at.
    local_endpoint = ModelEndpoint.objects.filter(model=OuterRef("pk"), endpoint_type=EndpointType.LOCAL)
    local = Case(
        When(provider__in=CLOUD_PROVIDERS, then=Exists(local_endpoint)),
        default=Value(True),
        output_field=BooleanField(),
    )
    # One outer join per requested capability (unique per model): PostgreSQL hashes the capability's
    # rows once, where a subquery per model probed the index once per model (docs/BENCHMARKS.md).
    joins = {
        f"capability_{index}": FilteredRelation("capabilities", condition=Q(capabilities__capability=name))
        for index, name in enumerate(names)
    }
    figures: dict[str, Any] = {
        f"score_{index}": F(f"capability_{index}__capability_score") for index in range(len(names))
    }
    if with_loaded:
        figures["loaded_now"] = Exists(ModelRuntime.objects.filter(model=OuterRef("pk"), loaded=True))
    queryset = RegisteredModel.objects.order_by().annotate(**joins).annotate(local=local, **figures)
    return queryset.values_list(*_COLUMNS, *figures)


def _models(names: list[str], *, with_loaded: bool) -> list[tuple[Any, ...]]:
    """Every model's row: ``_COLUMNS``, its score on each of ``names`` (None where it lacks the
    capability) and, ``with_loaded``, whether a host has it loaded now.

    One query (compiled once per shape, registry/reads/compiled.py): nothing else of a capability (its
    evidence) is read for the models that are not in the chain.
    """
    return compiled.rows(
        ("selection.models", tuple(names), with_loaded), lambda: _models_queryset(names, with_loaded=with_loaded)
    )


def _evidence_of(ids: list[int], names: list[str]) -> dict[int, dict[str, dict[str, Any]]]:
    """``{model_id: {capability: {"score", "evidence"}}}`` of the scores on ``names`` of the models ``ids``."""
    if not ids:
        return {}

    def build(ids: list[int]) -> Any:
        rows = ModelCapability.objects.filter(**of_model_ids(ids), capability__in=names)
        return rows.values_list(*CAPABILITY_EVIDENCE_COLUMNS)

    return capability_evidence_rows(compiled.rows(("selection.evidence", tuple(names)), build, ids))


def recent_usage(ids: list[int], *, since: datetime, errors_since: datetime | None = None) -> dict[int, dict[str, Any]]:
    """Per model of ``ids``: the p95 of the records' latency since ``since``, and requests, errors and
    error rate since ``errors_since`` (default ``since``; the selection passes the error-rate alert's
    window, see ``error_rate_window``).
    """
    if not ids:
        return {}

    # Rollups for the whole hours since ``since``, raw rows for its partial hour (registry/telemetry/usage.py);
    # the errors over their own window, the error-rate alert's, the same way.
    found: dict[int, dict[str, Any]] = {}
    for row in usage_figures(start=since, end=None, model_ids=ids, by_model=True, histograms=True):
        if row.model_id is None:
            continue
        found[row.model_id] = {
            "requests": 0,
            "errors": 0,
            "error_rate": None,
            "latency_records": row.latency_records,
            "latency_p95": row.latency_percentile(0.95),
        }
    for row in usage_figures(start=errors_since or since, end=None, model_ids=ids, by_model=True):
        if row.model_id is None:
            continue
        figures = found.setdefault(row.model_id, {"latency_records": 0, "latency_p95": None})
        figures.update(
            requests=row.requests, errors=row.errors, error_rate=row.errors / row.requests if row.requests else None
        )
    return found


def open_alerts_of(ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The open ``DEMOTING_ALERTS`` of the models ``ids``: ``{model_id: [{"kind", "message", "opened_at"}]}``."""
    if not ids:
        return {}
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = (
        Alert.objects.filter(**of_model_ids(ids), kind__in=DEMOTING_ALERTS, resolved_at__isnull=True)
        .order_by("opened_at")
        .values_list("model_id", "kind", "message", "opened_at")
    )
    for model_id, kind, message, opened_at in rows:
        found[model_id].append({"kind": kind, "message": message, "opened_at": opened_at})
    return dict(found)


def _fallback_only(alerts: list[dict[str, Any]]) -> str | None:
    """Why a model with open alerts is ranked after the models without (None when it has none)."""
    if not alerts:
        return None
    kinds = " and ".join(f"an open {alert['kind'].replace('_', '-')} alert" for alert in alerts)
    return f"Has {kinds} ({alerts[0]['message']}): ranked after the models without one, a fallback only."


def _rank_key(
    request: SelectionRequest, row: tuple[Any, ...], score: float, loaded: bool, p95: Any, alerting: bool
) -> tuple[Any, ...]:
    input_price, output_price = row[6], row[7]
    # The mean of the prices known (the one known, when only one is).
    if input_price is None:
        cost = output_price
    elif output_price is None:
        cost = input_price
    else:
        cost = (input_price + output_price) / 2
    return (
        alerting,
        not loaded if request.prefer_loaded else False,
        -score,
        p95 is None,
        p95 or 0.0,
        cost is None,
        _ZERO if cost is None else cost,
        row[1],
    )


def _usage_figures(usage: dict[str, Any], window_hours: float, errors_window_hours: float) -> dict[str, Any]:
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
            "window_hours": errors_window_hours,
        },
    }


def _exclusion(row: tuple[Any, ...], check: str, reason: str) -> dict[str, Any]:
    return {"id": row[0], "name": row[1], "check": check, "reason": reason}


def select_explained(request: SelectionRequest, *, now: datetime | None = None) -> dict[str, Any]:
    """``{"chain": [...], "excluded": [...]}`` for ``request`` (the JSON of ``ExplainedSelectionSerializer``)."""
    now = now or timezone.now()
    names = sorted(request.capabilities)
    checks = _StaticChecks(request, names)
    # The excluded models by the check that excluded them. Models are taken in name order, so each
    # list is in name order too, and ``excluded`` in the order it is answered, with no sort.
    excluded: dict[str, list[dict[str, Any]]] = {check: [] for check in CHECKS}
    # Rows stay tuples until the chain is known: this loop runs once per model of the registry.
    candidates: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []
    first_score, loaded_at = len(_COLUMNS), len(_COLUMNS) + len(names)
    for row in sorted(_models(names, with_loaded=request.prefer_loaded), key=itemgetter(1)):
        scores = row[first_score:loaded_at]
        failed = checks.reason(row, scores)
        if failed is None:
            candidates.append((row, scores))
        else:
            check, reason = failed
            excluded[check].append(_exclusion(row, check, reason))

    candidate_ids = [row[0] for row, _ in candidates]
    usage = recent_usage(candidate_ids, since=now - RECENT_LATENCY_WINDOW, errors_since=now - error_rate_window())
    alerts = open_alerts_of(candidate_ids)
    # (rank key, row, scores, mean score, loaded now, recent usage) of the models that pass every
    # check, in name order
    passed = []
    for row, scores in candidates:
        figures = usage.get(row[0], _NO_USAGE)
        failed = _usage_reason(request, figures) if figures else None
        if failed is not None:
            check, reason = failed
            excluded[check].append(_exclusion(row, check, reason))
            continue
        score = sum(scores) / len(names)
        loaded = bool(row[loaded_at]) if request.prefer_loaded else False
        key = _rank_key(request, row, score, loaded, figures.get("latency_p95"), row[0] in alerts)
        passed.append((key, row, scores, score, loaded, figures))

    ranked = sorted(passed, key=itemgetter(0))
    chain = ranked[: request.limit]
    if len(ranked) > request.limit:
        places = {entry[1][0]: place for place, entry in enumerate(ranked, start=1)}
        for _, row, *_rest in passed:
            place = places[row[0]]
            if place > request.limit:
                reason = f"Meets every requirement; ranked {place}, after the {request.limit} asked for."
                excluded["limit"].append(_exclusion(row, "limit", reason))

    # What only the chain shows: its scores' evidence, its runtime (ranking read only whether a
    # host has it loaded) and its endpoints.
    chain_ids = [row[0] for _, row, *_rest in chain]
    evidence = _evidence_of(chain_ids, names)
    runtimes = runtimes_of(chain_ids)
    endpoints = endpoint_bodies(chain_ids)
    window_hours = RECENT_LATENCY_WINDOW.total_seconds() / 3600
    errors_window_hours = error_rate_window().total_seconds() / 3600
    entries = []
    for rank, (_, row, scores, score, loaded_now, figures) in enumerate(chain, start=1):
        model_id, name, provider, model_type, _, context, input_price, output_price, local = row[:first_score]
        runtime = runtimes.get(model_id)
        loaded = bool(runtime.get("loaded")) if runtime is not None else loaded_now
        entries.append(
            {
                "rank": rank,
                "id": model_id,
                "name": name,
                "provider": provider,
                "model_type": model_type,
                "score": score,
                "capabilities": {
                    capability: {
                        "score": scores[index],
                        "minimum": request.capabilities[capability],
                        "evidence": evidence[model_id][capability]["evidence"],
                    }
                    for index, capability in enumerate(names)
                },
                "context_window": context,
                "price": {"input_per_mtok": _number(input_price), "output_per_mtok": _number(output_price)},
                **_usage_figures(figures, window_hours, errors_window_hours),
                "open_alerts": alerts.get(model_id, []),
                "fallback_only": _fallback_only(alerts.get(model_id, [])),
                "local": bool(local),
                "loaded": loaded,
                "runtime": runtime,
                "endpoints": endpoints.get(model_id, []),
            }
        )
    return {
        "chain": entries,
        "excluded": [entry for check in CHECKS for entry in excluded[check]],
    }
