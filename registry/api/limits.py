"""Request limits enforced by the application, so that their errors are JSON whichever WSGI server runs it.

The production server (granian) answers a request line or header section larger than its HTTP/1
buffer (~400 KB) or more than 100 header fields with an empty-bodied 414/431 that no application
can change. These limits sit well below the server's, so in practice it is this middleware that
refuses, with the documented JSON error shape. Limits are documented in docs/RELIABILITY.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from registry.api.errors import error_body


class RequestLimitsMiddleware:
    """414 for a long URI, 431 for large or many headers, 413 for a declared body over the limit: before any work."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self.refusal(request)
        return refusal if refusal is not None else self.get_response(request)

    @staticmethod
    def refusal(request: HttpRequest) -> JsonResponse | None:
        return refusal_of(request.META)


def refusal_of(meta: Mapping[str, Any]) -> JsonResponse | None:
    """The refusal a request's WSGI environ earns, or None; also asked by the cached-read front (fast_reads)."""
    uri_bytes = len(meta.get("PATH_INFO", "")) + len(meta.get("QUERY_STRING", ""))
    if uri_bytes > settings.MAX_URI_BYTES:
        return JsonResponse(error_body(f"The URI is longer than {settings.MAX_URI_BYTES} bytes."), status=414)
    headers = [(key, value) for key, value in meta.items() if key.startswith("HTTP_")]
    header_bytes = sum(len(key) + len(str(value)) for key, value in headers)
    if len(headers) > settings.MAX_HEADER_FIELDS or header_bytes > settings.MAX_HEADER_BYTES:
        return JsonResponse(
            error_body(
                f"The request's headers exceed {settings.MAX_HEADER_FIELDS} fields or "
                f"{settings.MAX_HEADER_BYTES} bytes."
            ),
            status=431,
        )
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return JsonResponse(error_body("Content-Length is not a number."), status=400)
    if declared > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return JsonResponse(
            error_body(f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."),
            status=413,
        )
    return None
