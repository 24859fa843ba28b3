"""Writes to the catalog: models, their endpoints, capabilities and parameters.

Each service is one transaction. Configuration rows are written with ``save()``/``delete()``, one
row at a time, so that auditlog's signals record every change with the caller's actor and the
cache's signals invalidate cached reads. Usage and performance records are telemetry's
(``registry.telemetry.services``), dated prices ``registry.catalog.prices``.

What the API writes is the operator's: capabilities and parameters get ``set_by=operator`` (which
discovery never overwrites) and endpoints have no provider source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from auditlog.context import disable_auditlog
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry.access import audit
from registry.models import (
    OPERATOR_OWNABLE_FIELDS,
    EvidenceSource,
    ModelCapability,
    ModelEndpoint,
    ModelParameter,
    ModelPrice,
    ModelStatus,
    RegisteredModel,
    SetBy,
    StatusEventOrigin,
)
from registry.reads.cache import models_changed
from registry.telemetry.availability import operator_status_cause, status_change_record
from registry.telemetry.costing import usage_recost_for

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
# Judged by what the name contains (Authorization, X-Api-Key, X-Credential, X-Session-Id, X-Hub-Signature-256,
# Cookie2, ...): a header wrongly taken for a credential is still sent, only hidden, so the rule errs wide.
_SECRET_HEADER = re.compile(
    r"auth|key|token|secret|passw|pwd|credential|session|signature|cookie|jwt|bearer",
    re.IGNORECASE,
)


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
    """Whether a header of this name carries a credential (so is stored encrypted)."""
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
    operator_owned: bool = False,
    actor: str = "",
    via: str = "API",
) -> RegisteredModel:
    """Register a model by hand, with its capabilities and endpoints; raises ``ModelNameConflict``.

    ``operator_owned`` marks the fields given as the operator's from the start (a registry file's
    apply), so that discovery, should a source later list a model of that name, leaves them alone.
    ``actor`` (a username) and ``via`` (the API, the console) go into its availability history.
    """
    _ensure_name_free(fields["name"])
    model = RegisteredModel(**{key: value for key, value in fields.items() if key in MODEL_FIELDS})
    if operator_owned:
        operator_fields_mark(model, [key for key in fields if key in MODEL_FIELDS])
    _save_model(model)
    model_status_recorded(model=model, actor=actor, cause=f"registered {model.status} by an operator ({via})")
    price_from_model_fields(model, set_by=SetBy.OPERATOR)
    for capability, score in (capabilities or {}).items():
        capability_set(model=model, capability=capability, score=score)
    for endpoint in endpoints or []:
        # A new model's endpoints are all new: an "id" (a client sending back what it read) means nothing here.
        endpoint_create(model=model, **{key: value for key, value in endpoint.items() if key != "id"})
    return model


@transaction.atomic
def model_update(
    *,
    model: RegisteredModel,
    fields: Mapping[str, Any],
    capabilities: Mapping[str, float] | None = None,
    endpoints: Sequence[Mapping[str, Any]] | None = None,
    actor: str = "",
    via: str = "API",
) -> RegisteredModel:
    """Change a model's fields; ``capabilities`` and ``endpoints``, when given, become its whole set.

    An endpoint item with an ``id`` updates that endpoint, one without creates one; endpoints
    not listed are deleted. Raises ``ModelNameConflict`` on a rename to a taken name. A status
    change goes into the availability history under ``actor``.
    """
    if "name" in fields and fields["name"] != model.name:
        _ensure_name_free(fields["name"], exclude_pk=model.pk)
    changed = [key for key, value in fields.items() if key in MODEL_FIELDS and getattr(model, key) != value]
    for key in changed:
        setattr(model, key, fields[key])
    if changed:
        operator_fields_mark(model, changed)
        _save_model(model)
        if "status" in changed:
            model_status_recorded(model=model, actor=actor, cause=operator_status_cause(model.status, via))
        if {"input_cost_per_mtok", "output_cost_per_mtok"} & set(changed):
            price_from_model_fields(model, set_by=SetBy.OPERATOR)
    if capabilities is not None:
        existing_scores: dict[str, float] = {}
        for row in ModelCapability.objects.filter(model=model):
            if row.capability in capabilities:
                existing_scores[row.capability] = row.capability_score
            else:
                row.delete()
        for capability, score in capabilities.items():
            # Unchanged scores stay as they are, and with their owner: a client that sends back the
            # model it read does not take discovery's capabilities from it.
            if existing_scores.get(capability) != score:
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


def operator_fields_mark(model: RegisteredModel, changed: Sequence[str], *, handed_back: Sequence[str] = ()) -> None:
    """Record on ``model`` (not saved) which fields are the operator's: discovery leaves those alone.

    ``changed`` were set by an operator; ``handed_back`` are returned to discovery (its next run
    writes the provider's values again). A status set by hand to unavailable or deprecated is the
    operator's too; setting it back to available hands it back, so that discovery may mark the model
    unavailable when it vanishes.
    """
    owned = set(model.operator_fields or [])
    owned.update(name for name in changed if name in OPERATOR_OWNABLE_FIELDS and name != "status")
    if "status" in changed:
        if model.status == ModelStatus.AVAILABLE:
            owned.discard("status")
        else:
            owned.add("status")
    owned.difference_update(handed_back)
    model.operator_fields = sorted(owned)


def model_status_recorded(*, model: RegisteredModel, actor: str, cause: str) -> None:
    """Put an operator's status of ``model`` (saved) into its availability history.

    Without an ``actor``, the audit's current one (the API names it for each write request).
    """
    status_change_record(
        model_id=model.pk,
        status=model.status,
        origin=StatusEventOrigin.OPERATOR,
        cause=cause,
        at=model.updated_at,
        actor=actor or audit.current_actor_name(),
    )


@transaction.atomic
def models_set_status(*, models: Sequence[RegisteredModel], status: str, actor: str = "", via: str = "console") -> int:
    """Set the status of ``models`` by hand (audited row by row, and in their availability history).

    Returns how many changed.
    """
    changed = 0
    for model in models:
        if model.status != status:
            model.status = status
            operator_fields_mark(model, ["status"])
            model.save(update_fields=["status", "operator_fields", "updated_at"])
            model_status_recorded(model=model, actor=actor, cause=operator_status_cause(status, via))
            changed += 1
    return changed


@transaction.atomic
def model_delete(*, model: RegisteredModel) -> None:
    """Delete a model with its endpoints, capabilities and parameters; its usage and performance history stays."""
    model.delete()


# An operator's score rests on the operator alone: no measurement facts.
OPERATOR_EVIDENCE: Final = {
    "evidence_source": EvidenceSource.OPERATOR,
    "metric_name": None,
    "task_category": None,
    "sample_size": None,
    "window_start": None,
    "window_end": None,
}


@transaction.atomic
def capability_set(
    *, model: RegisteredModel, capability: str, score: float, evidence: str = ""
) -> tuple[ModelCapability, bool]:
    """Add or change a capability as the operator's (evidence source ``operator``, evaluated now).

    Returns (row, created).
    """
    row, created = ModelCapability.objects.update_or_create(
        model=model,
        capability=capability,
        defaults={
            "capability_score": score,
            "set_by": SetBy.OPERATOR,
            "evidence": evidence or "operator",
            **OPERATOR_EVIDENCE,
            "evaluated_at": timezone.now(),
        },
    )
    return row, created


@dataclass(frozen=True)
class MeasuredScore:
    """A capability score measured from performance records, with its evidence (registry.selection.scores)."""

    model_id: int
    capability: str
    score: float
    note: str
    metric_name: str
    task_category: str | None
    sample_size: int
    window_start: datetime
    window_end: datetime


@dataclass(frozen=True)
class MeasuredApplied:
    """What ``capabilities_measured_apply`` wrote: rows created, updated and removed."""

    created: int = 0
    updated: int = 0
    removed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)


# The columns a measured score writes (besides evaluated_at, set when any of them changes).
_MEASURED_COLUMNS: Final = ("capability_score", "set_by", *ModelCapability.EVIDENCE_FIELDS)


def _measured_values(score: MeasuredScore) -> dict[str, Any]:
    return {
        "capability_score": score.score,
        # The system's, not an operator's: discovery-like ownership, told apart by its evidence source.
        "set_by": SetBy.DISCOVERY,
        "evidence_source": EvidenceSource.MEASURED,
        "evidence": score.note[:300],
        "metric_name": score.metric_name[:100],
        "task_category": score.task_category[:100] if score.task_category else None,
        "sample_size": score.sample_size,
        "window_start": score.window_start,
        "window_end": score.window_end,
    }


def _audit_text(value: Any) -> str:
    """A value as auditlog stores it in ``changes``."""
    return "None" if value is None else str(value)


@transaction.atomic
def capabilities_measured_apply(
    *, scores: Sequence[MeasuredScore], expired: Sequence[tuple[int, str]] = (), now: datetime | None = None
) -> MeasuredApplied:
    """Write measured capability scores and remove expired measured ones, in bulk: a fixed number of queries.

    Never touches an operator's row (``set_by=operator``); replaces a provider's or the catalog's
    score with the measured one; writes nothing for a score whose value and evidence are as stored
    (so a rerun over the same records writes nothing). ``expired`` names (model id, capability)
    pairs whose measured score is removed (unknown from then on) if it is still a measured one.
    Every write is audited with the current actor (``registry.access.audit.system_actor``) and
    invalidates the cached reads.
    """
    now = now or timezone.now()
    wanted = {(score.model_id, score.capability): score for score in scores}
    pairs = set(wanted) | set(expired)
    if not pairs:
        return MeasuredApplied()
    # Locked: an operator's write racing this one either lands first (and is then left alone) or waits.
    existing = {
        (row.model_id, row.capability): row
        for row in ModelCapability.objects.select_for_update()
        .filter(model_id__in={model_id for model_id, _ in pairs}, capability__in={name for _, name in pairs})
        .order_by("pk")
    }
    created: list[ModelCapability] = []
    updated: list[tuple[ModelCapability, dict[str, list[str]]]] = []
    for key, score in wanted.items():
        desired = _measured_values(score)
        row = existing.get(key)
        if row is None:
            created.append(
                ModelCapability(model_id=score.model_id, capability=score.capability, evaluated_at=now, **desired)
            )
            continue
        if row.set_by == SetBy.OPERATOR:
            continue
        changes = {
            name: [_audit_text(getattr(row, name)), _audit_text(value)]
            for name, value in desired.items()
            if getattr(row, name) != value
        }
        if changes:
            for name, value in desired.items():
                setattr(row, name, value)
            changes["evaluated_at"] = [_audit_text(row.evaluated_at), _audit_text(now)]
            row.evaluated_at = now
            updated.append((row, changes))
    removed = [
        row
        for key in expired
        if key not in wanted
        and (row := existing.get(key)) is not None
        and row.evidence_source == EvidenceSource.MEASURED
        and row.set_by != SetBy.OPERATOR
    ]
    if created:
        ModelCapability.objects.bulk_create(created)
        audit.log_bulk(
            "create",
            created,
            [
                {
                    name: ["None", _audit_text(getattr(row, name))]
                    for name in ("model_id", "capability", *_MEASURED_COLUMNS)
                }
                for row in created
            ],
        )
    if updated:
        ModelCapability.objects.bulk_update([row for row, _ in updated], [*_MEASURED_COLUMNS, "evaluated_at"])
        audit.log_bulk("update", [row for row, _ in updated], [changes for _, changes in updated])
    if removed:
        audit.log_bulk("delete", removed, [{} for _ in removed])
        # Logged above in one insert; auditlog's own per-row entries would cost a query each.
        with disable_auditlog():
            ModelCapability.objects.filter(pk__in=[row.pk for row in removed]).delete()
    outcome = MeasuredApplied(created=len(created), updated=len(updated), removed=len(removed))
    if outcome.changed:
        models_changed()
    return outcome


@transaction.atomic
def capability_remove(*, model: RegisteredModel, capability: str) -> bool:
    """Remove a capability, whoever set it; False when the model did not have it."""
    row = ModelCapability.objects.filter(model=model, capability=capability).first()
    if row is None:
        return False
    row.model = model  # loaded: the audit entry names the model ("gpt-4o: code"), not "model 51"
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


@transaction.atomic
def parameter_remove(*, model: RegisteredModel, parameter_name: str) -> bool:
    """Remove a parameter, whoever set it; False when the model did not have it."""
    row = ModelParameter.objects.filter(model=model, parameter_name=parameter_name).first()
    if row is None:
        return False
    row.delete()
    return True


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


PRICE_FIELDS: Final = (
    "input_cost_per_mtok",
    "output_cost_per_mtok",
    "cache_read_cost_per_mtok",
    "cache_write_cost_per_mtok",
)


def price_from_model_fields(model: RegisteredModel, *, set_by: str) -> ModelPrice | None:
    """The model's price fields, set by hand (API or console), as its price from now on (when both are known)."""
    if model.input_cost_per_mtok is None or model.output_cost_per_mtok is None:
        return None
    row, _ = ModelPrice.objects.update_or_create(
        model=model,
        effective_from=timezone.now(),
        defaults={
            "input_per_mtok": model.input_cost_per_mtok,
            "output_per_mtok": model.output_cost_per_mtok,
            "cache_read_per_mtok": model.cache_read_cost_per_mtok,
            "cache_write_per_mtok": model.cache_write_cost_per_mtok,
            "set_by": set_by,
            # Typed on the model, not dated: known from now, in force since an unknown moment.
            "start_known": False,
        },
    )
    usage_recost_for(row)  # and resolves the unpriced-usage alert once nothing is left uncosted
    return row
