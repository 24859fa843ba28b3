"""``GET /api/schema`` and ``/api/docs``: drf-spectacular's views, refusing as the rest of the API does.

drf-spectacular's views render everything with their own renderers, errors included: an anonymous
caller got its 401 from /api/schema as YAML and from /api/docs as a bare ``401 Unauthorized`` line of
HTML, and a caller whose ``Accept`` the view cannot meet got a 406 before anyone asked who it was.
Here, as everywhere else on the API:

- who is calling is checked before what it accepts, so a caller without credentials gets the 401;
- every error is the JSON ``{"detail": ...}`` (registry/api/errors.py), and the 401's detail names
  where a person logs in, the admin's login page (a staff session opens both views);
- a browser opening /api/docs, a page for people, without a session is sent to that login page,
  which brings it back to the docs.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.exceptions import NotAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


def prefers_html(request: HttpRequest) -> bool:
    """A browser: it asks for ``text/html`` before anything else (``curl`` and HTTP libraries send ``*/*``)."""
    return request.get_preferred_type(["application/json", "text/html"]) == "text/html"


def admin_login_url(request: HttpRequest) -> str:
    """The admin's login page (LOGIN_URL), which brings the browser back to this request's path."""
    return str(redirect_to_login(request.get_full_path()).url)


class _DocsAccess(APIView):
    """What the schema and the docs views answer when they refuse (module docstring)."""

    # A browser refused with a 401 (no staff session) is sent to the admin's login instead.
    sends_browsers_to_login = False

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # DRF negotiates the renderer before it authenticates: an anonymous caller whose Accept the
        # view cannot meet (JSON at the HTML page, HTML at the schema) got a 406, not the 401 that
        # tells it how to get in. Checking permissions first is cheap: the caller is looked up once.
        self.check_permissions(request)
        super().initial(request, *args, **kwargs)

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> NoReturn:
        if request.authenticators and not request.successful_authenticator:
            raise NotAuthenticated(
                "Authentication credentials were not provided: send a bearer token, or log into the admin "
                f"as a staff user at {admin_login_url(request)} and open this page in the same browser."
            )
        super().permission_denied(request, message, code)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        if getattr(response, "exception", False):
            # The API's one error shape, whatever the view renders when it succeeds (YAML, HTML).
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = super().dispatch(request, *args, **kwargs)
        if self.sends_browsers_to_login and response.status_code == 401 and prefers_html(request):
            response = redirect_to_login(request.get_full_path())
        # The answer depends on Accept (a redirect for a browser, the 401 for a program).
        patch_vary_headers(response, ["Accept"])
        return response


class SchemaView(_DocsAccess, SpectacularAPIView):
    """The OpenAPI schema, YAML or JSON."""


class DocsView(_DocsAccess, SpectacularSwaggerView):
    """The Swagger UI page over the schema."""

    sends_browsers_to_login = True
