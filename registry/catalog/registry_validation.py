"""Validation of a registry file (docs/registry-file.md): the whole document checked, every error with its path.

Reads nothing from the database: ``registry_file_validate`` returns what the document asks for,
normalized (``RegistryFile``), or raises ``RegistryFileInvalid`` with every error found
(``models[3].capabilities.code.score: must be between 0 and 1``). ``registry.catalog.registry_apply``
compares the result with the catalog. The rules a file shares with the API (a model's name, the
platform overrides, names of capabilities and parameters, storable text) are ``registry.catalog.validation``'s,
with the API's messages.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from registry.catalog.credentials import redact_text, url_credentials
from registry.catalog.registry_file import (
    EVIDENCE_KEYS,
    FORMAT_VERSION,
    MODEL_FIELDS,
    MODEL_SECTIONS,
    RULE_KEYS,
    STORED,
    TOP_LEVEL_KEYS,
    RegistryFileInvalid,
)
from registry.catalog.services import is_secret_header
from registry.catalog.validation import (
    MAX_JSON_BYTES,
    UNSTORABLE_TEXT,
    is_capability_name,
    is_parameter_name,
    is_storable_text,
    model_name_problem,
    platform_override_problems,
)
from registry.models import PLATFORM_DETAILS_KEY, AuthType, EndpointType, ModelStatus, ModelType, Provider

MAX_DAYS: Final = 3650
MAX_INT: Final = 2**31 - 1
MAX_PRICE: Final = Decimal("999999.999999")
# Deeper documents are refused before they are walked: no check may recurse past Python's limit.
MAX_DEPTH: Final = 32


@dataclass
class EndpointSpec:
    endpoint_type: str
    endpoint_url: str | None
    auth_type: str | None
    headers: dict[str, str] | None  # None: not given (left as stored)
    api_key: bool  # the file references a stored API key
    secret_headers: list[str]
    auth_type_given: bool = True
    managed_by: str | None = None  # the provider source that manages it (discovery's, left alone by apply)

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.endpoint_type, self.endpoint_url)


@dataclass
class PriceSpec:
    effective_from: datetime
    input_per_mtok: Decimal
    output_per_mtok: Decimal


@dataclass
class ModelSpec:
    """One model of a validated file: the fields it gives, and each section it gives (None: not given)."""

    path: str
    name: str
    fields: dict[str, Any]
    capabilities: dict[str, tuple[float, str | None]] | None = None
    parameters: dict[str, dict[str, Any]] | None = None
    endpoints: list[EndpointSpec] | None = None
    prices: list[PriceSpec] | None = None


@dataclass
class RegistryFile:
    """A validated document."""

    models: list[ModelSpec]
    rules: dict[str, dict[str, Any]] | None
    scope_providers: list[str] | None = None
    errors: list[str] = field(default_factory=list)


class _Checker:
    """Collects errors with their paths; each check returns the normalized value, or None after an error."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def mapping(self, value: Any, path: str, allowed: Sequence[str] | None = None) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, not {_type_name(value)}")
            return None
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.error(f"{path}.{key}", f"unknown field (known: {', '.join(allowed)})")
        return value

    def text(self, value: Any, path: str, *, max_length: int, nullable: bool = False, blank: bool = True) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            self.error(path, f"must be text, not {_type_name(value)}")
            return None
        if len(value) > max_length:
            self.error(path, f"at most {max_length} characters ({len(value)} given)")
        elif not blank and not value.strip():
            self.error(path, "may not be blank")
        return value

    def choice(self, value: Any, path: str, choices: Sequence[str], *, nullable: bool = False) -> str | None:
        if value is None and nullable:
            return None
        if value not in choices:
            self.error(path, f"must be one of {', '.join(choices)} (not {value!r})")
            return None
        return str(value)

    def integer(self, value: Any, path: str, *, minimum: int, maximum: int, nullable: bool = False) -> int | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"must be a whole number, not {_type_name(value)}")
            return None
        if not minimum <= value <= maximum:
            self.error(path, f"must be between {minimum} and {maximum}")
            return None
        return value

    def number(self, value: Any, path: str, *, nullable: bool = False) -> float | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.error(path, f"must be a number, not {_type_name(value)}")
            return None
        return float(value)

    def price(self, value: Any, path: str) -> Decimal | None:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(path, f'must be a decimal number (as text, "0.15"), not {_type_name(value)}')
            return None
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            self.error(path, f"not a decimal number: {value!r}")
            return None
        if not amount.is_finite() or amount < 0 or amount > MAX_PRICE:
            self.error(path, f"must be between 0 and {MAX_PRICE}")
            return None
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -6 and amount != amount.quantize(Decimal("0.000001")):
            self.error(path, "at most 6 decimal places")
            return None
        return amount

    def moment(self, value: Any, path: str) -> datetime | None:
        # YAML reads an unquoted timestamp as a datetime, and an unquoted date as a date.
        moment = value if isinstance(value, datetime) else parse_datetime(value) if isinstance(value, str) else None
        if moment is None or (isinstance(value, date) and not isinstance(value, datetime)):
            self.error(path, f"must be a date and time with its time zone, like 2026-01-31T00:00:00Z (not {value!r})")
            return None
        if timezone.is_naive(moment):
            self.error(path, "needs a time zone (Z or +hh:mm): a moment without one is ambiguous")
            return None
        return moment


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _storable_text_errors(value: Any, path: str, checker: _Checker) -> None:
    """NUL characters, unpaired surrogates and non-finite numbers anywhere (keys too): PostgreSQL cannot store them.

    (YAML's ``.nan`` and ``.inf``, JSON's ``NaN``: JSON columns would refuse them with an error, not a message.)
    """
    if isinstance(value, float) and not math.isfinite(value):
        checker.error(path, "not a finite number")
    elif isinstance(value, str):
        if not is_storable_text(value):
            checker.error(path, UNSTORABLE_TEXT)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable_text_errors(key, f"{path}.{key!s}"[:200], checker)
            _storable_text_errors(item, f"{path}.{key!s}", checker)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _storable_text_errors(item, f"{path}[{index}]", checker)


