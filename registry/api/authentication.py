"""Who is calling: local users with this service's tokens, or platform users with the platform's.

Two kinds of bearer token reach the API:

- **Local tokens**, issued by ``POST /auth/token`` (simplejwt), signed with the service's own
  ``SECRET_KEY`` and carrying ``iss = SIMPLE_JWT["ISSUER"]``. They authenticate a local user, whose
  role comes from their Django groups (``registry.access.accounts.user_role``).
- **Platform tokens**, issued by the platform's auth service (Supabase/GoTrue), signed with the
  shared ``JWT_SECRET`` (``JWT_ALGORITHM``, HS256), with ``sub``, ``role``, ``aud`` and ``exp``.
  They have no local user: ``request.user`` is a ``PlatformUser`` carrying the platform role and
  the registry role it maps to through ``PLATFORM_ROLE_MAP`` (``app_metadata.registry_role`` wins).

The token's unverified ``iss`` only chooses which verifier runs; each verifier checks everything
(signature, algorithm, expiry, audience) itself, so a forged ``iss`` gains nothing.

A third way in has no token at all: a request from one of ``PLATFORM_TRUSTED_NETWORKS`` with no
``Authorization`` header acts as the ``service`` role, for reads and usage posts only, and is
counted per client, method, route and minute, reads and usage posts alike, with no write per
request (``TrustedNetworkAuthentication``; docs/platform.md says what it trusts).

Over 400 lines on purpose: the three authentication classes share the token checks and the
remembered-role cache, which one module keeps consistent.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject
from rest_framework import HTTP_HEADER_ENCODING
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.settings import api_settings as simplejwt_settings

from registry.access.accounts import user_access, user_role
from registry.access.read_counts import read_counted, route_pattern
from registry.access.roles import Role
from registry.operations import metrics

BEARER = "Bearer"
REALM = "model-registry"
# Where a request keeps its caller's registry role once known (see request_role).
_ROLE_ATTRIBUTE = "_registry_role"
_UNSET = object()


@dataclass(frozen=True)
class PlatformUser:
    """The caller behind a platform token: no local user, only the token's subject and role."""

    sub: str
    platform_role: str
    role: Role | None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # What DRF, Django and auditlog ask of a user object.
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    pk: None = None
    id: None = None

    @property
    def username(self) -> str:
        return f"platform:{self.sub}"

    def __str__(self) -> str:
        return self.username


def _bearer_token(request: Request) -> str | None:
    """The raw token of an ``Authorization: Bearer <token>`` header, or None when there is none."""
    parts = get_authorization_header(request).split()
    if not parts or parts[0].decode(HTTP_HEADER_ENCODING).lower() != BEARER.lower():
        return None
    if len(parts) != 2:
        raise AuthenticationFailed("Authorization header must be 'Bearer <token>'.", code="bad_authorization_header")
    try:
        return parts[1].decode(HTTP_HEADER_ENCODING)
    except UnicodeDecodeError as exc:
        raise AuthenticationFailed("The token is not valid.", code="token_not_valid") from exc


def _unverified_issuer(token: str) -> str | None:
    # Only the payload segment is read, without PyJWT's full decode: this runs on every request and
    # merely picks the verifier, which then checks the whole token (a second full decode cost ~10%
    # of a cached read).
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, UnicodeDecodeError) as exc:
        raise AuthenticationFailed("The token is not a valid JWT.", code="token_not_valid") from exc
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


def is_local_token(token: str) -> bool:
    return _unverified_issuer(token) == simplejwt_settings.ISSUER


class LocalJWTAuthentication(JWTAuthentication):
    """This service's own access tokens (simplejwt), for local users; other tokens are left to the next class."""

    www_authenticate_realm = REALM

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, Any] | None:  # type: ignore[override]
        token = _bearer_token(request)
        if token is None or not is_local_token(token):
            return None
        validated = self.get_validated_token(token.encode(HTTP_HEADER_ENCODING))
        try:
            user_id = int(validated[simplejwt_settings.USER_ID_CLAIM])
        except (KeyError, TypeError, ValueError) as exc:
            raise AuthenticationFailed("The token names no user.", code="token_not_valid") from exc
        # The role and the active flag come from a short-lived cache, not two queries a request:
        # a read served from the cache then touches no database at all.
        access = user_access(user_id)
        if access is None:
            raise AuthenticationFailed("User not found.", code="user_not_found")
        if not access.is_active:
            raise AuthenticationFailed("User is inactive.", code="user_inactive")
        setattr(request, _ROLE_ATTRIBUTE, access.role)
        # The User row itself is loaded only if something needs it (the audit actor of a write).
        user = SimpleLazyObject(lambda: self.user_model.objects.get(pk=user_id))
        return user, validated  # type: ignore[return-value]


