"""How the OpenAPI schema describes the API's authentication and errors (imported by registry.api.urls to register)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from registry.api.evidence import MEASURED_KEYS, NOTE_MAX_LENGTH, EvidenceSerializer
from registry.api.validators import MAX_BATCH, NONBLANK_TEXT_PATTERN, TEXT_PATTERN


class _BearerJWTScheme(OpenApiAuthenticationExtension):
    """A bearer-JWT security scheme; subclasses name the authentication class and describe its tokens."""

    description = ""

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": self.description}


class LocalJWTScheme(_BearerJWTScheme):
    target_class = "registry.api.authentication.LocalJWTAuthentication"
    name = "localJWT"
    description = "An access token of a local user, from POST /auth/token."


class PlatformJWTScheme(_BearerJWTScheme):
    target_class = "registry.api.authentication.PlatformJWTAuthentication"
    name = "platformJWT"
    description = "A token of the platform's auth service (HS256, signed with JWT_SECRET)."


class TrustedNetworkScheme(OpenApiAuthenticationExtension):
    """No security scheme: OpenAPI has none for "no credentials, from these addresses" (docs/platform.md).

    Declaring none keeps the operations' requirements the two bearer schemes, which is what any
    caller outside PLATFORM_TRUSTED_NETWORKS needs.
    """

    target_class = "registry.api.authentication.TrustedNetworkAuthentication"
    name: list[str] = []

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[Any]]]:
        return []

    def get_security_definition(self, auto_schema: AutoSchema) -> list[dict[str, Any]]:
        return []


class DocsSessionScheme(OpenApiAuthenticationExtension):
    """No security scheme: the staff session is for the docs page's own "Try it out" requests, not for clients."""

    target_class = "registry.api.authentication.DocsSessionAuthentication"
    name: list[str] = []

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[Any]]]:
        return []

    def get_security_definition(self, auto_schema: AutoSchema) -> list[dict[str, Any]]:
        return []


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "registry.api.authentication.StaffSessionAuthentication"
    name = "staffSession"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "The session of a staff user logged into the admin (/admin/login/), for a browser.",
        }


class CapabilityEvidenceSchema(OpenApiSerializerFieldExtension):
    """A capability's ``evidence``: the Evidence object in responses; in requests the operator's note only."""

    target_class = "registry.api.evidence.CapabilityEvidenceField"

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        if direction == "response":
            return dict(auto_schema.resolve_serializer(EvidenceSerializer, "response").ref)
        note = {"type": "string", "maxLength": NOTE_MAX_LENGTH}
        return {
            "description": 'The operator\'s note, as a string or as {"note": ...}. "source" may only be "operator"; '
            "the measurement facts are the registry's (null, as an operator's evidence reads, or left out).",
            "oneOf": [
                note,
                {
                    "type": "object",
                    "properties": {
                        "note": note,
                        "source": {"type": "string", "enum": ["operator"]},
                        **{key: {"type": "null"} for key in MEASURED_KEYS},
                    },
                    "additionalProperties": False,
                },
            ],
        }


class CapabilityEvidenceMapSchema(OpenApiSerializerFieldExtension):
    """A model's ``capability_evidence``: an Evidence object per capability (read-only, so responses only)."""

    target_class = "registry.api.evidence.CapabilityEvidenceMapField"

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        if direction != "response":
            return {}
        evidence = auto_schema.resolve_serializer(EvidenceSerializer, "response").ref
        return {"type": "object", "additionalProperties": evidence}


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (see registry/api/errors.py); described by ErrorSchema below."""

    detail = serializers.CharField(required=False)


ERROR_SERIALIZER = ErrorSerializer


class ErrorSchema(OpenApiSerializerExtension):
    target_class = "registry.api.schema.ErrorSerializer"

    def get_name(self, auto_schema: AutoSchema, direction: str) -> str:
        return "Error"

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        return {
            "type": "object",
            "description": "Every error: `detail` says what went wrong; for invalid input each offending field "
            "(or a batch record's index) maps to its messages instead.",
            "properties": {"detail": {"type": "string"}},
            "additionalProperties": {},
        }


class RoundedDecimalSchema(OpenApiSerializerFieldExtension):
    """A rounded decimal's input bound as the service applies it: below what rounds up past its digits.

    ``RoundedDecimalField`` rounds to ``decimal_places`` before checking ``max_digits``, so a price
    of 999999.9999999 (12 digits, 6 decimals) becomes 1000000.000000 and is refused, while
    999999.9999994 becomes 999999.999999 and is taken. The bound is 10**whole digits less half a
    unit of the last decimal, exclusive; responses keep drf-spectacular's 10**whole digits.
    """

    target_class = "registry.api.fields.RoundedDecimalField"

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if isinstance(schema.get("type"), list):
            # drf-spectacular adds null again for an allow_null field after an extension: once is enough.
            types = [kind for kind in schema["type"] if kind != "null"]
            schema["type"] = types[0] if len(types) == 1 else types
        field = self.target
        if direction == "request" and field.max_value is None and field.max_whole_digits is not None:
            half_unit = Decimal(5).scaleb(-field.decimal_places - 1)
            schema.update(maximum=float(Decimal(10) ** field.max_whole_digits - half_unit), exclusiveMaximum=True)
        return schema


# What any operation may answer beside what its view declares, and when.
_DESCRIPTIONS = {
    "400": "Invalid input; the body names each offending field or parameter.",
    "401": "No token, or a bad one.",
    "403": "The caller's role may not do this.",
    "404": "Nothing at this path (no such model, endpoint, capability or source).",
    "413": "The request body is larger than the service accepts.",
    "414": "The URI (path and query) is longer than the service accepts.",
    "431": "The request's headers are more or larger than the service accepts.",
    "503": "The database (or, for discovery, the broker) is unavailable; retry after Retry-After seconds.",
}
_ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def complete_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every error an operation can answer is listed, each with the Error schema.

    Added here, in one place, rather than repeated on each view: 503, 414 and 431 everywhere (the
    database may be down, any request may be too large), 401/403 where a token is needed, 400
    where there is input, 404 where the path names something, 413 where there is a body.
    """
    _collapse_nullable_any(result)
    _state_text_patterns(result)
    _state_batch_bounds(result)
    _require_bodies(result)
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(
        "Error",
        ErrorSchema(ErrorSerializer).map_serializer(None, "response"),  # type: ignore[arg-type]
    )
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            # Any request may be refused for its size (registry/api/limits.py) or a database outage.
            wanted = {"414", "431", "503"}
            if operation.get("security") != [] and any(operation.get("security") or [{}]):
                wanted |= {"401", "403"}
            if operation.get("parameters") or "requestBody" in operation:
                wanted.add("400")
            if "{" in path:
                wanted.add("404")
            if "requestBody" in operation or method in {"post", "put", "patch"}:
                wanted.add("413")
            for code in sorted(wanted):
                responses.setdefault(code, {"description": _DESCRIPTIONS[code]})
            for code, response in responses.items():
                if code[0] in "45" and "content" not in response:
                    response["content"] = _ERROR_REF
    return result


