"""The platform's compatibility profile: the registry's API again under ``/api/v1/``, in the router's shapes.

``/api/v1/`` always serves every route of the API (the versioned prefix is worth having on its
own), and every error under it is JSON, unknown paths included. With ``PLATFORM_API_COMPAT=alfred``
the four routes the platform's model router calls answer as its registry client reads them
(docs/platform.md):

- ``GET /api/v1/models``: a plain list of models (no pagination object), each with ``active``, the
  primary ``endpoint_url`` and ``auth_required`` at the top level and ``capabilities`` in the
  router's mapping;
- ``GET /api/v1/models/{ref}``: one such model;
- ``GET /api/v1/models/{ref}/capabilities``: ``{"code": true, ..., "task_types": [...],
  "content_types": [...], "pricing": {...}}``;
- ``POST /api/v1/models/{ref}/usage``: the router's routing metrics, answered 200, a retried
  ``request_id`` stored once.

What is unknown is left out rather than sent as ``null``: the router's client applies its defaults
to missing keys only, and reads a ``null`` as a value (a null price breaks its cost estimate).

Everything here maps onto the registry's own selectors and services: no table of its own, no
second model. The one thing stored for it is the operator's overrides of task and content types,
in the ``platform`` key of a model's ``details`` (which discovery leaves alone), and the usage
records' ``request_id``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, URLResolver, re_path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from registry.api import evidence, fields, validators
from registry.api.catalog import serializers as catalog_serializers
from registry.api.catalog.serializers import ModelListQuerySerializer
from registry.api.catalog.views import CapabilityViewSet, ModelViewSet
from registry.api.errors import unknown_path
from registry.api.fields import (
    RecordedSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializerMixin,
)
from registry.api.platform import shapes as platform_shapes
from registry.api.platform.shapes import (
    PlatformCapabilitiesSerializer,
    PlatformModelSerializer,
    never_null,
    platform_capabilities,
    platform_model,
)
from registry.api.telemetry.views import Buffered, UsageViewSet
from registry.api.validators import INT32_MAX, MAX_LATENCY_SECONDS, not_in_future, validate_printable
from registry.api.viewsets import ERROR_RESPONSES, REF_PARAMETER, ModelPagination, RegistryViewSet, records_request
from registry.catalog import capabilities as capability_vocabulary
from registry.catalog import credentials
from registry.catalog.selectors import model_get, models_filtered
from registry.models import RegisteredModel
from registry.telemetry.buffering import UsageKind
from registry.telemetry.services import usage_record_idempotent

logger = logging.getLogger(__name__)

PROFILE = "alfred"
PREFIX = "/api/v1/"


def _shape_fingerprint() -> str:
    # The code that writes the router's shapes: this module, the shapes' own, the serializer they extend
    # and what that renders with. Cached bodies and their ETags depend only on the generation, which a deployment
    # does not change: keyed by this too, no body (or 304) of an earlier shape survives a deployment.
    # A module too many costs only rebuilt entries; one too few would serve old shapes.
    digest = hashlib.blake2b(digest_size=8)
    for module in (
        platform_shapes,
        catalog_serializers,
        fields,
        validators,
        evidence,
        credentials,
        capability_vocabulary,
    ):
        digest.update(Path(str(module.__file__)).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


SHAPE = _shape_fingerprint()


def profile_on() -> bool:
    """Whether the router's shapes are served (read per request, so a test can switch it)."""
    return bool(settings.PLATFORM_API_COMPAT == PROFILE)


def _canonical_query(request: Request) -> str:
    params = request.query_params
    return urlencode(sorted((key, value) for key in params for value in params.getlist(key)))


# --- The router's metrics -------------------------------------------------------------------------


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 1}]})
class ModelRefField(serializers.Field):
    """The model a metric is about: its id (number or digits) or its name."""

    default_error_messages = {"invalid": "A model id (integer) or name (string)."}

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, bool) or not isinstance(data, int | str) or (isinstance(data, str) and not data):
            self.fail("invalid")
        return str(data)[:200]

    def to_representation(self, value: Any) -> Any:
        return value