class PlatformJWTAuthentication(BaseAuthentication):
    """Tokens of the platform's auth service (Supabase/GoTrue), verified with the shared JWT_SECRET."""

    def authenticate(self, request: Request) -> tuple[PlatformUser, dict[str, Any]] | None:
        token = _bearer_token(request)
        if token is None or is_local_token(token):
            return None
        claims = decode_platform_token(token)
        return platform_user(claims), claims

    def authenticate_header(self, request: Request) -> str:
        return f'{BEARER} realm="{REALM}"'


class StaffSessionAuthentication(SessionAuthentication):
    """The Django session of a staff user logged into the admin, for the pages people open in a browser.

    Only the API docs, the schema and the audit log take it (``BROWSER_AUTHENTICATION``): a browser
    cannot send a bearer token there, while programs keep using JWTs everywhere else (but for the
    docs page's own requests, ``DocsSessionAuthentication``). DRF's session
    check enforces CSRF on unsafe methods; a session of a user who is not staff counts for nothing.
    """

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, None] | None:
        result = super().authenticate(request)
        if result is None or not getattr(result[0], "is_staff", False):
            return None
        return result


# The header the API docs' "Try it out" requests carry (SWAGGER_UI_SETTINGS in settings.py). A page
# of another origin cannot send it without a CORS preflight, which the API never grants.
DOCS_REQUEST_HEADER = "X-Registry-Docs"
DOCS_REQUEST_VALUE = "try-it-out"


class DocsSessionAuthentication(StaffSessionAuthentication):
    """A staff session, for the requests the API docs page makes ("Try it out"), and those only.

    Without it a person logged into the admin opened /api/docs and got 401 on every "Try it out".
    Only a request carrying ``X-Registry-Docs: try-it-out`` is looked at: a plain browser visit, or
    a form another site posts, still gets nothing from a session (the API stays for programs with a
    token), and DRF's session check enforces CSRF on unsafe methods (the docs page sends the
    token). The staff user's role is what it may do, as with a token; bearer tokens come first.
    """

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, None] | None:
        if request.headers.get(DOCS_REQUEST_HEADER) != DOCS_REQUEST_VALUE:
            return None
        return super().authenticate(request)


