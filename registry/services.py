"""Writes to the registry: models, their endpoints, capabilities and parameters, usage and performance.

Each service is one transaction. Configuration rows are written with ``save()``/``delete()``, one
row at a time, so that auditlog's signals record every change with the caller's actor and the
cache's signals invalidate cached reads; usage and performance records are history, not
configuration, and go in with one ``bulk_create`` per batch.

What the API writes is the operator's: capabilities and parameters get ``set_by=operator`` (which
discovery never overwrites) and endpoints have no provider source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from django.db import IntegrityError, transaction
from django.utils import timezone

from registry import metrics
from registry.models import (
    ModelCapability,
    ModelEndpoint,
    ModelParameter,
    ModelPerformance,
    ModelUsage,
    RegisteredModel,
    SetBy,
)

MODEL_FIELDS: Final = frozenset(
    {
        "name",
        "display_name",
        "provider",
        "model_type",
        "version",
        "description",
        "status",
        "context_window",
        "input_cost_per_mtok",
        "output_cost_per_mtok",
        "details",
    }
)
ENDPOINT_FIELDS: Final = frozenset({"endpoint_type", "endpoint_url", "auth_type"})

# Header names that carry credentials: stored encrypted in ``secret_headers``, never in clear ``headers``.
_SECRET_HEADER = re.compile(r"(^authorization$|^proxy-authorization$|^cookie$|key|token|secret|password|auth)", re.I)


class Unset:
    """The absence of a value, where ``None`` means "clear it"."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()


class ModelNameConflict(Exception):
    """Another model already has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"A model named {name!r} already exists.")
        self.name = name


def is_secret_header(name: str) -> bool:
    return bool(_SECRET_HEADER.search(name))


def headers_split(headers: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``headers`` as (clear, secret): credentials-like names go to the encrypted side."""
    clear = {name: value for name, value in headers.items() if not is_secret_header(name)}
    secret = {name: value for name, value in headers.items() if is_secret_header(name)}
    return clear, secret


def _save_model(model: RegisteredModel) -> None:
    # The savepoint keeps the outer transaction usable when the unique name races another writer.
    try:
        with transaction.atomic():
            model.save()
    except IntegrityError as exc:
        if RegisteredModel.objects.filter(name=model.name).exclude(pk=model.pk).exists():
            raise ModelNameConflict(model.name) from exc
        raise


def _ensure_name_free(name: str, *, exclude_pk: int | None = None) -> None:
    others = RegisteredModel.objects.filter(name=name)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    if others.exists():
        raise ModelNameConflict(name)


@transaction.atomic
def model_register(
    *,
    fields: Mapping[str, Any],
    capabilities: Mapping[str, float] | None = None,
    endpoints: Sequence[Mapping[str, Any]] | None = None,
) -> RegisteredModel:
    """Register a model by hand, with its capabilities and endpoints; raises ``ModelNameConflict``."""
    _ensure_name_free(fields["name"])
    model = RegisteredModel(**{key: value for key, value in fields.items() if key in MODEL_FIELDS})
    _save_model(model)
    for capability, score in (capabilities or {}).items():
        capability_set(model=model, capability=capability, score=score)
    for endpoint in endpoints or []:
        endpoint_create(model=model, **endpoint)
    return model


@transaction.atomic
def model_update(
    *,
    model: RegisteredModel,
    fields: Mapping[str, Any],
    capabilities: Mapping[str, float] | None = None,
    endpoints: Sequence[Mapping[str, Any]] | None = None,
) -> RegisteredModel:
    """Change a model's fields; ``capabilities`` and ``endpoints``, when given, become its whole set.

    An endpoint item with an ``id`` updates that endpoint, one without creates one; endpoints
    not listed are deleted. Raises ``ModelNameConflict`` on a rename to a taken name.
    """
    if "name" in fields and fields["name"] != model.name:
        _ensure_name_free(fields["name"], exclude_pk=model.pk)
    changed = False
    for key, value in fields.items():
        if key in MODEL_FIELDS and getattr(model, key) != value:
            setattr(model, key, value)
            changed = True
    if changed:
        _save_model(model)
    if capabilities is not None:
        for row in ModelCapability.objects.filter(model=model).exclude(capability__in=list(capabilities)):
            row.delete()
        for capability, score in capabilities.items():
            capability_set(model=model, capability=capability, score=score)
    if endpoints is not None:
        existing = {endpoint.pk: endpoint for endpoint in ModelEndpoint.objects.filter(model=model)}
        kept = {int(item["id"]) for item in endpoints if item.get("id") is not None}
        for pk, endpoint in existing.items():
            if pk not in kept:
                endpoint.delete()
        for item in endpoints:
            values = {key: value for key, value in item.items() if key != "id"}
            if item.get("id") is not None:
                endpoint_update(endpoint=existing[int(item["id"])], **values)
            else:
                endpoint_create(model=model, **values)
    return model


@transaction.atomic
def model_delete(*, model: RegisteredModel) -> None:
    """Delete a model with its endpoints, capabilities and parameters; its usage and performance history stays."""
    model.delete()


@transaction.atomic
def capability_set(
    *, model: RegisteredModel, capability: str, score: float, evidence: str = ""
) -> tuple[ModelCapability, bool]:
    """Add or change a capability as the operator's; returns (row, created)."""
    row, created = ModelCapability.objects.update_or_create(
        model=model,
        capability=capability,
        defaults={"capability_score": score, "set_by": SetBy.OPERATOR, "evidence": evidence or "operator"},
    )
    return row, created