def _model_name(checker: _Checker, value: Any, path: str) -> str | None:
    """A name as the API takes it (``model_name_problem``): a path segment of the API."""
    name = checker.text(value, path, max_length=100, blank=False)
    if name is None:
        return None
    problem = model_name_problem(name)
    if problem is not None:
        checker.error(path, problem)
        return None
    return name


def _details(checker: _Checker, value: Any, path: str) -> dict[str, Any] | None:
    details = checker.mapping({} if value is None else value, path)
    if details is None:
        return None
    if len(json.dumps(details, separators=(",", ":"), default=str).encode()) > MAX_JSON_BYTES:
        checker.error(path, f"at most {MAX_JSON_BYTES // 1024} KiB as JSON")
    # The operator's platform-profile overrides (docs/platform.md), checked as the API checks them.
    for key, problem in platform_override_problems(details.get(PLATFORM_DETAILS_KEY)).items():
        checker.error(f"{path}.{PLATFORM_DETAILS_KEY}" + ("" if key is None else f".{key}"), problem)
    return details


def _capabilities(checker: _Checker, value: Any, path: str) -> dict[str, tuple[float, str | None]] | None:
    found = checker.mapping(value, path)
    if found is None:
        return None
    capabilities: dict[str, tuple[float, str | None]] = {}
    for name, item in found.items():
        here = f"{path}.{name}"
        if not is_capability_name(name):
            checker.error(
                here, "a capability name is a lower-case slug (a-z, 0-9, '-', '_'; at most 50), as routers use it"
            )
            continue
        entry = checker.mapping(item, here, ("score", "evidence"))
        if entry is None:
            continue
        if "score" not in entry:
            checker.error(f"{here}.score", "required")
            continue
        score = checker.number(entry["score"], f"{here}.score")
        if score is not None and not 0 <= score <= 1:
            checker.error(f"{here}.score", "must be between 0 and 1")
            continue
        note = None
        if entry.get("evidence") is not None:
            evidence = checker.mapping(entry["evidence"], f"{here}.evidence", EVIDENCE_KEYS)
            if evidence is not None and "note" in evidence:
                note = checker.text(evidence["note"], f"{here}.evidence.note", max_length=300)
        if score is not None:
            capabilities[name] = (score, note)
    return capabilities