class PlatformUsageSerializer(StrictSerializerMixin, serializers.Serializer):
    """One of the router's routing metrics, mapped onto a usage record (docs/platform.md)."""

    request_id = StrictCharField(max_length=200, required=False, allow_null=True, validators=[validate_printable])
    model_id = ModelRefField(required=False, allow_null=True)
    task_type = StrictCharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    content_types = serializers.ListField(
        child=StrictCharField(max_length=100), max_length=50, required=False, allow_null=True
    )
    content_token_count = StrictIntegerField(min_value=0, required=False, allow_null=True)
    response_token_count = StrictIntegerField(min_value=0, required=False, allow_null=True)
    cached_token_count = StrictIntegerField(
        min_value=0,
        required=False,
        allow_null=True,
        help_text="Of content_token_count, the tokens the provider read from its prompt cache (OpenAI's "
        "cached_tokens, Anthropic's cache_read_input_tokens).",
    )
    latency = StrictFloatField(
        min_value=0.0, max_value=MAX_LATENCY_SECONDS, required=False, allow_null=True, help_text="Seconds."
    )
    success = StrictBooleanField(required=False, default=True)
    error_message = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=10_000)
    cost = StrictFloatField(min_value=0.0, max_value=9999.999999, required=False, allow_null=True, help_text="USD.")
    timestamp = serializers.DateTimeField(required=False, validators=[not_in_future], help_text="Defaults to now.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        counts = [attrs.get("content_token_count"), attrs.get("response_token_count")]
        token_count = None if all(count is None for count in counts) else sum(count or 0 for count in counts)
        if token_count is not None and token_count > INT32_MAX:
            raise ValidationError({"response_token_count": [f"The two token counts add up to more than {INT32_MAX}."]})
        cost = attrs.get("cost")
        cached = attrs.get("cached_token_count")
        split: dict[str, int | None] = {}
        if cached is not None:
            # With a cached count the two counts are input and output tokens (costed apart, cached
            # input at the cache-read price); without one the router's record stays a total, as before.
            if cached > (counts[0] or 0):
                raise ValidationError({"cached_token_count": ["Must not exceed content_token_count."]})
            split = {"input_tokens": counts[0], "output_tokens": counts[1], "cached_input_tokens": cached}
        return {
            "request_id": attrs.get("request_id") or None,
            "model_id": attrs.get("model_id"),
            "timestamp": attrs.get("timestamp"),
            "token_count": token_count,
            **split,
            "request_count": 1,
            "error_count": 0 if attrs.get("success", True) else 1,
            "average_latency": attrs.get("latency"),
            # The router's cost is a float of any precision; the column keeps 6 decimals (micro-dollars).
            "cost": Decimal(repr(cost)).quantize(Decimal("0.000001"))
            if cost is not None and math.isfinite(cost)
            else None,
        }


class PlatformRecordedSerializer(RecordedSerializer):
    duplicates = serializers.IntegerField(help_text="How many repeated a stored request_id (stored once, not again).")
    buffered = serializers.IntegerField(
        required=False,
        help_text="Only while the database is unreachable: records kept in Redis, written when it is back "
        "(a retried request_id among them is then stored once).",
    )


# --- Views ----------------------------------------------------------------------------------------


class PlatformModelViewSet(ModelViewSet):
    """``/api/v1/models`` and ``/api/v1/models/{ref}``: the router's list and model with the profile on."""

    @property
    def pagination_class(self) -> type[BasePagination] | None:  # type: ignore[override]
        """The router's list is a plain list: paginated only with the profile off (the schema reads this too)."""
        return None if profile_on() else ModelPagination

    @extend_schema(
        summary="List models, in the router's shape (PLATFORM_API_COMPAT=alfred)",
        description="A plain list: no pagination object; `limit` and `offset` apply when given.",
        parameters=[ModelListQuerySerializer],
        responses={200: PlatformModelSerializer(many=True), **ERROR_RESPONSES},
    )
    def list(self, request: Request) -> HttpResponse:
        if not profile_on():
            return super().list(request)
        query = self.validated_query(ModelListQuerySerializer)
        limit, offset = query.pop("limit", None), query.pop("offset", None) or 0

        def build() -> list[dict[str, Any]]:
            queryset = models_filtered(**query)
            if limit is not None or offset:
                queryset = queryset[offset : offset + limit] if limit is not None else queryset[offset:]
            return [platform_model(model) for model in queryset]

        return self.cached("platform-list", f"{SHAPE}:{_canonical_query(request)}", build)

    @extend_schema(
        summary="A model, in the router's shape (PLATFORM_API_COMPAT=alfred)",
        parameters=[REF_PARAMETER],
        responses={200: PlatformModelSerializer, **ERROR_RESPONSES},
    )
    def retrieve(self, request: Request, ref: str) -> HttpResponse:
        if not profile_on():
            return super().retrieve(request, ref)
        return self.cached("platform-detail", f"{SHAPE}:{ref}", lambda: platform_model(model_get(ref)))


class PlatformCapabilityViewSet(CapabilityViewSet):
    """``/api/v1/models/{ref}/capabilities``: the router's capability mapping with the profile on."""

    @extend_schema(
        summary="A model's capabilities, in the router's mapping (PLATFORM_API_COMPAT=alfred)",
        parameters=[REF_PARAMETER],
        responses={200: PlatformCapabilitiesSerializer, **ERROR_RESPONSES},
    )
    def list(self, request: Request, ref: str) -> HttpResponse:
        if not profile_on():
            return super().list(request, ref)

        def build() -> dict[str, Any]:
            model = model_get(ref)
            return platform_capabilities(
                model, {row.capability: row.capability_score for row in model.capabilities.all()}
            )

        return self.cached("platform-capabilities", f"{SHAPE}:{ref}", build)


class PlatformUsageViewSet(UsageViewSet):
    """``POST /api/v1/models/{ref}/usage``: the router's metrics with the profile on, answered 200."""

    @extend_schema(
        summary="Record the router's metrics: one or a list of up to 1,000 (PLATFORM_API_COMPAT=alfred)",
        description="Answered 200, a retried `request_id` stored once per model (docs/platform.md); also while the "
        "database is unreachable, when the records are kept in Redis (`buffered`) and written once it is back.",
        parameters=[REF_PARAMETER],
        request=records_request(PlatformUsageSerializer, "PlatformUsageRecords"),
        responses={200: PlatformRecordedSerializer, **ERROR_RESPONSES},
    )
    def create(self, request: Request, ref: str) -> Response:
        if not profile_on():
            return super().create(request, ref)

        def write(model: RegisteredModel, records: list[dict[str, Any]]) -> tuple[int, int]:
            names = {str(model.pk), model.name}
            if any(record["model_id"] is not None and record["model_id"] not in names for record in records):
                # The URL names the model; a body naming another one is a router bug, not a record to file away.
                raise ValidationError(
                    {"model_id": [f"Does not name the model of the URL ({model.pk}, {model.name!r})."]}
                )
            recorded = usage_record_idempotent(model=model, records=records)
            return recorded, len(records) - recorded

        outcome = self.recorded_or_buffered(PlatformUsageSerializer, UsageKind.ROUTER, write)
        # 200, not 201 or 202: the router counts any other status as a lost record, and a retry stored nothing new.
        if isinstance(outcome, Buffered):
            # Kept in Redis while the database is away; a retried request_id is still stored once, at the drain.
            return Response({"recorded": 0, "duplicates": 0, "buffered": outcome.records}, status=status.HTTP_200_OK)
        recorded, duplicates = outcome
        return Response({"recorded": recorded, "duplicates": duplicates}, status=status.HTTP_200_OK)


# --- Routes ---------------------------------------------------------------------------------------

# The API's viewsets and the profile's subclass of each, swapped in under /api/v1/.
PROFILE_VIEWSETS: dict[type, type[RegistryViewSet]] = {
    ModelViewSet: PlatformModelViewSet,
    CapabilityViewSet: PlatformCapabilityViewSet,
    UsageViewSet: PlatformUsageViewSet,
}


def _error(status_code: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status_code)


def json_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """``view``, with the errors Django would answer as HTML pages answered as JSON instead.

    DRF already answers its own errors in JSON; this covers what escapes it (an unexpected
    exception, a request Django finds suspicious), so that nothing under /api/v1/ is an HTML page.
    """

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Http404:
            return _error(404, "Not found.")
        except PermissionDenied:
            return _error(403, "You do not have permission to perform this action.")
        except SuspiciousOperation as exc:
            logger.warning("suspicious request to %s: %s", request.path, exc.__class__.__name__)
            return _error(400, "Bad request.")
        except Exception:
            # Logged like Django's own handler would, since the exception ends here.
            logger.exception("Internal Server Error: %s", request.path)
            return _error(500, "Internal server error.")

    return wrapped


def v1_urlpatterns(sources: list[list[URLPattern | URLResolver]]) -> list[URLPattern | URLResolver]:
    """The routes of ``sources`` again, with the profile's viewsets swapped in and JSON errors, then a JSON 404."""
    patterns: list[URLPattern | URLResolver] = []
    for source in sources:
        for pattern in source:
            if not isinstance(pattern, URLPattern):
                patterns.append(pattern)
                continue
            callback = pattern.callback
            viewset = getattr(callback, "cls", None)
            actions = getattr(callback, "actions", None)
            if viewset in PROFILE_VIEWSETS and actions is not None:
                callback = PROFILE_VIEWSETS[viewset].as_view(actions)
            patterns.append(URLPattern(pattern.pattern, json_errors(callback), pattern.default_args, pattern.name))
    patterns.append(re_path(r"^(?P<path>.*)$", unknown_path, name="v1-not-found"))
    return patterns


def _profile_operation(callback: Any, method: str) -> bool:
    """Whether ``callback`` answers ``method`` with an action of the profile's own (one its viewset overrides)."""
    viewset = getattr(callback, "cls", None)
    action = (getattr(callback, "actions", None) or {}).get(method.lower())
    return viewset in PROFILE_VIEWSETS.values() and action is not None and action in vars(viewset)


def schema_without_v1(endpoints: list[tuple[str, str, str, Any]], **kwargs: Any) -> list[tuple[str, str, str, Any]]:
    """drf-spectacular preprocessing hook: /api/v1/X is /X again, documented once (at /X).

    With the profile on, the operations it answers in the router's shapes are documented at their
    /api/v1/ paths, since they are not /X again.
    """
    return [
        (path, regex, method, callback)
        for path, regex, method, callback in endpoints
        if not path.startswith(PREFIX) or (profile_on() and _profile_operation(callback, method))
    ]


def schema_without_nulls(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the profile's answers (under /api/v1/) never hold null.

    What ``without_unknowns`` leaves out is optional in the schema, and never null, so that a client
    generated from it expects what the router's client reads.
    """
    components = result.setdefault("components", {}).setdefault("schemas", {})
    variants: dict[str, str] = {}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(PREFIX):
            continue
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                if not str(code).startswith("2"):
                    continue
                for media in response.get("content", {}).values():
                    if "schema" in media:
                        media["schema"] = never_null(media["schema"], components, variants)
    return result