@transaction.atomic
def capability_remove(*, model: RegisteredModel, capability: str) -> bool:
    """Remove a capability, whoever set it; False when the model did not have it."""
    row = ModelCapability.objects.filter(model=model, capability=capability).first()
    if row is None:
        return False
    row.delete()
    return True


@transaction.atomic
def parameter_set(
    *,
    model: RegisteredModel,
    parameter_name: str,
    default_value: Any,
    min_value: Any = None,
    max_value: Any = None,
    description: str | None = None,
) -> tuple[ModelParameter, bool]:
    """Add or change a parameter (by name) as the operator's; returns (row, created)."""
    row, created = ModelParameter.objects.update_or_create(
        model=model,
        parameter_name=parameter_name,
        defaults={
            "default_value": default_value,
            "min_value": min_value,
            "max_value": max_value,
            "description": description,
            "set_by": SetBy.OPERATOR,
        },
    )
    return row, created


def _apply_endpoint_credentials(
    endpoint: ModelEndpoint,
    *,
    headers: Mapping[str, str] | Unset | None,
    secret_headers: Mapping[str, str | None] | Unset | None,
    api_key: str | Unset | None,
) -> None:
    """Set headers and credentials; an unset credential keeps its stored value, ``None`` clears it."""
    stored_secret: dict[str, str] = dict(endpoint.secret_headers or {})
    if not isinstance(headers, Unset):
        clear, secret = headers_split(headers or {})
        endpoint.headers = clear or None
        stored_secret.update(secret)
    if not isinstance(secret_headers, Unset):
        if secret_headers is None:
            stored_secret = {}
        else:
            for name, value in secret_headers.items():
                if value is None:
                    stored_secret.pop(name, None)
                else:
                    stored_secret[name] = value
    endpoint.secret_headers = stored_secret or None
    if not isinstance(api_key, Unset):
        endpoint.api_key = api_key or None


@transaction.atomic
def endpoint_create(
    *,
    model: RegisteredModel,
    endpoint_type: str,
    endpoint_url: str | None = None,
    auth_type: str | None = None,
    headers: Mapping[str, str] | Unset | None = UNSET,
    secret_headers: Mapping[str, str | None] | Unset | None = UNSET,
    api_key: str | Unset | None = UNSET,
) -> ModelEndpoint:
    """Add an endpoint by hand (no provider source); credentials-like headers are stored encrypted."""
    endpoint = ModelEndpoint(
        model=model, endpoint_type=endpoint_type, endpoint_url=endpoint_url, auth_type=auth_type, source=None
    )
    _apply_endpoint_credentials(endpoint, headers=headers, secret_headers=secret_headers, api_key=api_key)
    endpoint.save()
    return endpoint


@transaction.atomic
def endpoint_update(
    *,
    endpoint: ModelEndpoint,
    headers: Mapping[str, str] | Unset | None = UNSET,
    secret_headers: Mapping[str, str | None] | Unset | None = UNSET,
    api_key: str | Unset | None = UNSET,
    **fields: Any,
) -> ModelEndpoint:
    """Change an endpoint; credentials not given keep their stored values."""
    for key, value in fields.items():
        if key in ENDPOINT_FIELDS:
            setattr(endpoint, key, value)
    _apply_endpoint_credentials(endpoint, headers=headers, secret_headers=secret_headers, api_key=api_key)
    endpoint.save()
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: ModelEndpoint) -> None:
    endpoint.delete()


USAGE_FIELDS: Final = ("timestamp", "token_count", "request_count", "average_latency", "error_count", "cost")
PERFORMANCE_FIELDS: Final = ("timestamp", "metric_name", "metric_value", "task_category", "sample_size")


@transaction.atomic
def usage_record_batch(*, model: RegisteredModel, records: Sequence[Mapping[str, Any]]) -> list[ModelUsage]:
    """Record a batch of usage for ``model`` in one INSERT: all of it or none of it.

    Counters are incremented only once the batch is committed, so a rolled-back batch is never counted.
    """
    now = timezone.now()
    rows = [
        ModelUsage(
            model=model,
            model_name=model.name,
            **{key: record[key] for key in USAGE_FIELDS if record.get(key) is not None},
            **({} if record.get("timestamp") else {"timestamp": now}),
        )
        for record in records
    ]
    created = ModelUsage.objects.bulk_create(rows)
    requests = sum(row.request_count for row in rows)
    tokens = sum(row.token_count or 0 for row in rows)
    errors = sum(row.error_count for row in rows)
    cost = sum((Decimal(row.cost) for row in rows if row.cost is not None), start=Decimal(0))
    name = model.name
    transaction.on_commit(
        lambda: metrics.usage_recorded(model=name, requests=requests, tokens=tokens, errors=errors, cost=cost)
    )
    return created


@transaction.atomic
def performance_record_batch(*, model: RegisteredModel, records: Sequence[Mapping[str, Any]]) -> list[ModelPerformance]:
    """Record a batch of performance measurements for ``model`` in one INSERT: all of it or none of it."""
    now = timezone.now()
    rows = [
        ModelPerformance(
            model=model,
            model_name=model.name,
            **{key: record[key] for key in PERFORMANCE_FIELDS if record.get(key) is not None},
            **({} if record.get("timestamp") else {"timestamp": now}),
        )
        for record in records
    ]
    return ModelPerformance.objects.bulk_create(rows)
