"""Applying a registry file: the difference with the catalog (the plan), then that difference, in one transaction.

``registry_plan`` validates the document (``registry.catalog.registry_validation``) and compares it with the
catalog, object by object and field by field, reading the catalog in a fixed number of queries. Each
change of the plan is applied through the catalog's services, so that it is audited (one entry per
change, with the caller's actor) and owned by the operator (``set_by=operator``, ``operator_fields``),
which discovery never overwrites. A second apply of the same file finds nothing to change.

What the file leaves out stays as it is: a model absent from the file, a section absent from a
model, a key absent from a model's entry. With ``prune``, absent objects are deleted: models (within
the file's ``scope``), a listed model's capabilities, parameters, endpoints and prices that its
sections do not list, and the capability rules a ``capability_rules`` section does not list.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, Final

from django.db import transaction

from registry.catalog import services
from registry.catalog.credentials import redact_url, url_credentials
from registry.catalog.prices import price_delete, price_set
from registry.catalog.registry_file import (
    REQUIRED_TO_CREATE,
    RegistryFileInvalid,
    clear_headers,
    decimal_text,
    moment_text,
    secret_header_names,
)
from registry.catalog.registry_validation import EndpointSpec, ModelSpec, RegistryFile, registry_file_validate
from registry.catalog.rules import capability_rule_delete, capability_rule_set
from registry.models import CapabilityMetric, ModelEndpoint, RegisteredModel, SetBy

# The table (Django model name) each kind of change writes: the console asks for its permissions.
KIND_MODELS: Final = {
    "model": "registeredmodel",
    "capability": "modelcapability",
    "parameter": "modelparameter",
    "endpoint": "modelendpoint",
    "price": "modelprice",
    "capability_rule": "capabilitymetric",
}
_VERBS: Final = {"create": "add", "update": "change", "delete": "delete"}


def shown(value: Any) -> str:
    """A value as the diff prints it: JSON, with moments and prices as the file writes them."""
    if isinstance(value, datetime):
        return str(moment_text(value))
    if isinstance(value, Decimal):
        return decimal_text(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@dataclass(frozen=True)
class FieldChange:
    name: str
    old: str | None  # None: the object is new
    new: str | None  # None: the object goes


@dataclass(frozen=True)
class Change:
    """One object created, updated or deleted, with its fields' old and new values (as shown)."""

    action: str  # create, update, delete
    kind: str  # one of KIND_MODELS
    target: str  # "gpt-4o", "gpt-4o: code", "rule code"
    fields: tuple[FieldChange, ...] = ()
    run: Callable[[], object] = field(default=lambda: None, compare=False, repr=False)

    @property
    def permission(self) -> str:
        """The Django permission the change needs (``registry.change_modelcapability``)."""
        return f"registry.{_VERBS[self.action]}_{KIND_MODELS[self.kind]}"

    def line(self) -> str:
        return f"{ {'create': '+', 'update': '~', 'delete': '-'}[self.action] } {self.action} {self.kind} {self.target}"


@dataclass
class Plan:
    """What applying a file changes (``changes``), and what it cannot do for the operator (``warnings``)."""

    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    applied: bool = False

    @property
    def fingerprint(self) -> str:
        """The changes' digest: a confirmation is for the diff the operator saw, not for a later one."""
        text = json.dumps(
            [[c.action, c.kind, c.target, [[f.name, f.old, f.new] for f in c.fields]] for c in self.changes]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def counts(self) -> dict[str, int]:
        return {action: sum(1 for c in self.changes if c.action == action) for action in ("create", "update", "delete")}

    def text(self) -> str:
        """The diff as the command prints it."""
        lines: list[str] = []
        for change in self.changes:
            lines.append(change.line())
            lines.extend(
                f"    {f.name}: {f.new}" if f.old is None else f"    {f.name}: {f.old} -> {f.new}"
                for f in change.fields
            )
        lines.extend(f"! {warning}" for warning in self.warnings)
        if not self.changes:
            lines.append("No changes: the registry already matches the file.")
        else:
            counts = self.counts()
            lines.append(f"{counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete.")
        return "\n".join(lines)


def _on_model(holder: list[RegisteredModel], service: Callable[..., object], **values: Any) -> Callable[[], object]:
    """``service`` called with the model once it exists (a model the same apply creates has none at plan time)."""
    return lambda: service(model=holder[0], **values)


class PlanStale(Exception):
    """The catalog changed between the diff the operator confirmed and the apply."""


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(name, shown(old.get(name)), shown(value)) for name, value in new.items() if old.get(name) != value
    )