def _parameters(checker: _Checker, value: Any, path: str) -> dict[str, dict[str, Any]] | None:
    found = checker.mapping(value, path)
    if found is None:
        return None
    parameters: dict[str, dict[str, Any]] = {}
    for name, item in found.items():
        here = f"{path}.{name}"
        if not is_parameter_name(name):
            checker.error(here, "a parameter name is letters, digits and '_', '.', ':', '-' (at most 100)")
            continue
        entry = checker.mapping(item, here, ("default", "min", "max", "description"))
        if entry is None:
            continue
        if "default" not in entry:
            checker.error(f"{here}.default", "required (null is a value: write it out)")
            continue
        low = checker.number(entry.get("min"), f"{here}.min", nullable=True)
        high = checker.number(entry.get("max"), f"{here}.max", nullable=True)
        description = checker.text(entry.get("description"), f"{here}.description", max_length=2000, nullable=True)
        if low is not None and high is not None and low > high:
            checker.error(f"{here}.min", f"greater than max ({entry['min']} > {entry['max']})")
            continue
        default = entry["default"]
        numeric = isinstance(default, int | float) and not isinstance(default, bool)
        if numeric and ((low is not None and default < low) or (high is not None and default > high)):
            checker.error(f"{here}.default", "outside min..max")
            continue
        parameters[name] = {
            "default_value": default,
            "min_value": entry.get("min"),
            "max_value": entry.get("max"),
            "description": description,
        }
    return parameters


def _endpoint(checker: _Checker, value: Any, path: str) -> EndpointSpec | None:
    keys = ("endpoint_type", "endpoint_url", "auth_type", "headers", "credentials", "managed_by")
    entry = checker.mapping(value, path, keys)
    if entry is None:
        return None
    errors_before = len(checker.errors)
    kind = checker.choice(entry.get("endpoint_type"), f"{path}.endpoint_type", EndpointType.values)
    url = checker.text(entry.get("endpoint_url"), f"{path}.endpoint_url", max_length=255, nullable=True)
    if url is not None:
        if not url.startswith(("http://", "https://")) or any(char.isspace() for char in url):
            checker.error(f"{path}.endpoint_url", "must be an http(s) URL without spaces")
        # A credential in a URL is refused, unless it is an export's redaction ("***"): that one
        # references the stored endpoint whose URL it hides (apply matches it, and writes no secret).
        elif url_credentials(url) and redact_text(url) != url:
            checker.error(
                f"{path}.endpoint_url",
                f"carries a credential ({', '.join(url_credentials(url))}): set it in the console or the API",
            )
    auth_type = checker.choice(entry.get("auth_type"), f"{path}.auth_type", AuthType.values, nullable=True)
    headers: dict[str, str] | None = None
    if entry.get("headers") is not None:
        given = checker.mapping(entry["headers"], f"{path}.headers")
        headers = {}
        for name, header in (given or {}).items():
            here = f"{path}.headers.{name}"
            if is_secret_header(str(name)):
                checker.error(
                    here,
                    "a credential header: its value is never read from a file (list its name under "
                    "credentials.secret_headers and set it in the console or the API)",
                )
            elif checker.text(header, here, max_length=8192) is not None:
                headers[str(name)] = header
    api_key, secret_headers = False, []
    if entry.get("credentials") is not None:
        credentials = checker.mapping(entry["credentials"], f"{path}.credentials", ("api_key", "secret_headers"))
        if credentials is not None:
            if credentials.get("api_key") not in (None, STORED):
                checker.error(
                    f"{path}.credentials.api_key",
                    f"secrets are never read from a file: write {STORED!r} (keeps the stored key) or leave it out",
                )
            api_key = credentials.get("api_key") == STORED
            names = credentials.get("secret_headers") or []
            if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
                checker.error(
                    f"{path}.credentials.secret_headers", "a list of header names (values are never read from a file)"
                )
            else:
                secret_headers = names
    managed_by = checker.text(entry.get("managed_by"), f"{path}.managed_by", max_length=100, nullable=True)
    if len(checker.errors) > errors_before or kind is None:
        return None
    return EndpointSpec(
        managed_by=managed_by,
        endpoint_type=kind,
        endpoint_url=url,
        auth_type=auth_type,
        headers=headers,
        api_key=api_key,
        secret_headers=secret_headers,
        auth_type_given="auth_type" in entry,
    )


