"""Small, loud readers for the environment.

Every setting of the service comes through these helpers so that a missing or malformed variable
fails at startup with ``ImproperlyConfigured`` naming the variable, instead of surfacing later as
an obscure error. Secrets may be given as ``NAME_FILE`` pointing at a file (Docker/Kubernetes
secrets), which wins over ``NAME``.
"""

from __future__ import annotations

import os
from ipaddress import ip_network
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    """Return ``name`` from the environment, reading ``name_FILE`` first when it is set."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE points at {file_path!r}, which cannot be read: {exc}") from exc
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value


def env_required(name: str, reason: str) -> str:
    value = env_str(name)
    if value is None:
        raise ImproperlyConfigured(f"{name} must be set ({reason}); set {name} or {name}_FILE in the environment.")
    return value


# Values published in demo files and tutorials (this project's old compose defaults, Supabase's
# self-hosting examples, the development fallbacks below): anyone can sign a token with them.
KNOWN_DEMO_SECRETS = frozenset(
    {
        "your-super-secret-jwt-token",
        "your-super-secret-jwt-token-with-at-least-32-characters-long",
        "super-secret-jwt-token-with-at-least-32-characters-long",
        "your-super-secret-password",
        "your-super-secret-and-long-postgres-password",
        "dev-insecure-model-registry-key-do-not-use-in-production",
        "dev-insecure-jwt-secret-do-not-use-in-production",
        "changeme",
        "secret",
    }
)
MINIMUM_SECRET_BYTES = 32


def env_secret(name: str, *, debug: bool, development_value: str, purpose: str) -> str:
    """A secret of the service: required, at least 32 bytes and no published demo value when ``debug``
    is off; with ``debug`` on a missing one falls back to ``development_value``."""
    value = env_str(name) or ""
    if debug:
        return value or development_value
    if not value:
        raise ImproperlyConfigured(
            f"{name} must be set when DEBUG is off; {purpose} "
            f"(set {name} or {name}_FILE, or DEBUG=true for development)."
        )
    if value.strip().lower() in KNOWN_DEMO_SECRETS:
        raise ImproperlyConfigured(f"{name} is a published demo value; {purpose}, so set a random one.")
    if len(value.encode("utf-8")) < MINIMUM_SECRET_BYTES:
        raise ImproperlyConfigured(
            f"{name} is shorter than {MINIMUM_SECRET_BYTES} bytes; {purpose}, so set a random one "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
        )
    return value


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}.") from exc
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}.") from exc
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = env_str(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str) -> list[str]:
    """A comma-separated list of CIDRs or single addresses, normalised (``10.1.2.3/8`` -> ``10.0.0.0/8``)."""
    networks = []
    for entry in env_list(name):
        try:
            networks.append(str(ip_network(entry, strict=False)))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {entry!r} is not an address or network.") from exc
    return networks