def _created(values: dict[str, Any]) -> tuple[FieldChange, ...]:
    return tuple(FieldChange(name, None, shown(value)) for name, value in values.items())


class _Planner:
    def __init__(self, document: RegistryFile, *, prune: bool) -> None:
        self.document = document
        self.prune = prune
        self.plan = Plan()
        self.errors: list[str] = []

    def add(
        self, action: str, kind: str, target: str, run: Callable[[], object], fields: tuple[FieldChange, ...] = ()
    ) -> None:
        self.plan.changes.append(Change(action, kind, target, fields, run))

    def build(self) -> Plan:
        names = [spec.name for spec in self.document.models]
        stored = {
            model.name: model
            for model in RegisteredModel.objects.filter(name__in=names).prefetch_related(
                "capabilities", "parameters", "endpoints", "prices"
            )
        }
        for spec in self.document.models:
            self.model(spec, stored.get(spec.name))
        if self.prune:
            scope = RegisteredModel.objects.exclude(name__in=names)
            if self.document.scope_providers is not None:
                scope = scope.filter(provider__in=self.document.scope_providers)
            for model in scope.order_by("name"):
                self.add("delete", "model", model.name, partial(services.model_delete, model=model))
        if self.document.rules is not None:
            self.rules(self.document.rules)
        if self.errors:
            raise RegistryFileInvalid(self.errors)
        return self.plan

    def model(self, spec: ModelSpec, model: RegisteredModel | None) -> None:
        holder: list[RegisteredModel] = [] if model is None else [model]
        if model is None:
            missing = [key for key in REQUIRED_TO_CREATE if key not in spec.fields]
            if missing:
                self.errors += [f"{spec.path}.{key}: required for a new model" for key in missing]
                return
            values = {"name": spec.name, **spec.fields}
            self.add(
                "create",
                "model",
                spec.name,
                lambda: holder.append(services.model_register(fields=values, operator_owned=True)),
                _created(values),
            )
        else:
            changed = _field_changes({key: getattr(model, key) for key in spec.fields}, spec.fields)
            if changed:
                fields = {item.name: spec.fields[item.name] for item in changed}
                self.add(
                    "update", "model", spec.name, lambda: services.model_update(model=holder[0], fields=fields), changed
                )
        if spec.capabilities is not None:
            self.capabilities(spec, model, holder)
        if spec.parameters is not None:
            self.parameters(spec, model, holder)
        if spec.endpoints is not None:
            self.endpoints(spec, model, holder)
        if spec.prices is not None:
            self.prices(spec, model, holder)

    def capabilities(self, spec: ModelSpec, model: RegisteredModel | None, holder: list[RegisteredModel]) -> None:
        assert spec.capabilities is not None
        rows = {row.capability: row for row in model.capabilities.all()} if model else {}
        for name, (score, given_note) in spec.capabilities.items():
            row = rows.get(name)
            # capability_set stores an empty note as "operator": compared as stored, so a rerun is a no-op.
            note = None if given_note is None else given_note or "operator"
            wanted: dict[str, Any] = {"score": score} if note is None else {"score": score, "note": note}
            target = f"{spec.name}: {name}"

            def run(name: str = name, score: float = score, note: str | None = note) -> object:
                return services.capability_set(model=holder[0], capability=name, score=score, evidence=note or "")

            if row is None:
                self.add("create", "capability", target, run, _created(wanted))
            elif changed := _field_changes({"score": row.capability_score, "note": row.evidence or "operator"}, wanted):
                self.add("update", "capability", target, run, changed)
        if self.prune:
            for name in sorted(set(rows) - set(spec.capabilities)):
                self.add(
                    "delete",
                    "capability",
                    f"{spec.name}: {name}",
                    _on_model(holder, services.capability_remove, capability=name),
                )

    def parameters(self, spec: ModelSpec, model: RegisteredModel | None, holder: list[RegisteredModel]) -> None:
        assert spec.parameters is not None
        rows = {row.parameter_name: row for row in model.parameters.all()} if model else {}
        for name, values in spec.parameters.items():
            row = rows.get(name)
            target = f"{spec.name}: {name}"

            def run(name: str = name, values: dict[str, Any] = values) -> object:
                return services.parameter_set(model=holder[0], parameter_name=name, **values)

            if row is None:
                self.add("create", "parameter", target, run, _created(values))
            elif changed := _field_changes({key: getattr(row, key) for key in values}, values):
                self.add("update", "parameter", target, run, changed)
        if self.prune:
            for name in sorted(set(rows) - set(spec.parameters)):
                self.add(
                    "delete",
                    "parameter",
                    f"{spec.name}: {name}",
                    _on_model(holder, services.parameter_remove, parameter_name=name),
                )

    def endpoints(self, spec: ModelSpec, model: RegisteredModel | None, holder: list[RegisteredModel]) -> None:
        assert spec.endpoints is not None
        # Matched by type and URL (as an export writes it: credentials in a stored URL redacted).
        unmatched: list[ModelEndpoint] = list(model.endpoints.all()) if model else []
        for index, wanted in enumerate(spec.endpoints):
            path = f"{spec.path}.endpoints[{index}]"
            row = next(
                (row for row in unmatched if (row.endpoint_type, redact_url(row.endpoint_url)) == wanted.key), None
            )
            target = f"{spec.name}: {wanted.endpoint_type} endpoint {wanted.endpoint_url or '(no URL)'}"
            if wanted.managed_by is not None:
                # Discovery's endpoint (here, or in the registry the file comes from): its source writes it, and
                # a copy made by hand would point this registry at the other's hosts.
                if row is not None:
                    unmatched.remove(row)
                continue
            if row is None:
                # Validation let it through as an export's redaction: it can only name a stored endpoint.
                if wanted.endpoint_url is not None and url_credentials(wanted.endpoint_url):
                    self.errors.append(f"{path}.endpoint_url: a redacted URL that matches no stored endpoint")
                    continue
                values = {
                    "endpoint_type": wanted.endpoint_type,
                    "endpoint_url": wanted.endpoint_url,
                    "auth_type": wanted.auth_type,
                }
                self.add(
                    "create",
                    "endpoint",
                    target,
                    _on_model(holder, services.endpoint_create, headers=wanted.headers or None, **values),
                    _created({**values, "headers": wanted.headers or {}}),
                )
                self.credentials_missing(target, wanted, None)
                continue
            unmatched.remove(row)
            old = {"auth_type": row.auth_type, "headers": clear_headers(row)}
            new: dict[str, Any] = {"auth_type": wanted.auth_type} if wanted.auth_type_given else {}
            if wanted.headers is not None:
                new["headers"] = wanted.headers
            if changed := _field_changes(old, new):
                self.add("update", "endpoint", target, self.endpoint_update(row, new), changed)
            self.credentials_missing(target, wanted, row)
        if self.prune:
            # Discovery's endpoints are its own to remove (it does when a source stops listing the model).
            for row in (row for row in unmatched if row.source_id is None):
                target = f"{spec.name}: {row.endpoint_type} endpoint {redact_url(row.endpoint_url) or '(no URL)'}"
                self.add("delete", "endpoint", target, partial(services.endpoint_delete, endpoint=row))

    @staticmethod
    def endpoint_update(row: ModelEndpoint, new: dict[str, Any]) -> Callable[[], object]:
        def run() -> object:
            values = dict(new)
            if "headers" in values:
                # Credential-like headers stored in clear (the admin's form allows it) are kept: given
                # back with the new clear headers, they move to the encrypted side instead of being lost.
                stored = {name: value for name, value in (row.headers or {}).items() if name not in clear_headers(row)}
                values["headers"] = {**values["headers"], **stored} or None
            return services.endpoint_update(endpoint=row, **values)

        return run

    def credentials_missing(self, target: str, wanted: EndpointSpec, row: ModelEndpoint | None) -> None:
        missing = []
        if wanted.api_key and not (row is not None and row.api_key):
            missing.append("its API key")
        stored = set(secret_header_names(row)) if row is not None else set()
        missing += [f"header {name}" for name in wanted.secret_headers if name not in stored]
        if missing:
            self.plan.warnings.append(
                f"{target}: the file references {', '.join(missing)}, not stored here: a file never carries "
                "secrets; set them in the console or the API"
            )

    def prices(self, spec: ModelSpec, model: RegisteredModel | None, holder: list[RegisteredModel]) -> None:
        assert spec.prices is not None
        rows = {row.effective_from: row for row in model.prices.all()} if model else {}
        for wanted in spec.prices:
            row = rows.get(wanted.effective_from)
            values = {"input_per_mtok": wanted.input_per_mtok, "output_per_mtok": wanted.output_per_mtok}
            target = f"{spec.name}: from {moment_text(wanted.effective_from)}"

            def run(wanted: Any = wanted) -> object:
                return price_set(
                    model=holder[0],
                    input_per_mtok=wanted.input_per_mtok,
                    output_per_mtok=wanted.output_per_mtok,
                    effective_from=wanted.effective_from,
                    set_by=SetBy.OPERATOR,
                )

            if row is None:
                self.add("create", "price", target, run, _created(values))
            elif changed := _field_changes({key: getattr(row, key) for key in values}, values):
                self.add("update", "price", target, run, changed)
        if self.prune:
            wanted_moments = {price.effective_from for price in spec.prices}
            for moment, row in sorted(rows.items()):
                if moment not in wanted_moments:
                    self.add(
                        "delete",
                        "price",
                        f"{spec.name}: from {moment_text(moment)}",
                        partial(price_delete, price=row),
                    )

    def rules(self, rules: dict[str, dict[str, Any]]) -> None:
        stored = {rule.capability: rule for rule in CapabilityMetric.objects.all()}
        for capability, values in rules.items():
            rule = stored.get(capability)

            def run(capability: str = capability, values: dict[str, Any] = values) -> object:
                return capability_rule_set(capability=capability, **values)

            if rule is None:
                self.add("create", "capability_rule", capability, run, _created(values))
            elif changed := _field_changes({key: getattr(rule, key) for key in values}, values):
                self.add("update", "capability_rule", capability, run, changed)
        if self.prune:
            for capability in sorted(set(stored) - set(rules)):
                self.add(
                    "delete",
                    "capability_rule",
                    capability,
                    partial(capability_rule_delete, capability=capability),
                )


def registry_plan(document: Any, *, prune: bool = False) -> Plan:
    """What applying ``document`` would change (reads only); raises ``RegistryFileInvalid``."""
    return _Planner(registry_file_validate(document), prune=prune).build()


@transaction.atomic
def registry_apply(document: Any, *, prune: bool = False, confirmed: str | None = None) -> Plan:
    """Apply ``document``: all of its changes or, on any error, none.

    ``confirmed`` is the fingerprint of the diff the operator saw: when the catalog changed since,
    the plan differs and ``PlanStale`` is raised before anything is written.
    """
    plan = registry_plan(document, prune=prune)
    if confirmed is not None and confirmed != plan.fingerprint:
        raise PlanStale("The registry changed since the diff was shown: review the new diff before applying.")
    for change in plan.changes:
        change.run()
    plan.applied = True
    return plan
