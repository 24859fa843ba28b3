"""One discovery run of one source: ask the provider, then write the difference in one transaction.

The run is planned first (what to create, change, delete, make unavailable) from a fixed number
of reads, then applied with bulk writes, so a source of 1,000 models costs a bounded number of
queries and a rerun over an unchanged answer writes nothing. The rules:

- A model name is one model whichever sources list it; each source keeps one endpoint on it
  (``model_endpoints_one_per_source``). The source that first discovered a model (``model.source``)
  owns its description (type, limits, prices, details) and its discovery-set capabilities and
  parameters; other sources only add their endpoint and keep the model available.
- Rows an operator set (``set_by=operator``) are never changed or removed; discovery changes and
  removes only the capability and parameter rows it set itself, and never a measured score
  (``evidence_source=measured``, written by registry.selection.scores from performance records).
- A model is never deleted. When a source stops listing it, that source's endpoint goes, and the
  model becomes ``unavailable`` once no source lists it; a ``deprecated`` model stays deprecated.
- ``last_seen_at`` is refreshed when older than ``DISCOVERY_LAST_SEEN_RESOLUTION_SECONDS``, so an
  idle rerun writes nothing; it is bookkeeping (not audited, ``updated_at`` unchanged).
- The provider is asked before the transaction opens: a failure leaves the registry untouched.
- An Ollama source is also asked what it has loaded (``GET /api/ps``, discovery.runtime). A model
  loaded but not in ``/api/tags`` is registered from its ``/api/ps`` entry (the host serves it).
  A failing ``/api/ps`` is a warning on the run, never its failure.
- A model added, made unavailable or available again is an event of its availability history
  (registry.telemetry.availability), dated at the run and naming it, written in the same transaction.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

from auditlog.context import disable_auditlog
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import F, Model
from django.utils import timezone

from discovery.catalogs import catalogs_in_use, listing_with_catalog_facts
from discovery.clients import fetch_listing, fetch_loaded, ollama
from discovery.clients.base import DiscoveredModel, Listing, LoadedModel, Progress, ProviderError
from discovery.locks import source_lock
from discovery.models import CHANGE_KINDS, CHANGES_NAMES_MAX, DiscoveryRun, ProviderSource, RunStatus, SourceKind
from discovery.runtime import runtime_record
from registry.access.audit import log_bulk
from registry.catalog.credentials import redact_text
from registry.catalog.prices import price_in_force
from registry.models import (
    PLATFORM_DETAILS_KEY,
    EvidenceSource,
    ModelCapability,
    ModelEndpoint,
    ModelParameter,
    ModelPrice,
    ModelStatus,
    ModelStatusEvent,
    RegisteredModel,
    SetBy,
    StatusEventKind,
    StatusEventOrigin,
)
from registry.operations import metrics
from registry.reads.cache import models_changed
from registry.telemetry.availability import status_event, status_events_record
from registry.telemetry.costing import usage_recost_unpriced

logger = logging.getLogger(__name__)

NAME_MAX_LENGTH = 100  # models.name


def _text(value: Any) -> str:
    """A value as auditlog stores it in ``changes``."""
    if value is None:
        return "None"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _diff(obj: Model, desired: dict[str, Any]) -> dict[str, list[str]]:
    """Set ``desired`` on ``obj``; return the changed fields as ``{field: [old, new]}``."""
    changes: dict[str, list[str]] = {}
    for name, new in desired.items():
        old = getattr(obj, name)
        if old != new:
            changes[name] = [_text(old), _text(new)]
            setattr(obj, name, new)
    return changes


RowT = TypeVar("RowT", bound=Model)


@dataclass
class RowChanges(Generic[RowT]):
    """Rows of one table to create, change (with their audit changes) and delete."""

    create: list[RowT] = field(default_factory=list)
    update: list[tuple[RowT, dict[str, list[str]]]] = field(default_factory=list)
    delete: list[RowT] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.delete)


@dataclass
class SyncPlan:
    """What a run would write; ``apply_plan`` writes it."""

    now: datetime
    seen: int = 0
    skipped: list[str] = field(default_factory=list)
    added: set[str] = field(default_factory=set)
    updated: set[str] = field(default_factory=set)
    unavailable: set[str] = field(default_factory=set)
    models: RowChanges[RegisteredModel] = field(default_factory=RowChanges)
    endpoints: RowChanges[ModelEndpoint] = field(default_factory=RowChanges)
    capabilities: RowChanges[ModelCapability] = field(default_factory=RowChanges)
    parameters: RowChanges[ModelParameter] = field(default_factory=RowChanges)
    # Dated prices to add (never changed or removed by discovery: past usage keeps its cost).
    prices: list[ModelPrice] = field(default_factory=list)
    # Bookkeeping only (last_seen_at): written, neither audited nor counted as a change.
    models_seen_again: list[RegisteredModel] = field(default_factory=list)
    endpoints_seen_again: list[ModelEndpoint] = field(default_factory=list)

    @property
    def changes_anything(self) -> bool:
        return bool(self.models or self.endpoints or self.capabilities or self.parameters or self.prices)


def _described(claim: DiscoveredModel) -> dict[str, Any]:
    return {
        "display_name": claim.display_name[:200],
        "provider": claim.provider,
        "model_type": claim.model_type,
        "version": claim.version[:50] if claim.version else None,
        "context_window": claim.context_window,
        "input_cost_per_mtok": claim.input_cost_per_mtok,
        "output_cost_per_mtok": claim.output_cost_per_mtok,
        "cache_read_cost_per_mtok": claim.cache_read_cost_per_mtok,
        "cache_write_cost_per_mtok": claim.cache_write_cost_per_mtok,
        "details": claim.details,
    }


def _discovery_owns(row: ModelCapability) -> bool:
    """Whether discovery may change or remove a capability row: not an operator's, and not a measured score.

    A measured score rests on performance records (registry.selection.scores), which a provider's
    declaration or the catalog does not outweigh; the derivation removes it when it goes stale.
    """
    return row.set_by == SetBy.DISCOVERY and row.evidence_source != EvidenceSource.MEASURED


def _plan_owned_rows(
    plan: SyncPlan,
    model: RegisteredModel,
    claim: DiscoveredModel,
    existing_caps: dict[str, ModelCapability],
    existing_params: dict[str, ModelParameter],
) -> bool:
    """Capabilities and parameters of a model this source owns; True when any row changes."""
    changed = False
    for name, cap_claim in claim.capabilities.items():
        score = min(1.0, max(0.0, float(cap_claim.score)))
        row = existing_caps.get(name)
        if row is None:
            plan.capabilities.create.append(
                ModelCapability(
                    model=model,
                    capability=name,
                    capability_score=score,
                    set_by=SetBy.DISCOVERY,
                    evidence=cap_claim.evidence[:300],
                    evidence_source=cap_claim.source,
                    evaluated_at=plan.now,
                )
            )
            changed = True
        elif _discovery_owns(row):
            changes = _diff(
                row,
                {"capability_score": score, "evidence": cap_claim.evidence[:300], "evidence_source": cap_claim.source},
            )
            if changes:
                changes.update(_diff(row, {"evaluated_at": plan.now}))
                plan.capabilities.update.append((row, changes))
                changed = True
    for name, row in existing_caps.items():
        if _discovery_owns(row) and name not in claim.capabilities:
            plan.capabilities.delete.append(row)
            changed = True
    for name, param_claim in claim.parameters.items():
        desired = {
            "default_value": param_claim.default,
            "min_value": param_claim.min_value,
            "max_value": param_claim.max_value,
            "description": param_claim.description,
        }
        param = existing_params.get(name)
        if param is None:
            plan.parameters.create.append(
                ModelParameter(model=model, parameter_name=name[:100], set_by=SetBy.DISCOVERY, **desired)
            )
            changed = True
        elif param.set_by == SetBy.DISCOVERY:
            changes = _diff(param, desired)
            if changes:
                plan.parameters.update.append((param, changes))
                changed = True
    for name, param in existing_params.items():
        if param.set_by == SetBy.DISCOVERY and name not in claim.parameters:
            plan.parameters.delete.append(param)
            changed = True
    return changed


def _endpoint_values(claim: DiscoveredModel) -> dict[str, Any]:
    return {
        "endpoint_type": claim.endpoint.endpoint_type,
        "endpoint_url": claim.endpoint.endpoint_url[:255],
        "auth_type": claim.endpoint.auth_type,
        "headers": claim.endpoint.headers,
    }


def plan_sync(source: ProviderSource, listing: Listing, *, now: datetime) -> SyncPlan:
    """Compare ``listing`` with the registry; reads only, a fixed number of queries."""
    plan = SyncPlan(now=now, skipped=list(listing.skipped))
    resolution = timedelta(seconds=int(settings.DISCOVERY_LAST_SEEN_RESOLUTION_SECONDS))
    claims: dict[str, DiscoveredModel] = {}
    for claim in listing.models:
        if len(claim.name) > NAME_MAX_LENGTH:
            logger.warning("discovery source %s: model name longer than 100 characters skipped", source.name)
            plan.skipped.append(claim.name[:NAME_MAX_LENGTH] + "...")
        elif claim.name not in claims:
            claims[claim.name] = claim
    plan.seen = len(claims)

    existing = {m.name: m for m in RegisteredModel.objects.filter(name__in=list(claims))}
    endpoints = {e.model_id: e for e in ModelEndpoint.objects.filter(source=source).select_related("model")}
    owned = {m.pk: m for m in existing.values() if m.source_id == source.pk}
    caps_by_model: dict[int, dict[str, ModelCapability]] = {}
    params_by_model: dict[int, dict[str, ModelParameter]] = {}
    if owned:
        # Each row gets its model object from `owned` (no query): the audit entries name the model.
        for cap in ModelCapability.objects.filter(model_id__in=list(owned)):
            cap.model = owned[cap.model_id]
            caps_by_model.setdefault(cap.model_id, {})[cap.capability] = cap
        for param in ModelParameter.objects.filter(model_id__in=list(owned)):
            param.model = owned[param.model_id]
            params_by_model.setdefault(param.model_id, {})[param.parameter_name] = param
    prices_by_model: dict[int, list[ModelPrice]] = {}
    # Only models the source prices have price rows to compare (none for a local host: no query).
    priced = [pk for pk, m in owned.items() if claims[m.name].input_cost_per_mtok is not None]
    if priced:
        for price in ModelPrice.objects.filter(model_id__in=priced).order_by("effective_from"):
            prices_by_model.setdefault(price.model_id, []).append(price)

    for name, claim in claims.items():
        model = existing.get(name)
        if model is None:
            model = RegisteredModel(
                name=name,
                source=source,
                status=ModelStatus.AVAILABLE,
                first_seen_at=now,
                last_seen_at=now,
                **_described(claim),
            )
            plan.models.create.append(model)
            plan.added.add(name)
            _plan_owned_rows(plan, model, claim, {}, {})
            plan.prices.extend(_planned_prices(model, claim, [], now=now))
            plan.endpoints.create.append(
                ModelEndpoint(model=model, source=source, last_seen_at=now, **_endpoint_values(claim))
            )
            continue

        desired: dict[str, Any] = _described(claim) if model.source_id == source.pk else {}
        for name_set_by_operator in model.operator_fields or []:
            desired.pop(name_set_by_operator, None)  # an operator's value stays until handed back
        if set(PRICE_FIELDS) & set(model.operator_fields or []):
            for price_field in PRICE_FIELDS:
                desired.pop(price_field, None)  # an operator's price is the whole price, cache prices included
        if "details" in desired and isinstance(model.details, dict) and PLATFORM_DETAILS_KEY in model.details:
            # The provider's facts are the source's; the platform overrides beside them are the operator's.
            desired["details"] = {**desired["details"], PLATFORM_DETAILS_KEY: model.details[PLATFORM_DETAILS_KEY]}
        if model.status == ModelStatus.UNAVAILABLE and "status" not in (model.operator_fields or []):
            desired["status"] = ModelStatus.AVAILABLE  # it came back
        if model.first_seen_at is None:
            desired["first_seen_at"] = now  # registered by hand, listed for the first time
        changes = _diff(model, desired)
        rows_changed = False
        if model.source_id == source.pk:
            rows_changed = _plan_owned_rows(
                plan, model, claim, caps_by_model.get(model.pk, {}), params_by_model.get(model.pk, {})
            )
            if not set(PRICE_FIELDS) & set(model.operator_fields or []):
                new_prices = _planned_prices(model, claim, prices_by_model.get(model.pk, []), now=now)
                plan.prices.extend(new_prices)
                rows_changed = rows_changed or bool(new_prices)
        endpoint = endpoints.get(model.pk)
        if endpoint is None:
            plan.endpoints.create.append(
                ModelEndpoint(model=model, source=source, last_seen_at=now, **_endpoint_values(claim))
            )
            rows_changed = True
        else:
            endpoint_changes = _diff(endpoint, _endpoint_values(claim))
            if endpoint_changes:
                plan.endpoints.update.append((endpoint, endpoint_changes))
                rows_changed = True
            if endpoint.last_seen_at is None or now - endpoint.last_seen_at >= resolution:
                endpoint.last_seen_at = now
                plan.endpoints_seen_again.append(endpoint)
        if changes:
            model.updated_at = now
            plan.models.update.append((model, changes))
        if changes or rows_changed:
            plan.updated.add(name)
        if model.last_seen_at is None or now - model.last_seen_at >= resolution:
            model.last_seen_at = now
            plan.models_seen_again.append(model)

    # This source's endpoints on models it no longer lists: the endpoint goes, the model stays.
    gone = [e for e in endpoints.values() if e.model.name not in claims]
    if gone:
        plan.endpoints.delete.extend(gone)
        gone_ids = [e.model_id for e in gone]
        still_listed = set(
            ModelEndpoint.objects.filter(model_id__in=gone_ids, source__isnull=False)
            .exclude(source=source)
            .values_list("model_id", flat=True)
        )
        for endpoint in gone:
            model = endpoint.model
            if endpoint.model_id in still_listed:
                plan.updated.add(model.name)
            elif model.status == ModelStatus.AVAILABLE:
                changes = _diff(model, {"status": ModelStatus.UNAVAILABLE, "updated_at": now})
                changes.pop("updated_at", None)
                plan.models.update.append((model, changes))
                plan.unavailable.add(model.name)
    return plan


def _fields_of(changed: Sequence[tuple[Model, dict[str, list[str]]]], *extra: str) -> list[str]:
    names = {name for _, changes in changed for name in changes}
    return sorted(names | set(extra))


# The fields an audit entry of a created row shows.
CREATED_AUDIT_FIELDS: dict[type[Model], list[str]] = {
    RegisteredModel: ["name", "provider", "model_type", "status", "source_id"],
    ModelEndpoint: ["model_id", "source_id", "endpoint_type", "endpoint_url", "auth_type"],
    ModelCapability: ["model_id", "capability", "capability_score", "set_by", "evidence_source", "evidence"],
    ModelParameter: ["model_id", "parameter_name", "default_value", "min_value", "max_value", "set_by"],
    ModelPrice: [
        "model_id",
        "input_per_mtok",
        "output_per_mtok",
        "cache_read_per_mtok",
        "cache_write_per_mtok",
        "effective_from",
        "set_by",
    ],
}
PRICE_FIELDS = ("input_cost_per_mtok", "output_cost_per_mtok", "cache_read_cost_per_mtok", "cache_write_cost_per_mtok")


def _price_amounts(price: ModelPrice) -> tuple[Decimal | None, ...]:
    return (price.input_per_mtok, price.output_per_mtok, price.cache_read_per_mtok, price.cache_write_per_mtok)


def _planned_prices(
    model: RegisteredModel, claim: DiscoveredModel, existing: list[ModelPrice], *, now: datetime
) -> list[ModelPrice]:
    """The dated prices to add for ``model`` (its prices so far: ``existing``, oldest first).

    A catalog's dated price becomes a price from its date, once; one the registry already has at
    that moment is never rewritten (past usage keeps its cost). The catalog's undated price is the
    price from this run on when nothing dated is in force yet. When the price in force now then
    still differs from what the source says now (a provider's or a catalog's change without a
    date), the new price applies from this run on, as a provider's change always has.
    """

    Amounts = tuple[Decimal, Decimal, Decimal | None, Decimal | None]

    def row(effective_from: datetime, amounts: Amounts, *, start_known: bool) -> ModelPrice:
        return ModelPrice(
            model=model,
            input_per_mtok=amounts[0],
            output_per_mtok=amounts[1],
            cache_read_per_mtok=amounts[2],
            cache_write_per_mtok=amounts[3],
            effective_from=effective_from,
            start_known=start_known,
            set_by=SetBy.DISCOVERY,
        )

    input_price, output_price = claim.input_cost_per_mtok, claim.output_cost_per_mtok
    if input_price is None or output_price is None:
        return []
    moments = {price.effective_from for price in existing}
    added: list[ModelPrice] = []
    for dated in claim.price_history:
        starts = dated.starts_at
        if starts is not None and starts not in moments:
            added.append(row(starts, dated.amounts(), start_known=True))
            moments.add(starts)
    timeline = sorted([*existing, *added], key=lambda price: price.effective_from)
    current = price_in_force(timeline, now)
    wanted: Amounts = (input_price, output_price, claim.cache_read_cost_per_mtok, claim.cache_write_cost_per_mtok)
    if (current is None or _price_amounts(current) != wanted) and now not in moments:
        # Seen at this run; in force since a moment the listing and the catalogs do not say.
        added.append(row(now, wanted, start_known=False))
    return added


def _create(table: type[RowT], rows: list[RowT]) -> None:
    if not rows:
        return
    table._default_manager.bulk_create(rows)
    names = CREATED_AUDIT_FIELDS[table]
    log_bulk("create", rows, [{name: ["None", _text(getattr(row, name))] for name in names} for row in rows])


def _update(table: type[RowT], rows: list[tuple[RowT, dict[str, list[str]]]], *bookkeeping: str) -> None:
    if not rows:
        return
    table._default_manager.bulk_update([row for row, _ in rows], _fields_of(rows, *bookkeeping))
    log_bulk("update", [row for row, _ in rows], [changes for _, changes in rows])


def _delete(table: type[RowT], rows: list[RowT]) -> None:
    if not rows:
        return
    log_bulk("delete", rows, [{} for _ in rows])
    # Logged above in one bulk insert; auditlog's own per-row delete entries would cost a query each.
    with disable_auditlog():
        table._default_manager.filter(pk__in=[row.pk for row in rows]).delete()


def _status_events(plan: SyncPlan, source: ProviderSource, run_id: int | None) -> list[ModelStatusEvent]:
    """The availability history's events of a run: models it added, and those it made unavailable or available."""

    def event(model: RegisteredModel, cause: str) -> ModelStatusEvent:
        return status_event(
            model_id=model.pk,
            kind=StatusEventKind.STATUS,
            state=model.status,
            origin=StatusEventOrigin.DISCOVERY,
            cause=cause,
            at=plan.now,
            source_id=source.pk,
            run_id=run_id,
        )

    run = f"run #{run_id}" if run_id is not None else "a run"
    events = [event(model, f"first listed by source {source.name} ({run})") for model in plan.models.create]
    for model, changes in plan.models.update:
        if "status" not in changes:
            continue
        if model.status == ModelStatus.UNAVAILABLE:
            cause = f"no longer listed by source {source.name} nor any other ({run})"
        else:
            cause = f"listed again by source {source.name} ({run})"
        events.append(event(model, cause))
    return events