def _prices(checker: _Checker, value: Any, path: str) -> list[PriceSpec] | None:
    if not isinstance(value, list):
        checker.error(path, f"must be a list, not {_type_name(value)}")
        return None
    prices: list[PriceSpec] = []
    seen: dict[datetime, int] = {}
    for index, item in enumerate(value):
        here = f"{path}[{index}]"
        entry = checker.mapping(item, here, ("effective_from", "input_per_mtok", "output_per_mtok"))
        if entry is None:
            continue
        moment = checker.moment(entry.get("effective_from"), f"{here}.effective_from")
        low = checker.price(entry.get("input_per_mtok"), f"{here}.input_per_mtok")
        high = checker.price(entry.get("output_per_mtok"), f"{here}.output_per_mtok")
        if moment is not None and moment in seen:
            checker.error(f"{here}.effective_from", f"the same moment as {path}[{seen[moment]}]")
            continue
        if moment is not None and low is not None and high is not None:
            seen[moment] = index
            prices.append(PriceSpec(moment, low, high))
    return prices


def _model(checker: _Checker, value: Any, path: str) -> ModelSpec | None:
    entry = checker.mapping(value, path, ("name", *MODEL_FIELDS, *MODEL_SECTIONS))
    if entry is None:
        return None
    name = _model_name(checker, entry.get("name"), f"{path}.name")
    fields: dict[str, Any] = {}
    for key in MODEL_FIELDS:
        if key not in entry:
            continue
        given, here = entry[key], f"{path}.{key}"
        if key == "display_name":
            fields[key] = checker.text(given, here, max_length=200, blank=False)
        elif key in ("version", "description"):
            fields[key] = checker.text(given, here, max_length=50 if key == "version" else 10_000, nullable=True)
        elif key == "provider":
            fields[key] = checker.choice(given, here, Provider.values)
        elif key == "model_type":
            fields[key] = checker.choice(given, here, ModelType.values)
        elif key == "status":
            fields[key] = checker.choice(given, here, ModelStatus.values)
        elif key == "context_window":
            fields[key] = checker.integer(given, here, minimum=1, maximum=MAX_INT, nullable=True)
        elif key == "details":
            fields[key] = _details(checker, given, here) or {}
    spec = ModelSpec(path=path, name=name or "", fields=fields)
    if "capabilities" in entry:
        spec.capabilities = _capabilities(checker, entry["capabilities"], f"{path}.capabilities")
    if "parameters" in entry:
        spec.parameters = _parameters(checker, entry["parameters"], f"{path}.parameters")
    if "endpoints" in entry:
        spec.endpoints = _endpoints(checker, entry["endpoints"], f"{path}.endpoints")
    if "prices" in entry:
        spec.prices = _prices(checker, entry["prices"], f"{path}.prices")
    return spec if name is not None else None


def _endpoints(checker: _Checker, value: Any, path: str) -> list[EndpointSpec] | None:
    if not isinstance(value, list):
        checker.error(path, f"must be a list, not {_type_name(value)}")
        return None
    endpoints: list[EndpointSpec] = []
    seen: dict[tuple[str, str | None], int] = {}
    for index, item in enumerate(value):
        endpoint = _endpoint(checker, item, f"{path}[{index}]")
        if endpoint is None:
            continue
        if endpoint.key in seen:
            checker.error(f"{path}[{index}]", f"the same type and URL as {path}[{seen[endpoint.key]}]")
            continue
        seen[endpoint.key] = index
        endpoints.append(endpoint)
    return endpoints


