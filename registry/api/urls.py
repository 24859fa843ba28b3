"""The REST API's routes, at the root of the service as the design document names them.

``{ref}`` is a model's id or its name, and names contain '/' (``hf.co/bartowski/...:Q4_K_M``). The
WSGI server decodes ``%2F`` to '/' before Django routes, so the sub-resource word is recognised at
the end of the path (``^models/(?P<ref>.+)/capabilities$``) and names may not contain those words
as a segment (see ``validate_model_name``). Order matters: specific patterns come first.
"""

from django.conf import settings
from django.urls import URLPattern, URLResolver, path, re_path
from rest_framework.permissions import AllowAny

from registry.api import schema  # noqa: F401 (registers the authentication schemes of the OpenAPI schema)
from registry.api.authentication import BROWSER_AUTHENTICATION
from registry.api.catalog.views import CapabilityViewSet, EndpointViewSet, ModelViewSet, ParameterViewSet, PriceViewSet
from registry.api.compare.views import CompareViewSet
from registry.api.permissions import IsViewer
from registry.api.schema_views import DocsView, SchemaView
from registry.api.telemetry.views import AvailabilityViewSet, PerformanceViewSet, UsageViewSet
from registry.api.tokens import TokenObtainView, TokenRefreshThrottledView, TokenVerifyThrottledView

REF = r"(?P<ref>.+)"
# The schema says nothing secret, but the issue puts every path but health and login behind a JWT;
# API_DOCS_PUBLIC opens it where that is wanted. The docs are for people: a staff user logged into
# the admin opens them with that session (a browser cannot send a bearer token).
DOCS_PERMISSIONS = [AllowAny] if settings.API_DOCS_PUBLIC else [IsViewer]
DOCS_VIEW_OPTIONS = {"permission_classes": DOCS_PERMISSIONS, "authentication_classes": BROWSER_AUTHENTICATION}

urlpatterns: list[URLPattern | URLResolver] = [
    path("auth/token", TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh", TokenRefreshThrottledView.as_view(), name="auth-token-refresh"),
    path("auth/token/verify", TokenVerifyThrottledView.as_view(), name="auth-token-verify"),
    path("api/schema", SchemaView.as_view(**DOCS_VIEW_OPTIONS), name="api-schema"),
    path("api/docs", DocsView.as_view(url_name="api-schema", **DOCS_VIEW_OPTIONS), name="api-docs"),
    re_path(r"^models$", ModelViewSet.as_view({"get": "list", "post": "create"}), name="model-list"),
    re_path(r"^models/compare$", CompareViewSet.as_view({"get": "compare"}), name="model-compare"),
    re_path(r"^models/select$", ModelViewSet.as_view({"get": "select", "post": "explain"}), name="model-select"),
    re_path(
        rf"^models/{REF}/capabilities/(?P<capability>[^/]+)$",
        CapabilityViewSet.as_view({"delete": "destroy"}),
        name="model-capability-detail",
    ),
    re_path(
        rf"^models/{REF}/capabilities$",
        CapabilityViewSet.as_view({"get": "list", "post": "create"}),
        name="model-capabilities",
    ),
    re_path(
        rf"^models/{REF}/parameters$",
        ParameterViewSet.as_view({"get": "list", "post": "create"}),
        name="model-parameters",
    ),
    re_path(
        rf"^models/{REF}/performance$",
        PerformanceViewSet.as_view({"get": "summary", "post": "create"}),
        name="model-performance",
    ),
    re_path(rf"^models/{REF}/prices$", PriceViewSet.as_view({"get": "list", "post": "create"}), name="model-prices"),
    re_path(rf"^models/{REF}/usage$", UsageViewSet.as_view({"get": "summary", "post": "create"}), name="model-usage"),
    re_path(
        rf"^models/{REF}/availability$", AvailabilityViewSet.as_view({"get": "history"}), name="model-availability"
    ),
    re_path(
        rf"^models/{REF}/endpoints/(?P<endpoint_id>[0-9]+)$",
        EndpointViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}),
        name="model-endpoint-detail",
    ),
    re_path(
        rf"^models/{REF}/endpoints$",
        EndpointViewSet.as_view({"get": "list", "post": "create"}),
        name="model-endpoints",
    ),
    re_path(
        rf"^models/{REF}$",
        ModelViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}),
        name="model-detail",
    ),
]