def apply_plan(plan: SyncPlan, *, source: ProviderSource, run_id: int | None = None) -> None:
    """Write ``plan`` with bulk operations (a bounded number of queries), auditing each write.

    Status changes also go to the availability history, dated at the run (``plan.now``): the
    moment a model was found missing is the run that did not list it, not its ``last_seen_at``.
    """
    # log_bulk looks up each row's content type; warm Django's cache in one query instead of four.
    ContentType.objects.get_for_models(RegisteredModel, ModelEndpoint, ModelCapability, ModelParameter, ModelPrice)
    _create(RegisteredModel, plan.models.create)
    # New models got their primary keys from the bulk insert above; point their rows at them.
    for endpoint in plan.endpoints.create:
        endpoint.model_id = endpoint.model.pk
    for capability in plan.capabilities.create:
        capability.model_id = capability.model.pk
    for parameter in plan.parameters.create:
        parameter.model_id = parameter.model.pk
    for endpoint, _ in plan.endpoints.update:
        endpoint.updated_at = plan.now
    # updated_at is auto_now, which bulk_update skips: the plan set it on every changed row.
    _update(RegisteredModel, plan.models.update, "updated_at", "last_seen_at")
    _update(ModelEndpoint, plan.endpoints.update, "updated_at", "last_seen_at")
    _update(ModelCapability, plan.capabilities.update)
    _update(ModelParameter, plan.parameters.update)
    _delete(ModelEndpoint, plan.endpoints.delete)
    _delete(ModelCapability, plan.capabilities.delete)
    _delete(ModelParameter, plan.parameters.delete)
    _create(ModelEndpoint, plan.endpoints.create)
    _create(ModelCapability, plan.capabilities.create)
    _create(ModelParameter, plan.parameters.create)
    prices = plan.prices
    for price in prices:
        price.model_id = price.model.pk
    _create(ModelPrice, prices)
    status_events_record(_status_events(plan, source, run_id))
    # Usage of these models could not be costed before: it is costed now (registry/telemetry/costing.py).
    usage_recost_unpriced(prices)

    changed_models = {model.pk for model, _ in plan.models.update}
    seen_models = [m for m in plan.models_seen_again if m.pk not in changed_models]
    if seen_models:
        RegisteredModel.objects.bulk_update(seen_models, ["last_seen_at"])
    changed_endpoints = {endpoint.pk for endpoint, _ in plan.endpoints.update}
    seen_endpoints = [e for e in plan.endpoints_seen_again if e.pk not in changed_endpoints]
    if seen_endpoints:
        ModelEndpoint.objects.bulk_update(seen_endpoints, ["last_seen_at"])
    if plan.changes_anything:
        models_changed()


