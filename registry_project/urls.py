"""Top-level routes. The REST API lives at the root of the service, as the design document names it."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # /health, /healthz, /metrics, /audit
    path("", include("registry.operations.urls")),
    # /models..., /auth/token..., /api/schema, /api/docs
    path("", include("registry.api.urls")),
    # /sources, /sources/{id}/runs, /sources/{id}/discover (admins)
    path("", include("discovery.api.urls")),
]
