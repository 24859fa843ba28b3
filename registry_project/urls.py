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

# JSON errors outside the API's views too (unknown paths, a bad Host header, uncaught errors); the
# admin keeps Django's HTML pages. One place: registry/api/errors.py.
handler400 = "registry.api.errors.bad_request"
handler403 = "registry.api.errors.permission_denied"
handler404 = "registry.api.errors.page_not_found"
handler500 = "registry.api.errors.server_error"