@dataclass
class RunOutcome:
    status: str
    error: str = ""
    plan: SyncPlan | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class LoadedNow:
    """An Ollama host's answer to ``GET /api/ps`` during a run, and when it came."""

    models: list[LoadedModel]
    checked_at: datetime


def _read_loaded(source: ProviderSource, warnings: list[str]) -> LoadedNow | None:
    """What an Ollama source has loaded now; None (and a warning) when it cannot say, or is not Ollama."""
    if source.kind != SourceKind.OLLAMA:
        return None
    try:
        models = fetch_loaded(source)
    except ProviderError as exc:
        logger.warning("discovery source %s: GET /api/ps failed, runtime not recorded: %s", source.name, exc)
        warnings.append(f"What the host has loaded could not be read, so runtime was not recorded: {exc}")
        return None
    return LoadedNow(models=models, checked_at=timezone.now())


def _with_loaded(listing: Listing, loaded: LoadedNow | None, base_url: str) -> Listing:
    """``listing`` plus each loaded model it does not list: a host serves what it has loaded."""
    if loaded is None:
        return listing
    listed = {model.name for model in listing.models}
    extra = [ollama.map_loaded_model(base_url=base_url, loaded=m) for m in loaded.models if m.name not in listed]
    if not extra:
        return listing
    return Listing(models=[*listing.models, *extra], skipped=listing.skipped)


