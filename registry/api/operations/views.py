"""Operational endpoints: ``/healthz`` (liveness), ``/health`` (readiness), ``/metrics``, ``/audit``, ``/audit/reads``.

Health and metrics are plain Django views, not DRF: they take no JWT, run no content
negotiation, and must keep answering when the API's dependencies do not. ``/audit`` is part of
the API (JWT, admins only).
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from auditlog.models import LogEntry
from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiResponse, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework.generics import ListAPIView

from registry.api.authentication import BROWSER_AUTHENTICATION
from registry.api.operations.serializers import (
    AuditEntrySerializer,
    AuditQuerySerializer,
    TrustedReadSerializer,
    TrustedReadsQuerySerializer,
)
from registry.api.pagination import StrictLimitOffsetPagination
from registry.api.permissions import IsAdmin
from registry.api.schema_views import prefers_html
from registry.models import TrustedNetworkRead
from registry.operations import metrics
from registry.operations.health import health_report
from registry.operations.selectors import audit_entries, audit_object_types, trusted_network_reads


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """``/``: a browser goes to the console; an API client gets where things are, as JSON.

    A browser asks for ``text/html`` before anything else; ``curl``, ``requests`` and HTTP
    libraries send ``*/*`` and so get the JSON (the first type offered).
    """
    if prefers_html(request):
        return HttpResponseRedirect(reverse("admin:index"))
    links = {
        "admin": reverse("admin:index"),
        "docs": reverse("api-docs"),
        "schema": reverse("api-schema"),
        "health": reverse("health"),
    }
    response = JsonResponse(
        {
            "service": "model-registry",
            "version": settings.VERSION,
            "links": {name: request.build_absolute_uri(path) for name, path in links.items()},
        }
    )
    # One URL, two representations: caches must key on Accept.
    response["Vary"] = "Accept"
    return response


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. No I/O, so a slow dependency never gets the process killed."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Readiness: 503 when the database is unreachable, 200 ``degraded`` when only the cache or broker is,
    or while usage buffered during a database outage drains (``usage_buffer``: its state and depth)."""
    report = health_report()
    body: dict[str, Any] = {"status": report.status, "version": settings.VERSION, "services": report.services}
    if report.usage_buffer is not None:
        body["usage_buffer"] = report.usage_buffer
    return JsonResponse(body, status=report.http_status)


def _address_allowed(remote_addr: str) -> bool:
    allowed = settings.METRICS_ALLOWED_IPS
    if not allowed:
        return True
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    # Entries are addresses or networks ("10.0.0.0/8"); REMOTE_ADDR only, since a forwarded
    # header is whatever the client chose to send.
    return any(address in ipaddress.ip_network(entry, strict=False) for entry in allowed)


def _token_valid(request: HttpRequest) -> bool:
    expected = settings.METRICS_BEARER_TOKEN
    if not expected:
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition; limited by ``METRICS_ALLOWED_IPS`` and ``METRICS_BEARER_TOKEN`` when set."""
    if not _address_allowed(request.META.get("REMOTE_ADDR", "")):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    if not _token_valid(request):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


class AuditPagination(StrictLimitOffsetPagination):
    default_limit = 50
    max_limit = 500


@extend_schema(
    summary="The audit log (admins)",
    description="Newest first; secrets appear only as `********`. When both are given, `since` must be "
    "before `until`: otherwise a 400 naming `until`.",
    parameters=[AuditQuerySerializer],
    responses={
        200: AuditEntrySerializer(many=True),
        400: OpenApiResponse(description="Invalid filter; the body names the parameter."),
        401: OpenApiResponse(description="No token, or a bad one."),
        403: OpenApiResponse(description="Only admins read the audit log."),
    },
)
class AuditLogView(ListAPIView):
    """``GET /audit``: every change to models, endpoints, capabilities, parameters, sources and users' roles.

    Filters: ``object_type`` and ``object_id``, ``actor`` (a username or a named actor such as
    ``system:discovery`` or ``platform:<sub>``), ``action`` (create, update, delete), ``since`` and
    ``until`` (ISO 8601). Newest first; secrets appear only as ``********``.
    """

    # Also an admin's session in the admin: the console links here for the history of a change.
    authentication_classes = BROWSER_AUTHENTICATION
    permission_classes = [IsAdmin]
    serializer_class = AuditEntrySerializer
    pagination_class = AuditPagination

    def get_queryset(self) -> QuerySet[LogEntry]:
        query = AuditQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return audit_entries(**query.validated_data)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "object_types": audit_object_types()}


@extend_schema(
    summary="Token-less requests from trusted networks, counted per client, route and minute (admins)",
    description="Newest minute first. Each row is the number of requests (reads, and usage posts as `POST`) one "
    "client address made of one route (`/api/v1/models/{ref}`, not each model's path) in one minute, without a "
    "token, from "
    "`PLATFORM_TRUSTED_NETWORKS`. Web processes write their counts every "
    "`PLATFORM_READ_COUNTS_FLUSH_SECONDS`: the current minute is still filling.",
    parameters=[TrustedReadsQuerySerializer],
    responses={
        200: TrustedReadSerializer(many=True),
        400: OpenApiResponse(description="Invalid filter; the body names the parameter."),
        401: OpenApiResponse(description="No token, or a bad one."),
        403: OpenApiResponse(description="Only admins read the audit log."),
    },
)
class TrustedReadsView(ListAPIView):
    """``GET /audit/reads``: the record of token-less requests, as counts (registry/access/read_counts.py)."""

    authentication_classes = BROWSER_AUTHENTICATION
    permission_classes = [IsAdmin]
    serializer_class = TrustedReadSerializer
    pagination_class = AuditPagination

    def get_queryset(self) -> QuerySet[TrustedNetworkRead]:
        query = TrustedReadsQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return trusted_network_reads(**query.validated_data)