def decode_platform_token(token: str) -> dict[str, Any]:
    """Verify a platform token: signature, the one configured algorithm, ``exp`` present and not past, audience."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.JWT_SECRET,
            # One algorithm only: never "none", never one the header picks (algorithm confusion).
            algorithms=[settings.JWT_ALGORITHM],
            audience=settings.JWT_AUDIENCE,
            options={"require": ["exp", "sub"], "verify_aud": True},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationFailed("The token has expired.", code="token_expired") from exc
    except jwt.InvalidTokenError as exc:
        # The reason (signature, audience, algorithm) stays out of the response: it helps only an attacker.
        raise AuthenticationFailed("The token is not valid.", code="token_not_valid") from exc
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise AuthenticationFailed("The token is not valid.", code="token_not_valid")
    return claims


def platform_role_to_registry_role(claims: dict[str, Any]) -> Role | None:
    """The registry role of a platform token: ``app_metadata.registry_role`` if set, else PLATFORM_ROLE_MAP.

    ``app_metadata`` is written only by the platform's admins (unlike ``user_metadata``), so it
    may grant a role. ``anon`` (or any role the map gives nothing) never gets one.
    """
    platform_role = claims.get("role")
    role_map: dict[str, str | None] = settings.PLATFORM_ROLE_MAP
    if not isinstance(platform_role, str) or role_map.get(platform_role) is None:
        return None
    app_metadata = claims.get("app_metadata")
    if isinstance(app_metadata, dict) and "registry_role" in app_metadata:
        requested = app_metadata["registry_role"]
        return Role.from_name(requested) if isinstance(requested, str) else None
    return Role.from_name(role_map[platform_role])


def platform_user(claims: dict[str, Any]) -> PlatformUser:
    platform_role = claims.get("role")
    return PlatformUser(
        sub=str(claims["sub"]),
        platform_role=platform_role if isinstance(platform_role, str) else "",
        role=platform_role_to_registry_role(claims),
        claims=claims,
    )


def request_role(request: Request) -> Role | None:
    """The registry role of the request's caller (None when anonymous or without a role), computed once."""
    cached = getattr(request, _ROLE_ATTRIBUTE, _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    user = request.user
    role: Role | None
    if isinstance(user, PlatformUser):
        role = user.role
    elif isinstance(user, AbstractBaseUser) and user.is_authenticated:
        role = user_role(user)
    else:
        role = None
    setattr(request, _ROLE_ATTRIBUTE, role)
    return role


# --- Trusted networks ---------------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUSTED_NETWORK_ROLE = "trusted_network"
# The writes a trusted-network caller may make: recording usage, nothing else (URL names).
TRUSTED_NETWORK_WRITES = frozenset({"model-usage"})


@dataclass(frozen=True)
class TrustedNetworkCaller(PlatformUser):
    """A caller without a token, trusted for its address: the ``service`` role, audited as ``platform:network:<a>``."""

    network: str = ""


@functools.lru_cache(maxsize=16)
def _parsed_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; match them against IPv4 networks.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _network_of(address: IPAddress, networks: tuple[IPNetwork, ...]) -> IPNetwork | None:
    return next((network for network in networks if address.version == network.version and address in network), None)


def client_address(meta: dict[str, Any]) -> IPAddress | None:
    """The client's address: the socket's peer, or, only when the peer is a trusted proxy, from X-Forwarded-For.

    X-Forwarded-For is read from the right (each proxy appends the address it saw) and the first
    hop that is not itself a trusted proxy is the client; anything a client wrote further left is
    ignored. A malformed hop, or a proxy that names no client, gives None: a proxy is never a
    trusted client for being a proxy (a misconfigured one would make every caller look like it).
    """
    peer = _address(str(meta.get("REMOTE_ADDR", "")))
    proxies = _parsed_networks(tuple(settings.PLATFORM_TRUSTED_PROXIES))
    if peer is None or not proxies or _network_of(peer, proxies) is None:
        return peer
    hops = str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",")
    for hop in reversed([hop for hop in hops if hop.strip()]):
        address = _address(hop)
        if address is None or _network_of(address, proxies) is None:
            return address
    return None


def _storable(text: str) -> str:
    """``text`` as a text column takes it: a path is the caller's, and may hold NUL or a lone surrogate."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


_TRUSTED_OF_MAX = 1024
_trusted_of: dict[tuple[Any, ...], tuple[str, str] | None] = {}


def trusted_network_of(meta: dict[str, Any]) -> tuple[str, str] | None:
    """The client's address and the trusted network it is in (as text), for a request with no ``Authorization`` header.

    None when no network is trusted, the request carries any ``Authorization`` header (even a bad
    one: a caller that sends credentials is judged by them), or its client is outside the networks.
    """
    networks = settings.PLATFORM_TRUSTED_NETWORKS
    if not networks or "HTTP_AUTHORIZATION" in meta:
        return None
    # A router calls from the same address all day: its answer is remembered, keyed by everything it depends on.
    key = (
        meta.get("REMOTE_ADDR"),
        meta.get("HTTP_X_FORWARDED_FOR"),
        tuple(networks),
        tuple(settings.PLATFORM_TRUSTED_PROXIES),
    )
    if key in _trusted_of:
        return _trusted_of[key]
    address = client_address(meta)
    network = _network_of(address, _parsed_networks(tuple(networks))) if address is not None else None
    # As text, once: what the caller, the counts and the metric's label are made of.
    found = (str(address), str(network)) if address is not None and network is not None else None
    if len(_trusted_of) >= _TRUSTED_OF_MAX:
        _trusted_of.clear()  # a flood of distinct addresses: forget rather than grow
    _trusted_of[key] = found
    return found


def trusted_caller(address: str, network: str) -> TrustedNetworkCaller:
    return TrustedNetworkCaller(
        sub=f"network:{address}", platform_role=TRUSTED_NETWORK_ROLE, role=Role.SERVICE, network=network
    )


def trusted_request_recorded(*, address: str, network: str, method: str, route: str) -> None:
    """A token-less request (a read or a usage post) on the record: counted on /metrics, and in this
    process's counts per client, method, route and minute. Nothing is written to the database here."""
    metrics.trusted_network_request(network=network, method=method)
    read_counted(address=address, network=network, method=method, route=route)


