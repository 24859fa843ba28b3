"""Every error the service produces on an API path, as JSON in one shape.

The shape: ``{"detail": "<what went wrong>"}``, and for invalid input an object naming each
offending field (``{"name": ["..."]}``; in a batch, the record's index). Three layers produce
errors and each is mapped here:

- DRF views: ``exception_handler`` (settings' ``EXCEPTION_HANDLER``) adds what DRF leaves to
  Django: a database that cannot be reached (503 with ``Retry-After``), a body over the limit (413).
- Django outside the views (a bad Host header, an uncaught error): the ``handler400/403/404/500``
  of the root URLconf, JSON everywhere but the admin's HTML pages. A path that names no route is
  answered by ``unknown_path``, the root URLconf's last route: handler404 is not enough, since
  under DEBUG Django answers its technical HTML 404 page instead of calling it.
- The WSGI server (granian): its own 414/431 beyond its HTTP/1 buffer have empty bodies that no
  application can change; ``registry/api/limits.py`` refuses well below them, in JSON.
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status
from rest_framework.views import exception_handler as drf_exception_handler

from registry.api.exceptions import DependencyUnavailable, PayloadTooLarge

# Paths whose errors stay Django's HTML pages: the operators' console is a browser application.
HTML_PREFIXES = ("/admin/",)


def is_database_unavailable(exc: BaseException) -> bool:
    """A connection that failed or broke, as opposed to a query the database refused (a bug: 500)."""
    return isinstance(exc, OperationalError | InterfaceError)


def drop_broken_connections() -> None:
    # Django also does this when a request ends; doing it now means the very next query reconnects,
    # whoever runs it (a test client, a thread that serves several requests).
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def error_body(detail: str) -> dict[str, str]:
    return {"detail": detail}


def unavailable_response(detail: str) -> JsonResponse:
    response = JsonResponse(error_body(detail), status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response["Retry-After"] = str(settings.RETRY_AFTER_SECONDS)
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """DRF's handler, plus the errors DRF would re-raise into an HTML 500 or 400 page."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif is_database_unavailable(exc):
        drop_broken_connections()
        exc = DependencyUnavailable("The database is unavailable; retry later.")
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, DependencyUnavailable):
        response["Retry-After"] = str(settings.RETRY_AFTER_SECONDS)
    return response


def _html(request: HttpRequest) -> bool:
    return request.path.startswith(HTML_PREFIXES)


def bad_request(request: HttpRequest, exception: Exception, *args: Any, **kwargs: Any) -> HttpResponse:
    """handler400: a bad Host header, a body over DATA_UPLOAD_MAX_MEMORY_SIZE, other refused requests."""
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(error_body(str(PayloadTooLarge().detail)), status=413)
    if _html(request):
        return defaults.bad_request(request, exception)
    return JsonResponse(error_body("Bad request."), status=400)


def permission_denied(request: HttpRequest, exception: Exception, *args: Any, **kwargs: Any) -> HttpResponse:
    if _html(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse(error_body("You do not have permission to perform this action."), status=403)


def page_not_found(request: HttpRequest, exception: Exception, *args: Any, **kwargs: Any) -> HttpResponse:
    if _html(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(error_body("Not found."), status=404)


@csrf_exempt
def unknown_path(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any path outside the admin that names no route (the URLconfs' last route): 404 in JSON, whatever the method.

    A route rather than handler404 alone, so that DEBUG does not turn it into Django's technical
    HTML page; exempt from CSRF, so that an unknown path is a 404 for a POST too, not a CSRF 403.
    """
    return JsonResponse(error_body("Not found."), status=404)


def server_error(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """handler500. Django calls it inside its ``except`` block, so the exception is still at hand."""
    exc = sys.exc_info()[1]
    if exc is not None and is_database_unavailable(exc):
        return unavailable_response("The database is unavailable; retry later.")
    if _html(request):
        return defaults.server_error(request)
    return JsonResponse(error_body("Internal server error."), status=500)
