"""``/auth/token``, ``/auth/token/refresh`` and ``/auth/token/verify``: simplejwt's views, throttled and documented.

Password guessing is bounded twice: per client address and per username (whatever address the
guesses come from). The counters live in the shared cache, so every web process counts together.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView, TokenVerifyView

from registry.api.schema import ERROR_SERIALIZER
from registry.operations import metrics


class _CountedThrottle(SimpleRateThrottle):
    """A rate throttle that counts its refusals in the metrics (``registry_requests_throttled``)."""

    def throttle_failure(self) -> bool:
        metrics.request_throttled(scope=str(self.scope))
        return False


class TokenClientThrottle(_CountedThrottle):
    """Token requests per client address (``REMOTE_ADDR``, or X-Forwarded-For behind ``NUM_PROXIES`` proxies)."""

    scope = "auth-client"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class TokenUsernameThrottle(_CountedThrottle):
    """Token requests per username, so that guesses spread over many addresses are bounded too."""

    scope = "auth-username"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        data = request.data
        username = data.get("username") if isinstance(data, dict) else None
        if not isinstance(username, str) or not username:
            return None  # the serializer refuses the request anyway
        # Hashed: a cache key is no place for what a client typed (a password pasted into the wrong field).
        ident = hashlib.sha256(username.casefold().encode("utf-8", "surrogatepass")).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class RefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh, with a user deleted since the token was issued answered as 401, not a 500."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            return super().validate(attrs)
        except (ObjectDoesNotExist, ValueError, TypeError) as exc:
            raise AuthenticationFailed("The token's user no longer exists.", code="user_not_found") from exc


_CREDENTIALS = inline_serializer(
    "TokenObtain",
    fields={"username": serializers.CharField(max_length=150), "password": serializers.CharField(max_length=4096)},
)
_PAIR = inline_serializer("TokenPair", fields={"access": serializers.CharField(), "refresh": serializers.CharField()})
_REFRESH_REQUEST = inline_serializer("TokenRefresh", fields={"refresh": serializers.CharField()})
_ACCESS = inline_serializer("AccessToken", fields={"access": serializers.CharField()})
_VERIFY_REQUEST = inline_serializer("TokenVerify", fields={"token": serializers.CharField()})
# simplejwt answers a valid token with an empty object.
_VERIFIED = OpenApiResponse(OpenApiTypes.OBJECT, description="The token is valid: an empty object.")


def _token_errors(unauthorized: str) -> dict[int, OpenApiResponse]:
    return {
        400: OpenApiResponse(ERROR_SERIALIZER, description="A field is missing or malformed; the body names it."),
        401: OpenApiResponse(ERROR_SERIALIZER, description=unauthorized),
        429: OpenApiResponse(ERROR_SERIALIZER, description="Too many attempts; retry after Retry-After seconds."),
    }


@extend_schema(
    summary="Exchange a local user's username and password for an access and a refresh token",
    request=_CREDENTIALS,
    responses={200: _PAIR, **_token_errors("Wrong username or password, or an inactive user.")},
    auth=[],
)
class TokenObtainView(TokenObtainPairView):
    throttle_classes = [TokenClientThrottle, TokenUsernameThrottle]


@extend_schema(
    summary="A new access token for a refresh token",
    request=_REFRESH_REQUEST,
    responses={200: _ACCESS, **_token_errors("The refresh token is invalid or expired, or its user is gone.")},
    auth=[],
)
class TokenRefreshThrottledView(TokenRefreshView):
    serializer_class = RefreshSerializer
    throttle_classes = [TokenClientThrottle]


@extend_schema(
    summary="Check a token: 200 with an empty object when valid",
    request=_VERIFY_REQUEST,
    responses={200: _VERIFIED, **_token_errors("The token is invalid or expired.")},
    auth=[],
)
class TokenVerifyThrottledView(TokenVerifyView):
    throttle_classes = [TokenClientThrottle]