class TrustedNetworkAuthentication(BaseAuthentication):
    """No token, from ``PLATFORM_TRUSTED_NETWORKS``: the ``service`` role, for reads and usage posts.

    Any ``Authorization`` header, even a bad one, is left to the token classes: a caller that sends
    credentials is judged by them. Every request accepted here is counted
    (``registry_trusted_network_requests_total``) and on the record as a count per client address,
    method, route and minute (registry/access/read_counts.py), reads and usage posts alike.

    Nothing here touches the database: a usage post is the router's hot path (one per LLM request),
    and it must keep working while PostgreSQL is away, when the view keeps its records in the usage
    buffer (registry/telemetry/buffering.py). The records themselves are the post's own record.
    """

    def authenticate(self, request: Request) -> tuple[TrustedNetworkCaller, None] | None:
        trusted = trusted_network_of(request.META)
        if trusted is None:
            return None
        address, network = trusted
        match = request._request.resolver_match
        url_name = match.url_name if match is not None else None
        method = request.method or ""
        if method not in SAFE_METHODS and url_name not in TRUSTED_NETWORK_WRITES:
            return None  # a write the network is not trusted for: 401, as for any caller without a token
        route = route_pattern(match.route) if match is not None else _storable(request.path)
        trusted_request_recorded(address=address, network=network, method=method, route=route)
        return trusted_caller(address, network), None


# The views people open in a browser (the docs, /audit): the API's chain plus a staff session. The
# bearer tokens first, so an anonymous caller still gets 401 with a Bearer challenge as on the API;
# a trusted network's caller is the service role there too (and refused what that role may not read).
BROWSER_AUTHENTICATION = [
    LocalJWTAuthentication,
    PlatformJWTAuthentication,
    StaffSessionAuthentication,
    TrustedNetworkAuthentication,
]


@dataclass(frozen=True, slots=True)
class _Verified:
    """A token whose signature and claims passed once: what a later request with the same bytes needs."""

    expires_at: float
    user_id: int | None  # a local token's user, whose access is looked up on every request
    role: Role | None  # a platform token's role, fixed by its claims


_VERIFIED_MAX = 4096
_verified: dict[str, _Verified] = {}
_verified_lock = threading.Lock()


def bearer_role(request: HttpRequest) -> Role | None:
    """The registry role of a request's bearer token, checked as the API's authenticators check it.

    For the WSGI front of cached reads (registry/api/fast_reads.py), which answers before DRF: the
    same classes in the same order as ``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``. None
    when no token is given; ``AuthenticationFailed`` when one is refused.

    A router sends the same token on every request until it expires: once its signature and claims
    passed, the exact same bytes are not verified again, only their expiry, and a local user's
    access (active, role) is still read on every request (``user_access``: revocation is bounded
    as for any request, see docs/api.md).
    """
    token = _bearer_token(request)  # type: ignore[arg-type]
    if token is None:
        return None
    known, remembered = remembered_role(token)
    if known:
        return remembered
    local = LocalJWTAuthentication().authenticate(request)  # type: ignore[arg-type]
    if local is not None:
        validated = local[1]
        # Its user is a lazy object: only the role it set on the request is read (no query).
        role: Role | None = getattr(request, _ROLE_ATTRIBUTE, None)
        _remember(token, _Verified(float(validated["exp"]), int(validated[simplejwt_settings.USER_ID_CLAIM]), None))
        return role
    platform = PlatformJWTAuthentication().authenticate(request)  # type: ignore[arg-type]
    if platform is None:
        return None
    user, claims = platform
    _remember(token, _Verified(float(claims["exp"]), None, user.role))
    return user.role


def remembered_role(token: str) -> tuple[bool, Role | None]:
    """``(True, role)`` for a token verified before and not expired, ``(False, None)`` for one to verify.

    The front calls it with the token straight from the environ, before building any request object.
    Raises ``AuthenticationFailed`` for a known token whose local user is gone or inactive.
    """
    known = _verified.get(token)
    if known is None or known.expires_at <= time.time():
        return False, None
    if known.user_id is None:
        return True, known.role
    access = user_access(known.user_id)
    if access is None or not access.is_active:
        raise AuthenticationFailed("User not found or inactive.", code="user_inactive")
    return True, access.role


def _remember(token: str, verified: _Verified) -> None:
    with _verified_lock:
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()  # a burst of distinct tokens: start over rather than track an order
        _verified[token] = verified