def _rules(checker: _Checker, value: Any, path: str) -> dict[str, dict[str, Any]] | None:
    if not isinstance(value, list):
        checker.error(path, f"must be a list, not {_type_name(value)}")
        return None
    rules: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for index, item in enumerate(value):
        here = f"{path}[{index}]"
        entry = checker.mapping(item, here, ("capability", *RULE_KEYS))
        if entry is None:
            continue
        capability = entry.get("capability")
        if not is_capability_name(capability):
            checker.error(
                f"{here}.capability", "a capability name is a lower-case slug (a-z, 0-9, '-', '_'; at most 50)"
            )
            continue
        if capability in seen:
            checker.error(f"{here}.capability", f"duplicate of {path}[{seen[capability]}]")
            continue
        seen[capability] = index
        errors_before = len(checker.errors)
        rule = {
            "metric_name": checker.text(entry.get("metric_name"), f"{here}.metric_name", max_length=100, blank=False),
            "task_category": checker.text(
                entry.get("task_category"), f"{here}.task_category", max_length=100, nullable=True
            )
            or None,
            "window_days": checker.integer(
                entry.get("window_days", 30), f"{here}.window_days", minimum=1, maximum=MAX_DAYS
            ),
            "min_samples": checker.integer(
                entry.get("min_samples", 50), f"{here}.min_samples", minimum=1, maximum=MAX_INT
            ),
            "stale_after_days": checker.integer(
                entry.get("stale_after_days", 7), f"{here}.stale_after_days", minimum=1, maximum=MAX_DAYS
            ),
            "enabled": entry.get("enabled", True),
        }
        if not isinstance(rule["enabled"], bool):
            checker.error(f"{here}.enabled", f"must be true or false, not {_type_name(rule['enabled'])}")
        if len(checker.errors) == errors_before:
            rules[capability] = rule
    return rules


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether lists and mappings nest deeper than ``limit`` (iterative: a deep document cannot overflow it)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return False


def registry_file_validate(document: Any) -> RegistryFile:
    """The document checked as a whole (no query); raises ``RegistryFileInvalid`` with every error found."""
    checker = _Checker()
    if _deeper_than(document, MAX_DEPTH):
        raise RegistryFileInvalid([f"file: nested deeper than {MAX_DEPTH} levels"])
    top = checker.mapping(document, "file", TOP_LEVEL_KEYS)
    if top is None:
        raise RegistryFileInvalid(checker.errors)
    if top.get("version") != FORMAT_VERSION:
        checker.error(
            "version", f"must be {FORMAT_VERSION} (the format this registry reads), not {top.get('version')!r}"
        )
    for key, value in top.items():
        _storable_text_errors(value, str(key), checker)
    scope: list[str] | None = None
    if top.get("scope") is not None:
        given = checker.mapping(top["scope"], "scope", ("providers",))
        providers = (given or {}).get("providers")
        if not isinstance(providers, list) or not all(provider in Provider.values for provider in providers):
            checker.error("scope.providers", f"a list of providers ({', '.join(Provider.values)})")
        else:
            scope = providers
    models: list[ModelSpec] = []
    raw_models = top.get("models", [])
    if not isinstance(raw_models, list):
        checker.error("models", f"must be a list, not {_type_name(raw_models)}")
        raw_models = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw_models):
        spec = _model(checker, item, f"models[{index}]")
        if spec is None:
            continue
        if spec.name in seen:
            checker.error(f"models[{index}].name", f"{spec.name!r} is also models[{seen[spec.name]}]")
            continue
        seen[spec.name] = index
        if scope is not None and spec.fields.get("provider") not in (None, *scope):
            checker.error(f"models[{index}].provider", f"outside the file's scope ({', '.join(scope)})")
        models.append(spec)
    rules = _rules(checker, top["capability_rules"], "capability_rules") if "capability_rules" in top else None
    if checker.errors:
        raise RegistryFileInvalid(checker.errors)
    return RegistryFile(models=models, rules=rules, scope_providers=scope)
