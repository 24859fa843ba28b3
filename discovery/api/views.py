"""``/sources``: provider sources (admins only), their runs, and "discover now"."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from discovery.api.serializers import DiscoveryQueuedSerializer, DiscoveryRunSerializer, ProviderSourceSerializer
from discovery.models import ProviderSource
from discovery.selectors import runs_recent, sources_all
from discovery.services import SourceNameConflict, source_delete, source_save
from discovery.tasks import BrokerUnavailable, discovery_queue_now
from registry.access.roles import Role
from registry.api.exceptions import DependencyUnavailable
from registry.api.fields import QuerySerializer
from registry.api.viewsets import ERROR_RESPONSES, Conflict, RegistryViewSet

ERRORS: dict[int | str, Any] = {**ERROR_RESPONSES, 404: OpenApiResponse(description="No such source.")}
# A write that names a source as another is named: the body is the Error shape, {"name": [message]}.
NAME_TAKEN: dict[int | str, Any] = {409: OpenApiResponse(description="Another source has this name.")}


class RunsQuerySerializer(QuerySerializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=500, default=50, help_text="How many runs, newest first (1-500, default 50)."
    )


@extend_schema_view(
    list=extend_schema(summary="List provider sources", responses={200: ProviderSourceSerializer(many=True), **ERRORS}),
    create=extend_schema(
        summary="Add a provider source", responses={201: ProviderSourceSerializer, **ERRORS, **NAME_TAKEN}
    ),
    retrieve=extend_schema(summary="One provider source", responses={200: ProviderSourceSerializer, **ERRORS}),
    update=extend_schema(
        summary="Replace a provider source", responses={200: ProviderSourceSerializer, **ERRORS, **NAME_TAKEN}
    ),
    partial_update=extend_schema(
        summary="Change a provider source", responses={200: ProviderSourceSerializer, **ERRORS, **NAME_TAKEN}
    ),
    destroy=extend_schema(summary="Delete a provider source (its models stay)", responses={204: None, **ERRORS}),
)
class ProviderSourceViewSet(RegistryViewSet):
    """Every write goes through ``discovery.services``, so each source's beat schedule follows it."""

    serializer_class = ProviderSourceSerializer
    queryset = ProviderSource.objects.none()  # type: ignore[assignment]
    action_roles: ClassVar[dict[str, Role]] = {
        action: Role.ADMIN
        for action in ("list", "create", "retrieve", "update", "partial_update", "destroy", "discover", "runs")
    }

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ProviderSource.DoesNotExist):
            exc = NotFound("No such source.")
        elif isinstance(exc, SourceNameConflict):
            exc = Conflict({"name": [str(exc)]})
        elif isinstance(exc, DjangoValidationError):
            # The model's own validation (full_clean in the service): still a 400 naming the field.
            exc = ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
            )
        return super().handle_exception(exc)

    def source(self) -> ProviderSource:
        return ProviderSource.objects.get(pk=self.kwargs["source_id"])

    def list(self, request: Request) -> Response:
        return Response(ProviderSourceSerializer(sources_all(), many=True).data)

    def create(self, request: Request) -> Response:
        serializer = ProviderSourceSerializer(data=request.data)
        self.validated_body(serializer)
        source = source_save(source=serializer.apply(ProviderSource()))
        return Response(ProviderSourceSerializer(source).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, source_id: int) -> Response:
        return Response(ProviderSourceSerializer(self.source()).data)

    def update(self, request: Request, source_id: int, partial: bool = False) -> Response:
        source = self.source()
        serializer = ProviderSourceSerializer(source, data=request.data, partial=partial)
        self.validated_body(serializer)
        source = source_save(source=serializer.apply(source))
        return Response(ProviderSourceSerializer(source).data)

    def partial_update(self, request: Request, source_id: int) -> Response:
        return self.update(request, source_id, partial=True)

    def destroy(self, request: Request, source_id: int) -> Response:
        source_delete(source=self.source())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Queue a discovery of this source now",
        request=None,
        responses={202: DiscoveryQueuedSerializer, **ERRORS},
    )
    def discover(self, request: Request, source_id: int) -> Response:
        source = self.source()
        try:
            discovery_queue_now(source=source, trigger="manual")
        except BrokerUnavailable as exc:
            raise DependencyUnavailable("The task broker is unavailable: nothing was queued; retry later.") from exc
        return Response({"queued": True, "source_name": source.name}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="This source's most recent discovery runs",
        parameters=[RunsQuerySerializer],
        responses={200: DiscoveryRunSerializer(many=True), **ERRORS},
    )
    def runs(self, request: Request, source_id: int) -> Response:
        limit = self.validated_query(RunsQuerySerializer)["limit"]
        return Response(DiscoveryRunSerializer(runs_recent(source=self.source(), limit=limit), many=True).data)
