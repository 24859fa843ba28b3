"""API errors beyond DRF's own, in a module that imports no view (the parser needs them while DRF loads)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self) -> None:
        super().__init__(f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")


class DependencyUnavailable(APIException):
    """A dependency the request needs (the database, the broker) cannot be reached: 503 with Retry-After."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A dependency of the service is unavailable; retry later."
    default_code = "unavailable"