def _record_loaded(source: ProviderSource, loaded: LoadedNow, warnings: list[str]) -> None:
    """Record the host's runtime after the sync committed (so models it just registered are matched)."""
    try:
        runtime_record(source=source, entries=loaded.models, checked_at=loaded.checked_at)
    except Exception as exc:
        # The sync is committed; a failure here loses one observation, not the run.
        logger.exception("discovery source %s: runtime could not be recorded", source.name)
        warnings.append(f"Runtime could not be recorded: {exc!r}"[:2000])


INTERRUPTED = "interrupted: the process running it stopped before it finished"


def _discover(run: DiscoveryRun, *, dry_run: bool, progress: Progress | None) -> RunOutcome:
    source = run.source
    with source_lock(source) as acquired:
        if not acquired:
            return RunOutcome(RunStatus.SKIPPED, f"another discovery run of source {source.name} holds the lock")
        if connection.vendor == "postgresql":
            # Holding the lock, no other run of this source is in progress: a run still marked
            # running was cut off (a killed worker). Close it so that history and alerts stay true.
            DiscoveryRun.objects.filter(source=source, status=RunStatus.RUNNING).exclude(pk=run.pk).update(
                status=RunStatus.FAILED, finished_at=timezone.now(), error_message=INTERRUPTED
            )
        warnings: list[str] = []
        try:
            # Outside the transaction: a slow or failing provider holds no database lock or snapshot.
            listing = fetch_listing(source, progress=progress)
            loaded = _read_loaded(source, warnings)
            # The catalogs fill what the provider left unsaid; matching is in memory, before any lock is taken.
            listing = listing_with_catalog_facts(_with_loaded(listing, loaded, source.base_url), catalogs_in_use())
            with transaction.atomic():
                plan = plan_sync(source, listing, now=timezone.now())
                if not dry_run:
                    apply_plan(plan, source=source, run_id=run.pk)
        except ProviderError as exc:
            logger.warning("discovery source %s failed: %s", source.name, exc)
            return RunOutcome(RunStatus.FAILED, str(exc), warnings=warnings)
        except Exception as exc:
            # A bug or a database failure: the transaction rolled back; record it rather than lose it.
            logger.exception("discovery source %s failed unexpectedly", source.name)
            return RunOutcome(
                RunStatus.FAILED,
                f"unexpected error while syncing source {source.name}: {exc!r}"[:2000],
                warnings=warnings,
            )
        if loaded is not None and not dry_run:
            _record_loaded(source, loaded, warnings)
    return RunOutcome(RunStatus.SUCCEEDED, plan=plan, warnings=warnings)


