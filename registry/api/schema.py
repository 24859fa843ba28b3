"""How the OpenAPI schema describes the API's authentication (imported by registry.api.urls to register)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema


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
