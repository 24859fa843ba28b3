"""The base of every registry viewset: model lookup by id or name, cached reads, strict query and
body validation, and the errors every operation documents.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, ClassVar, cast

from auditlog.middleware import AuditlogMiddleware
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.pagination import BasePagination
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from registry.access.audit import acting_as
from registry.access.roles import Role
from registry.api.authentication import PlatformUser
from registry.api.pagination import StrictLimitOffsetPagination
from registry.api.permissions import ActionRoles
from registry.api.responses import cached_json_response
from registry.api.validators import MAX_BATCH, is_storable_text
from registry.catalog.selectors import model_get
from registry.catalog.services import ModelNameConflict
from registry.models import ModelEndpoint, RegisteredModel
from registry.reads.representations import json_bytes
from registry.telemetry.services import UsageRejected

REF_PARAMETER = OpenApiParameter(
    "ref",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The model's integer id, or its name with '/' (and any reserved character) percent-encoded: "
    "`hf.co%2Fbartowski%2FLlama-3.2-3B-Instruct-GGUF:Q4_K_M`.",
)


ENDPOINT_ID_PARAMETER = OpenApiParameter("endpoint_id", OpenApiTypes.INT, OpenApiParameter.PATH)


CAPABILITY_PARAMETER = OpenApiParameter("capability", OpenApiTypes.STR, OpenApiParameter.PATH)


ERROR_RESPONSES: dict[int | str, Any] = {
    400: OpenApiResponse(description="Invalid input; the body names each offending field."),
    401: OpenApiResponse(description="No token, or a bad one."),
    403: OpenApiResponse(description="The caller's role may not do this."),
    404: OpenApiResponse(description="No such model."),
}


RECORDS_RULE = (
    "All or nothing: any invalid record refuses the batch, with a 400 naming each invalid record's index and "
    "fields (one record: its fields). A record's `timestamp` may not be more than 5 minutes in the future "
    "(by the registry's clock)."
)


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the registry's current state."
    default_code = "conflict"


class ModelPagination(StrictLimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class RegistryViewSet(GenericViewSet):
    """Base of every registry viewset: roles per action, the audit actor, model lookup, error mapping."""

    permission_classes = [ActionRoles]
    action_roles: ClassVar[dict[str, Role]] = {}
    # Actions that write nothing although their method is not safe (a selection query is a POST).
    read_only_actions: ClassVar[frozenset[str]] = frozenset()
    queryset = RegisteredModel.objects.none()
    # A model's sub-resources are small and returned whole; only the list of models is paginated.
    pagination_class: type[BasePagination] | None = None
    _audit_stack: contextlib.ExitStack

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # The stack closes even when the handler raises, so the actor never outlives the request
        # (acting_as restores auditlog's middleware context on exit).
        with contextlib.ExitStack() as stack:
            self._audit_stack = stack
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # A name with NUL or an unpaired surrogate (%00, %ED%A0%80) cannot exist: say so before the database refuses it.
        if not all(is_storable_text(value) for value in kwargs.values()):
            raise NotFound("No such model.")
        if request.method in SAFE_METHODS or self.action in self.read_only_actions:
            return  # reads write nothing to audit; skip the signal wiring (and the user's query) on the hot path
        # DRF authenticates here, after auditlog's middleware saw an anonymous request: name the actor now.
        remote_addr = AuditlogMiddleware._get_remote_addr(request)
        user = request.user
        # type(), not isinstance(): a local token's user is a lazy object that isinstance() would load.
        # Loaded only when an audit entry names it, a write that audits nothing (a usage post, also one
        # kept in the usage buffer while the database is away) does not query the user at all.
        if issubclass(type(user), PlatformUser):
            caller = cast(PlatformUser, user)
            actor = acting_as(
                label=f"platform:{caller.sub}",
                details={"sub": caller.sub, "role": caller.platform_role},
                remote_addr=remote_addr,
            )
        else:
            actor = acting_as(user=user, remote_addr=remote_addr)  # type: ignore[arg-type]
        self._audit_stack.enter_context(actor)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ModelNameConflict):
            exc = Conflict({"name": [str(exc)]})
        elif isinstance(exc, RegisteredModel.DoesNotExist):
            exc = NotFound("No such model.")
        elif isinstance(exc, ModelEndpoint.DoesNotExist):
            exc = NotFound("No such endpoint of this model.")
        elif isinstance(exc, UsageRejected):
            # Shaped as a serializer's batch errors: a list body names the record's index.
            detail: dict[str, Any] = {exc.field: [exc.message]}
            if isinstance(self.request.data, list) and exc.index is not None:
                detail = {str(exc.index): detail}
            exc = serializers.ValidationError(detail)
        return super().handle_exception(exc)

    @property
    def model_ref(self) -> str:
        return str(self.kwargs["ref"])

    def registered_model(self) -> RegisteredModel:
        """The model of the URL, for writes (no prefetch)."""
        return model_get(self.model_ref, related=False)

    def cached(self, kind: str, key: str, build: Callable[[], Any], *, conditional: bool = True) -> HttpResponse:
        """A cached read: the stored bytes on a hit; on a miss ``build()``'s JSON-ready data, rendered once."""
        return cached_json_response(
            self.request, kind=kind, key=key, build=lambda: json_bytes(build()), conditional=conditional
        )

    def validated_query(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def validated_body(self, serializer: serializers.BaseSerializer) -> Any:
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def records_body(self, serializer_class: Any) -> list[dict[str, Any]]:
        """One record or a list of up to 1,000 (all validated before any is written)."""
        data = self.request.data
        many = isinstance(data, list)
        serializer = serializer_class(
            data=data, many=many, **({"max_length": MAX_BATCH, "allow_empty": False} if many else {})
        )
        validated = self.validated_body(serializer)
        return list(validated) if many else [validated]


def records_request(serializer_class: Any, name: str) -> PolymorphicProxySerializer:
    """One record, or a list of up to 1,000 of them."""
    return PolymorphicProxySerializer(
        component_name=name,
        serializers=[serializer_class, serializer_class(many=True, max_length=MAX_BATCH, allow_empty=False)],
        resource_type_field_name=None,
        many=False,
    )