@dataclass(frozen=True)
class SyncReport:
    """A recorded run and the names behind its counts (for the ``discover`` command to print)."""

    run: DiscoveryRun
    added: list[str]
    updated: list[str]
    unavailable: list[str]
    skipped: list[str]


def source_sync(
    *, source: ProviderSource, trigger: str, dry_run: bool = False, progress: Progress | None = None
) -> DiscoveryRun:
    """Run discovery for ``source`` once and record the run; never raises for a provider failure."""
    return source_sync_report(source=source, trigger=trigger, dry_run=dry_run, progress=progress).run


def source_sync_report(
    *, source: ProviderSource, trigger: str, dry_run: bool = False, progress: Progress | None = None
) -> SyncReport:
    """``source_sync``, returning the names of the models added, updated, made unavailable and skipped.

    Not one ``@transaction.atomic``: the run row is committed first (so a run in progress is
    visible), the registry is written in one inner transaction, and the outcome is recorded after
    it, whether it committed or rolled back. Call it inside ``registry.access.audit.system_actor``.
    """
    run = DiscoveryRun.objects.create(source=source, trigger=trigger[:20], dry_run=dry_run)
    started = time.monotonic()
    outcome = _discover(run, dry_run=dry_run, progress=progress)
    finished = timezone.now()
    run.status = outcome.status
    # A provider's error may quote the URL it called, and a base URL may carry a key (?key=, user:pw@).
    outcome.error = redact_text(outcome.error) if outcome.error else outcome.error
    run.error_message = outcome.error
    run.warnings = [redact_text(warning) for warning in outcome.warnings]
    run.finished_at = finished
    names = _changed_names(outcome.plan)
    if outcome.plan is not None:
        run.models_seen = outcome.plan.seen
        run.models_added = len(names["added"])
        run.models_updated = len(names["updated"])
        run.models_unavailable = len(names["unavailable"])
        run.models_skipped = len(names["skipped"])
        run.changes = {kind: names[kind][:CHANGES_NAMES_MAX] for kind in CHANGE_KINDS}
    run.save(
        update_fields=[
            "status",
            "error_message",
            "finished_at",
            "models_seen",
            "models_added",
            "models_updated",
            "models_unavailable",
            "models_skipped",
            "changes",
            "warnings",
        ]
    )
    if not dry_run and outcome.status != RunStatus.SKIPPED:
        # .update(): bookkeeping the ops alerts read, not a configuration change to audit.
        ProviderSource.objects.filter(pk=source.pk).update(
            last_run_at=finished,
            last_status=outcome.status,
            last_error=outcome.error,
            consecutive_failures=0 if outcome.status == RunStatus.SUCCEEDED else F("consecutive_failures") + 1,
        )
    metrics.discovery_finished(source=source.name, status=outcome.status, duration_seconds=time.monotonic() - started)
    return SyncReport(
        run,
        added=names["added"],
        updated=names["updated"],
        unavailable=names["unavailable"],
        skipped=names["skipped"],
    )


def _changed_names(plan: SyncPlan | None) -> dict[str, list[str]]:
    """The sorted names behind a run's counts; a model added in this run is not also "updated"."""
    if plan is None:
        return {kind: [] for kind in CHANGE_KINDS}
    return {
        "added": sorted(plan.added),
        "updated": sorted(plan.updated - plan.added),
        "unavailable": sorted(plan.unavailable),
        "skipped": sorted(plan.skipped),
    }
