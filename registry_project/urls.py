"""Top-level routes. The REST API lives at the root of the service, as the design document names it."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.decorators.cache import cache_control

from registry.api import errors


@cache_control(public=True, max_age=86400)
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico whatever the page links: point them at the vendored icon (its hashed URL)."""
    return HttpResponseRedirect(static("registry/favicon.ico"))


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    # The same API under a versioned prefix; the platform router's shapes there when PLATFORM_API_COMPAT=alfred.
    path("api/v1/", include("registry.api.platform.urls", namespace="v1")),
    # /health, /healthz, /metrics, /audit
    path("", include("registry.api.operations.urls")),
    # /models..., /auth/token..., /api/schema, /api/docs
    path("", include("registry.api.urls")),
    # /sources, /sources/{id}/runs, /sources/{id}/discover (admins)
    path("", include("discovery.api.urls")),
    # Last: any other path is a JSON 404, also under DEBUG (the admin answers its own paths above).
    re_path(r"^(?P<path>.*)$", errors.unknown_path, name="not-found"),
]

# JSON errors outside the API's views too (a bad Host header, uncaught errors, a view's Http404); the
# admin keeps Django's HTML pages. One place: registry/api/errors.py.
handler400 = "registry.api.errors.bad_request"
handler403 = "registry.api.errors.permission_denied"
handler404 = "registry.api.errors.page_not_found"
handler500 = "registry.api.errors.server_error"