def _collapse_nullable_any(node: Any) -> None:
    """In OpenAPI 3.1 drf-spectacular writes a nullable JSONField as ``oneOf: [{}, {type: null}]``,
    which nothing can satisfy (null matches both); any value at all is ``{}``."""
    if isinstance(node, dict):
        one_of = node.get("oneOf")
        if isinstance(one_of, list) and len(one_of) == 2 and {} in one_of and {"type": "null"} in one_of:
            del node["oneOf"]
        for child in node.values():
            _collapse_nullable_any(child)
    elif isinstance(node, list):
        for child in node:
            _collapse_nullable_any(child)


def _string_schemas(node: Any) -> Any:
    """Every schema object of type string under ``node`` (properties, items, nested objects)."""
    if isinstance(node, dict):
        types = node.get("type")
        if types == "string" or (isinstance(types, list) and "string" in types):
            yield node
        for key, child in node.items():
            if key != "enum":
                yield from _string_schemas(child)
    elif isinstance(node, list):
        for child in node:
            yield from _string_schemas(child)


def _state_text_patterns(result: dict[str, Any]) -> None:
    """The text rule every input string is checked against (StrictSerializerMixin: no NUL, no lone
    surrogate; not blank where required), as patterns, on request bodies and query parameters."""
    inputs: list[Any] = [
        schema for name, schema in result.get("components", {}).get("schemas", {}).items() if name.endswith("Request")
    ]
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                inputs.extend(p.get("schema") for p in operation.get("parameters", []) if p.get("in") == "query")
    for name, component in result.get("components", {}).get("schemas", {}).items():
        # Request bodies refuse fields they do not know (StrictSerializerMixin).
        if name.endswith("Request") and component.get("type") == "object" and "properties" in component:
            component.setdefault("additionalProperties", False)
    for schema in _string_schemas(inputs):
        if "pattern" in schema or "format" in schema or "enum" in schema:
            continue
        schema["pattern"] = NONBLANK_TEXT_PATTERN if schema.get("minLength", 0) >= 1 else TEXT_PATTERN


def _state_batch_bounds(result: dict[str, Any]) -> None:
    """A batch of records (``UsageRecordsRequest``, ...: one record or a list) holds 1 to MAX_BATCH of them,
    as ``RegistryViewSet.records_body`` checks; drf-spectacular does not carry a ListSerializer's bounds over."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("RecordsRequest"):
            for branch in component.get("oneOf", []):
                if branch.get("type") == "array":
                    branch.setdefault("minItems", 1)
                    branch.setdefault("maxItems", MAX_BATCH)


def _require_bodies(result: dict[str, Any]) -> None:
    """A request body that cannot be empty is required: drf-spectacular leaves a one-or-a-list body
    (``PerformanceRecordsRequest``) optional, though no record can be made of nothing. A body whose
    every form needs content (an object with required fields, an array of at least one item) is."""
    components = result.get("components", {}).get("schemas", {})

    def needs_content(schema: dict[str, Any]) -> bool:
        if "$ref" in schema:
            return needs_content(components.get(schema["$ref"].rsplit("/", 1)[-1], {}))
        if "oneOf" in schema:
            return all(needs_content(branch) for branch in schema["oneOf"])
        return bool(schema.get("required")) or schema.get("minItems", 0) > 0

    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body is None or body.get("required"):
                continue
            forms = [media.get("schema", {}) for media in body.get("content", {}).values()]
            if forms and all(needs_content(form) for form in forms):
                body["required"] = True
