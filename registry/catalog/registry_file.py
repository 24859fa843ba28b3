"""The registry as a file (docs/registry-file.md): the versioned document, its text, and its export.

A document is ``{"version": 1, "models": [...], "capability_rules": [...]}`` written as YAML or JSON.
Export reads the catalog in a fixed number of queries. ``registry.catalog.registry_validation``
checks a whole document (every error with its path, so that a file is refused as a whole), and
``registry.catalog.registry_apply`` compares it with the catalog and applies the difference.

Secrets never leave and never enter through a file: an endpoint's API key and secret headers are
exported as references (``credentials: {api_key: stored, secret_headers: [Authorization]}``), and a
file that carries a value where a reference belongs is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import yaml
from django.db.models import Prefetch
from django.utils import timezone

from registry.catalog.credentials import redact_url
from registry.catalog.services import is_secret_header
from registry.models import (
    CapabilityMetric,
    ModelCapability,
    ModelEndpoint,
    ModelParameter,
    ModelPrice,
    RegisteredModel,
)

FORMAT_VERSION: Final = 1
FORMATS: Final = ("yaml", "json")
# What stands in a file for a stored secret: apply keeps the stored value, and writes none.
STORED: Final = "stored"

# The model fields a file carries, in the order they are written. The price fields are not among them:
# they follow the dated prices (``prices``), as they do everywhere else (registry.catalog.prices).
MODEL_FIELDS: Final = (
    "display_name",
    "provider",
    "model_type",
    "version",
    "description",
    "status",
    "context_window",
    "details",
)
REQUIRED_TO_CREATE: Final = ("display_name", "provider", "model_type")
MODEL_SECTIONS: Final = ("capabilities", "parameters", "endpoints", "prices")
EVIDENCE_KEYS: Final = (
    "source",
    "note",
    "metric_name",
    "task_category",
    "sample_size",
    "window_start",
    "window_end",
    "evaluated_at",
)
RULE_KEYS: Final = ("metric_name", "task_category", "window_days", "min_samples", "stale_after_days", "enabled")
TOP_LEVEL_KEYS: Final = ("version", "exported_at", "scope", "models", "capability_rules")


class RegistryFileInvalid(Exception):
    """A file that cannot be applied, with every error found, each prefixed by its path in the document."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors[:3]) + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""))
        self.errors = list(errors)


# -- text --------------------------------------------------------------------------------------------------------

# libyaml's safe loader and dumper where the build has them (the same safe subset, several times faster).
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def registry_file_load(text: str | bytes) -> Any:
    """The document in ``text``, YAML or JSON (told apart by the first character); raises ``RegistryFileInvalid``."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RegistryFileInvalid([f"file: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise RegistryFileInvalid([f"file: not valid JSON ({exc})"]) from exc
    try:
        # An alias repeats a node by reference: a few lines can stand for an exponential tree ("billion
        # laughs"), so a file with aliases is refused before it is built. Anchors need "&": rare in text.
        if "&" in text and any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=_Loader)):
            raise RegistryFileInvalid(["file: YAML aliases (*name) are not accepted; write each value out"])
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader: CSafeLoader or SafeLoader)
    except yaml.YAMLError as exc:
        raise RegistryFileInvalid([f"file: not valid YAML ({exc})"]) from exc
    except RecursionError as exc:
        raise RegistryFileInvalid(["file: nested too deeply"]) from exc


def registry_file_dump(document: Mapping[str, Any], *, file_format: str) -> str:
    """``document`` as YAML (block style, keys in the document's order) or JSON (indented)."""
    if file_format == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    text: str = yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120
    )
    return text


# -- export ------------------------------------------------------------------------------------------------------


