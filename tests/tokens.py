"""Platform tokens for tests, minted the way the platform's auth service (Supabase/GoTrue) mints them."""

from __future__ import annotations

import time
from typing import Any

import jwt
from django.conf import settings


def platform_token(
    role: str = "authenticated",
    *,
    registry_role: str | None = None,
    sub: str = "6f1c2f5e-0000-4000-8000-000000000001",
    expires_in: int | None = 3600,
    audience: str | None = "authenticated",
    algorithm: str = "HS256",
    secret: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A signed platform JWT: ``expires_in=None`` leaves out ``exp``, ``algorithm="none"`` signs nothing."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": now, "iss": "https://auth.example.test/auth/v1"}
    if audience is not None:
        claims["aud"] = audience
    if expires_in is not None:
        claims["exp"] = now + expires_in
    if registry_role is not None:
        claims["app_metadata"] = {"provider": "email", "registry_role": registry_role}
    claims.update(extra or {})
    key = None if algorithm == "none" else (secret if secret is not None else settings.JWT_SECRET)
    return jwt.encode(claims, key, algorithm=algorithm)
