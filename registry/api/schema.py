"""How the OpenAPI schema describes the API's authentication and errors (imported by registry.api.urls to register)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


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


# What any operation may answer beside what its view declares, and when.
_DESCRIPTIONS = {
    "400": "Invalid input; the body names each offending field or parameter.",
    "401": "No token, or a bad one.",
    "403": "The caller's role may not do this.",
    "404": "Nothing at this path (no such model, endpoint, capability or source).",
    "413": "The request body is larger than the service accepts.",
    "503": "The database (or, for discovery, the broker) is unavailable; retry after Retry-After seconds.",
}
_ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def complete_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every error an operation can answer is listed, each with the Error schema.

    Added here, in one place, rather than repeated on each view: 503 everywhere (the database may be
    down), 401/403 where a token is needed, 400 where there is input, 404 where the path names
    something, 413 where there is a body.
    """
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
            wanted = {"503"}
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