def moment_text(value: datetime | None) -> str | None:
    """A moment as the file writes it: ISO 8601 in UTC with a ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def decimal_text(value: Decimal) -> str:
    """A price as the file writes it: a string (no binary float on the way), without trailing zeros."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def clear_headers(endpoint: ModelEndpoint) -> dict[str, str]:
    # The admin's endpoint form stores what it is given in ``headers``, an Authorization header included:
    # a credential-like name there is treated as a secret, never written out.
    return {name: value for name, value in (endpoint.headers or {}).items() if not is_secret_header(name)}


def secret_header_names(endpoint: ModelEndpoint) -> list[str]:
    names = set(endpoint.secret_headers or {}) | {name for name in endpoint.headers or {} if is_secret_header(name)}
    return sorted(names)


def endpoint_entry(endpoint: ModelEndpoint) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "endpoint_type": endpoint.endpoint_type,
        "endpoint_url": redact_url(endpoint.endpoint_url),
        "auth_type": endpoint.auth_type,
        "headers": clear_headers(endpoint),
    }
    if endpoint.source is not None:
        # Discovery's: apply leaves it to the source that manages it (in the registry applied to, too).
        entry["managed_by"] = endpoint.source.name
    credentials: dict[str, Any] = {}
    if endpoint.api_key:
        credentials["api_key"] = STORED
    if names := secret_header_names(endpoint):
        credentials["secret_headers"] = names
    if credentials:
        entry["credentials"] = credentials
    return entry


def capability_entry(row: ModelCapability) -> dict[str, Any]:
    evidence: dict[str, Any] = {"source": row.evidence_source, "note": row.evidence}
    facts = {
        "metric_name": row.metric_name,
        "task_category": row.task_category,
        "sample_size": row.sample_size,
        "window_start": moment_text(row.window_start),
        "window_end": moment_text(row.window_end),
        "evaluated_at": moment_text(row.evaluated_at),
    }
    evidence.update({key: value for key, value in facts.items() if value is not None})
    return {"score": row.capability_score, "evidence": evidence}


def parameter_entry(row: ModelParameter) -> dict[str, Any]:
    return {"default": row.default_value, "min": row.min_value, "max": row.max_value, "description": row.description}


def price_entry(row: ModelPrice) -> dict[str, Any]:
    return {
        "effective_from": moment_text(row.effective_from),
        "input_per_mtok": decimal_text(row.input_per_mtok),
        "output_per_mtok": decimal_text(row.output_per_mtok),
    }


def model_entry(model: RegisteredModel) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": model.name}
    entry.update({name: getattr(model, name) for name in MODEL_FIELDS})
    entry["capabilities"] = {row.capability: capability_entry(row) for row in model.capabilities.all()}
    entry["parameters"] = {row.parameter_name: parameter_entry(row) for row in model.parameters.all()}
    entry["endpoints"] = [endpoint_entry(row) for row in model.endpoints.all()]
    entry["prices"] = [price_entry(row) for row in sorted(model.prices.all(), key=lambda row: row.effective_from)]
    return entry


def rule_entry(rule: CapabilityMetric) -> dict[str, Any]:
    return {"capability": rule.capability, **{key: getattr(rule, key) for key in RULE_KEYS}}


def registry_export(*, providers: Sequence[str] = (), now: datetime | None = None) -> dict[str, Any]:
    """The registry (or the models of ``providers``) as a document, in a fixed number of queries."""
    models = RegisteredModel.objects.order_by("name").prefetch_related(
        "capabilities", "parameters", Prefetch("endpoints", ModelEndpoint.objects.select_related("source")), "prices"
    )
    document: dict[str, Any] = {"version": FORMAT_VERSION, "exported_at": moment_text(now or timezone.now())}
    if providers:
        models = models.filter(provider__in=providers)
        # A partial file says so: apply --prune then removes only models of these providers.
        document["scope"] = {"providers": sorted(set(providers))}
    document["models"] = [model_entry(model) for model in models.iterator(chunk_size=500)]
    document["capability_rules"] = [rule_entry(rule) for rule in CapabilityMetric.objects.order_by("capability")]
    return document
