"""The REST API's viewsets: parse the request, call one selector or service, shape the response.

``RegistryViewSet`` carries what every endpoint shares: authentication (the settings' defaults),
per-action roles, the audit actor of the authenticated caller, the model lookup by id or name,
and the mapping of domain errors to HTTP statuses. Model reads (list, detail, selection and the
configuration sub-resources) are served through the generation-keyed cache.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from auditlog.middleware import AuditlogMiddleware
from django.db.models import Count, QuerySet, Window
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.pagination import BasePagination
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from registry import selection, selectors, services
from registry.api import documents as model_documents
from registry.api import representations
from registry.api.authentication import PlatformUser
from registry.api.pagination import StrictLimitOffsetPagination
from registry.api.permissions import ActionRoles
from registry.api.representations import json_bytes
from registry.api.responses import body_key, cached_json_response, canonical_query, list_key, selection_key
from registry.api.serializers import (
    MAX_BATCH,
    CapabilitySerializer,
    EndpointSerializer,
    ExplainedSelectionSerializer,
    ModelListQuerySerializer,
    ModelSelectQuerySerializer,
    ParameterSerializer,
    PerformanceQuerySerializer,
    PerformanceRecordSerializer,
    PerformanceSummarySerializer,
    PriceSerializer,
    RecordedSerializer,
    RegisteredModelSerializer,
    SelectionRequestSerializer,
    SelectionSerializer,
    UsageQuerySerializer,
    UsageRecordSerializer,
    UsageSummarySerializer,
    is_storable_text,
)
from registry.audit import acting_as
from registry.models import ModelEndpoint, RegisteredModel
from registry.roles import Role

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

# Rules across fields or parameters that JSON Schema cannot state: each operation's description says
# them, and breaking one is a 400 naming the field (bench/fuzz_hooks.py relies on exactly this).
ENDPOINTS_RULE = (
    "In `endpoints`, an item with an `id` updates that endpoint, which must be one of this model's "
    "(otherwise a 400 naming `endpoints`); an item without an `id` (or with a null one) adds an endpoint; "
    "the model's endpoints not listed are deleted. Without `endpoints`, they stay as they are."
)
PARAMETER_BOUNDS_RULE = (
    "`min_value` and `max_value`, when given, are of `default_value`'s JSON type (boolean, number, string, "
    "array or object; otherwise a 400 naming the bound). For numbers, `min_value` <= `default_value` <= "
    "`max_value` (otherwise a 400 naming `min_value` or `default_value`)."
)
USAGE_RANGE_RULE = (
    "`to` defaults to now and `from` to 24 hours (hour buckets) or 30 days (day buckets) before `to`. "
    "`from` must be before `to`, and the range at most 93 days of hour buckets or 3,660 days of day "
    "buckets: otherwise a 400 naming `from` (or `to`, when it is too early to have a default `from`)."
)
PERFORMANCE_RANGE_RULE = "When both are given, `from` must be before `to`: otherwise a 400 naming `from`."
RECORDS_RULE = (
    "All or nothing: any invalid record refuses the batch, with a 400 naming each invalid record's index and "
    "fields (one record: its fields). A record's `timestamp` may not be more than 5 minutes in the future "
    "(by the registry's clock)."
)
USAGE_RECORDS_RULE = (
    f"{RECORDS_RULE} A record's `token_count`, when `input_tokens` or `output_tokens` is given, is their sum "
    "(or left out), and the sum is at most 2,147,483,647: otherwise a 400 naming `token_count` (or `input_tokens`)."
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
        if isinstance(user, PlatformUser):
            actor = acting_as(
                label=f"platform:{user.sub}",
                details={"sub": user.sub, "role": user.platform_role},
                remote_addr=remote_addr,
            )
        else:
            actor = acting_as(user=user, remote_addr=remote_addr)  # type: ignore[arg-type]
        self._audit_stack.enter_context(actor)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, services.ModelNameConflict):
            exc = Conflict({"name": [str(exc)]})
        elif isinstance(exc, RegisteredModel.DoesNotExist):
            exc = NotFound("No such model.")
        elif isinstance(exc, ModelEndpoint.DoesNotExist):
            exc = NotFound("No such endpoint of this model.")
        elif isinstance(exc, services.UsageRejected):
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
        return selectors.model_get(self.model_ref, related=False)

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


def _model_representation(model: RegisteredModel) -> dict[str, Any]:
    """One model through its serializer: the write path's responses (the read path uses representations)."""
    return dict(RegisteredModelSerializer(model).data)


def _split_model_write(validated: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float] | None, list[Any] | None]:
    capabilities = validated.pop("capabilities", None)
    endpoints = validated.pop("endpoints", None)
    if endpoints is not None:
        endpoints = [dict(item) for item in endpoints]
    return validated, capabilities, endpoints


@extend_schema_view(
    list=extend_schema(
        summary="List models",
        parameters=[ModelListQuerySerializer],
        responses={200: RegisteredModelSerializer(many=True), **ERROR_RESPONSES},
    ),
    create=extend_schema(
        summary="Register a model",
        description="A new model's `endpoints` are all added: an `id` in one is ignored.",
        request=RegisteredModelSerializer,
        responses={201: RegisteredModelSerializer, 409: OpenApiResponse(description="Name taken."), **ERROR_RESPONSES},
    ),
    retrieve=extend_schema(
        summary="A model", parameters=[REF_PARAMETER], responses={200: RegisteredModelSerializer, **ERROR_RESPONSES}
    ),
    update=extend_schema(
        summary="Replace a model's configuration",
        description=ENDPOINTS_RULE,
        parameters=[REF_PARAMETER],
        request=RegisteredModelSerializer,
        responses={200: RegisteredModelSerializer, 409: OpenApiResponse(description="Name taken."), **ERROR_RESPONSES},
    ),
    partial_update=extend_schema(
        summary="Change some of a model's configuration",
        description=ENDPOINTS_RULE,
        parameters=[REF_PARAMETER],
        request=RegisteredModelSerializer,
        responses={200: RegisteredModelSerializer, 409: OpenApiResponse(description="Name taken."), **ERROR_RESPONSES},
    ),
    destroy=extend_schema(
        summary="Delete a model (its usage and performance history is kept)",
        parameters=[REF_PARAMETER],
        responses={204: None, **ERROR_RESPONSES},
    ),
)
class ModelViewSet(RegistryViewSet):
    serializer_class = RegisteredModelSerializer
    pagination_class = ModelPagination
    read_only_actions = frozenset({"explain"})
    action_roles = {
        "list": Role.VIEWER,
        "retrieve": Role.VIEWER,
        "select": Role.VIEWER,
        "explain": Role.VIEWER,
        "create": Role.EDITOR,
        "update": Role.EDITOR,
        "partial_update": Role.EDITOR,
        "destroy": Role.ADMIN,
    }

    def list(self, request: Request) -> HttpResponse:
        def build() -> bytes:
            query = self.validated_query(ModelListQuerySerializer)
            query.pop("limit", None)
            query.pop("offset", None)
            paginator = self.paginator
            assert isinstance(paginator, ModelPagination)
            models = selectors.models_filtered(**query)
            # LimitOffsetPagination's page, with the count in the page's own query (a window) and
            # each model's stored document beside its id: one query when every document is stored.
            paginator.request = request
            paginator.limit = limit = paginator.get_limit(request) or ModelPagination.default_limit
            paginator.offset = offset = paginator.get_offset(request)
            counted = models.annotate(page_total=Window(Count("pk")))
            rows = list(model_documents.with_documents(counted, "page_total")[offset : offset + limit])
            paginator.count = rows[0]["page_total"] if rows else models.count()
            return representations.list_body(
                paginator.count,
                paginator.get_next_link(),
                paginator.get_previous_link(),
                [body for _, body in model_documents.bodies(rows)],
            )

        return cached_json_response(request, kind="list", key=list_key(request), build=build)

    def retrieve(self, request: Request, ref: str) -> HttpResponse:
        def build() -> bytes:
            rows = list(model_documents.with_documents(selectors.model_lookup(ref)))
            found = model_documents.bodies(rows)
            if not found:
                raise NotFound("No such model.")
            return found[0][1].encode()

        return cached_json_response(request, kind="detail", key=ref, build=build)

    @extend_schema(
        summary="Select models for a task, best first",
        parameters=[ModelSelectQuerySerializer],
        responses={200: SelectionSerializer, **ERROR_RESPONSES},
    )
    def select(self, request: Request) -> HttpResponse:
        def build() -> bytes:
            query = self.validated_query(ModelSelectQuerySerializer)
            capabilities = sorted(set(query.pop("capability")))
            limit = query.pop("limit")
            rows = model_documents.ranked_rows(capabilities=capabilities, limit=limit, **query)
            found = model_documents.bodies(rows)  # without a model deleted since the ranking
            rankings = [
                {
                    "score": row["score"],
                    "capabilities": {name: float(row[f"cap_{i}"]) for i, name in enumerate(capabilities)},
                    "recent_latency": row["recent_latency"],
                    "cost_per_mtok": float(row["cost_per_mtok"]) if row["cost_per_mtok"] is not None else None,
                }
                for row, _ in found
            ]
            return representations.selection_body(rankings, [body for _, body in found])

        return cached_json_response(request, kind="select", key=selection_key(canonical_query(request)), build=build)

    @extend_schema(
        summary="Select models for a task, explained: a ranked chain with fallbacks, and why each other model is out",
        description=(
            "A read, though a POST: nothing is written, and the answer is cached like the other reads (by the "
            "request body, for at most `CACHE_TTL_SECONDS`, and until the next change to a model). `chain` is "
            "ranked: the first entry is the primary, the rest the fallbacks in order, each with the figures "
            "that placed it. Every other model is in `excluded` with the first check it failed, in this order: "
            "exclude list, status, missing capability, score below its minimum, context window, local only, "
            "price ceiling, p95 latency, error rate, and last `limit` (it met every requirement but ranked "
            "after the chain). Recent usage is the last 24 hours; a model without recent usage passes the "
            "latency and error-rate ceilings. Ranking: loaded models first when `prefer_loaded`, then the mean "
            "score on the requested capabilities, then lower p95 latency, then lower mean price, then name."
        ),
        request=SelectionRequestSerializer,
        responses={200: ExplainedSelectionSerializer, **ERROR_RESPONSES},
    )
    def explain(self, request: Request) -> HttpResponse:
        def build() -> dict[str, Any]:
            validated = self.validated_body(SelectionRequestSerializer(data=request.data))
            return selection.select_explained(selection.SelectionRequest.from_validated(validated))

        # Keyed by the body as sent: a key is stored only once its body has validated, and a hit
        # neither parses nor validates it again. Recent usage moves without changing the generation,
        # so the key also names the TTL window it was built in: a figure is never older than the TTL.
        key = selection_key(body_key(request))
        return self.cached("explain", key, build, conditional=False)

    def create(self, request: Request) -> Response:
        validated = dict(self.validated_body(RegisteredModelSerializer(data=request.data)))
        fields, capabilities, endpoints = _split_model_write(validated)
        model = services.model_register(fields=fields, capabilities=capabilities, endpoints=endpoints)
        body = _model_representation(selectors.model_get(str(model.pk)))
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": f"/models/{model.pk}"})

    def update(self, request: Request, ref: str, partial: bool = False) -> Response:
        model = selectors.model_get(ref)
        serializer = RegisteredModelSerializer(model, data=request.data, partial=partial)
        fields, capabilities, endpoints = _split_model_write(dict(self.validated_body(serializer)))
        services.model_update(model=model, fields=fields, capabilities=capabilities, endpoints=endpoints)
        return Response(_model_representation(selectors.model_get(str(model.pk))))

    def partial_update(self, request: Request, ref: str) -> Response:
        return self.update(request, ref, partial=True)

    def destroy(self, request: Request, ref: str) -> Response:
        services.model_delete(model=self.registered_model())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="A model's capabilities",
        parameters=[REF_PARAMETER],
        responses={200: CapabilitySerializer(many=True), **ERROR_RESPONSES},
    ),
    create=extend_schema(
        summary="Add or change a capability (by name)",
        parameters=[REF_PARAMETER],
        request=CapabilitySerializer,
        responses={200: CapabilitySerializer, 201: CapabilitySerializer, **ERROR_RESPONSES},
    ),
    destroy=extend_schema(
        summary="Remove a capability",
        parameters=[REF_PARAMETER, CAPABILITY_PARAMETER],
        responses={204: None, **ERROR_RESPONSES},
    ),
)
class CapabilityViewSet(RegistryViewSet):
    serializer_class = CapabilitySerializer
    action_roles = {"list": Role.VIEWER, "create": Role.EDITOR, "destroy": Role.EDITOR}

    def list(self, request: Request, ref: str) -> HttpResponse:
        rows = lambda: selectors.model_get(ref, related=False).capabilities.all()  # noqa: E731
        return self.cached("capabilities", ref, lambda: list(CapabilitySerializer(rows(), many=True).data))

    def create(self, request: Request, ref: str) -> Response:
        model = self.registered_model()
        validated = self.validated_body(CapabilitySerializer(data=request.data))
        row, created = services.capability_set(
            model=model,
            capability=validated["capability"],
            score=validated["capability_score"],
            evidence=validated.get("evidence", ""),
        )
        return Response(
            CapabilitySerializer(row).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    def destroy(self, request: Request, ref: str, capability: str) -> Response:
        if not services.capability_remove(model=self.registered_model(), capability=capability):
            raise NotFound(f"The model has no capability {capability!r}.")
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="A model's parameters",
        parameters=[REF_PARAMETER],
        responses={200: ParameterSerializer(many=True), **ERROR_RESPONSES},
    ),
    create=extend_schema(
        summary="Add or update a parameter (by parameter_name)",
        description=PARAMETER_BOUNDS_RULE,
        parameters=[REF_PARAMETER],
        request=ParameterSerializer,
        responses={200: ParameterSerializer, 201: ParameterSerializer, **ERROR_RESPONSES},
    ),
)
class ParameterViewSet(RegistryViewSet):
    serializer_class = ParameterSerializer
    action_roles = {"list": Role.VIEWER, "create": Role.EDITOR}

    def list(self, request: Request, ref: str) -> HttpResponse:
        rows = lambda: selectors.model_get(ref, related=False).parameters.all()  # noqa: E731
        return self.cached("parameters", ref, lambda: list(ParameterSerializer(rows(), many=True).data))

    def create(self, request: Request, ref: str) -> Response:
        model = self.registered_model()
        validated = self.validated_body(ParameterSerializer(data=request.data))
        row, created = services.parameter_set(model=model, **validated)
        return Response(
            ParameterSerializer(row).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


@extend_schema_view(
    list=extend_schema(
        summary="A model's endpoints",
        parameters=[REF_PARAMETER],
        responses={200: EndpointSerializer(many=True), **ERROR_RESPONSES},
    ),
    create=extend_schema(
        summary="Add an endpoint",
        parameters=[REF_PARAMETER],
        request=EndpointSerializer,
        responses={201: EndpointSerializer, **ERROR_RESPONSES},
    ),
    retrieve=extend_schema(
        summary="An endpoint",
        parameters=[REF_PARAMETER, ENDPOINT_ID_PARAMETER],
        responses={200: EndpointSerializer, **ERROR_RESPONSES},
    ),
    update=extend_schema(
        summary="Replace an endpoint (credentials not given are kept)",
        parameters=[REF_PARAMETER, ENDPOINT_ID_PARAMETER],
        request=EndpointSerializer,
        responses={200: EndpointSerializer, **ERROR_RESPONSES},
    ),
    partial_update=extend_schema(
        summary="Change an endpoint",
        parameters=[REF_PARAMETER, ENDPOINT_ID_PARAMETER],
        request=EndpointSerializer,
        responses={200: EndpointSerializer, **ERROR_RESPONSES},
    ),
    destroy=extend_schema(
        summary="Delete an endpoint",
        parameters=[REF_PARAMETER, ENDPOINT_ID_PARAMETER],
        responses={204: None, **ERROR_RESPONSES},
    ),
)
class EndpointViewSet(RegistryViewSet):
    serializer_class = EndpointSerializer
    action_roles = {
        "list": Role.VIEWER,
        "retrieve": Role.VIEWER,
        "create": Role.EDITOR,
        "update": Role.EDITOR,
        "partial_update": Role.EDITOR,
        "destroy": Role.EDITOR,
    }

    def endpoint(self, endpoint_id: str) -> ModelEndpoint:
        return ModelEndpoint.objects.select_related("source").get(pk=int(endpoint_id), model=self.registered_model())

    def list(self, request: Request, ref: str) -> HttpResponse:
        return self.cached(
            "endpoints",
            ref,
            lambda: list(
                EndpointSerializer(
                    selectors.model_get(ref, related=False).endpoints.select_related("source"), many=True
                ).data
            ),
        )

    def retrieve(self, request: Request, ref: str, endpoint_id: str) -> Response:
        return Response(EndpointSerializer(self.endpoint(endpoint_id)).data)

    def create(self, request: Request, ref: str) -> Response:
        model = self.registered_model()
        validated = dict(self.validated_body(EndpointSerializer(data=request.data)))
        validated.pop("id", None)
        endpoint = services.endpoint_create(model=model, **validated)
        return Response(EndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, ref: str, endpoint_id: str, partial: bool = False) -> Response:
        endpoint = self.endpoint(endpoint_id)
        validated = dict(self.validated_body(EndpointSerializer(endpoint, data=request.data, partial=partial)))
        validated.pop("id", None)
        if not partial:
            # A full replacement resets what it leaves out, except credentials (write-only: the client never saw them).
            for field in ("endpoint_url", "auth_type", "headers"):
                validated.setdefault(field, None)
        endpoint = services.endpoint_update(endpoint=endpoint, **validated)
        return Response(EndpointSerializer(endpoint).data)

    def partial_update(self, request: Request, ref: str, endpoint_id: str) -> Response:
        return self.update(request, ref, endpoint_id, partial=True)

    def destroy(self, request: Request, ref: str, endpoint_id: str) -> Response:
        services.endpoint_delete(endpoint=self.endpoint(endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="A model's price history, newest first",
        parameters=[REF_PARAMETER],
        responses={200: PriceSerializer(many=True), **ERROR_RESPONSES},
    ),
    create=extend_schema(
        summary="Add a price from a moment on (or correct the one of that moment); past costs stay as stored",
        parameters=[REF_PARAMETER],
        request=PriceSerializer,
        responses={200: PriceSerializer, 201: PriceSerializer, **ERROR_RESPONSES},
    ),
)
class PriceViewSet(RegistryViewSet):
    serializer_class = PriceSerializer
    action_roles = {"list": Role.VIEWER, "create": Role.EDITOR}

    def list(self, request: Request, ref: str) -> Response:
        model_id, _ = selectors.model_key_get(ref)
        prices = selectors.model_prices(model_id=model_id)
        context = {"in_force_id": selectors.price_in_force_id(prices)}
        return Response(PriceSerializer(prices, many=True, context=context).data)

    def create(self, request: Request, ref: str) -> Response:
        model = self.registered_model()
        validated = self.validated_body(PriceSerializer(data=request.data))
        row, created = services.price_set(model=model, **validated)
        context = {"in_force_id": selectors.price_in_force_id(selectors.model_prices(model_id=model.pk))}
        return Response(
            PriceSerializer(row, context=context).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _usage_figures(figures: dict[str, Any]) -> dict[str, Any]:
    # JSON-native values, shaped as UsageSummarySerializer documents them: the encoder then needs no
    # per-value fallback, and a serializer pass over 720 hourly buckets would cost more than the query.
    return {**figures, "cost": float(figures["cost"])}


def records_request(serializer_class: Any, name: str) -> PolymorphicProxySerializer:
    """One record, or a list of up to 1,000 of them."""
    return PolymorphicProxySerializer(
        component_name=name,
        serializers=[serializer_class, serializer_class(many=True, max_length=MAX_BATCH, allow_empty=False)],
        resource_type_field_name=None,
        many=False,
    )


@extend_schema_view(
    create=extend_schema(
        summary="Record usage: one record or a list of up to 1,000 (all or nothing)",
        description=USAGE_RECORDS_RULE,
        parameters=[REF_PARAMETER],
        request=records_request(UsageRecordSerializer, "UsageRecords"),
        responses={201: RecordedSerializer, **ERROR_RESPONSES},
    ),
)
class UsageViewSet(RegistryViewSet):
    serializer_class = UsageRecordSerializer
    action_roles = {"summary": Role.VIEWER, "create": Role.SERVICE}

    @extend_schema(
        summary="Usage statistics: totals and time buckets",
        description=USAGE_RANGE_RULE,
        parameters=[REF_PARAMETER, UsageQuerySerializer],
        responses={200: UsageSummarySerializer, **ERROR_RESPONSES},
    )
    def summary(self, request: Request, ref: str) -> Response:
        query = self.validated_query(UsageQuerySerializer)
        model_id, name = selectors.model_key_get(ref)
        summary = selectors.usage_summary(model_id=model_id, **query)
        return Response(
            {
                "model": name,
                "bucket": summary["bucket"],
                "from": _iso(summary["from"]),
                "to": _iso(summary["to"]),
                "totals": _usage_figures(summary["totals"]),
                "buckets": [{**_usage_figures(b), "start": _iso(b["start"])} for b in summary["buckets"]],
            }
        )

    def create(self, request: Request, ref: str) -> Response:
        model = self.registered_model()
        records = self.records_body(UsageRecordSerializer)
        recorded = services.usage_record_batch(model=model, records=records)
        return Response({"recorded": recorded}, status=status.HTTP_201_CREATED)


@extend_schema_view(
    create=extend_schema(
        summary="Record performance: one record or a list of up to 1,000 (all or nothing)",
        description=RECORDS_RULE,
        parameters=[REF_PARAMETER],
        request=records_request(PerformanceRecordSerializer, "PerformanceRecords"),
        responses={201: RecordedSerializer, **ERROR_RESPONSES},
    ),
)
class PerformanceViewSet(RegistryViewSet):
    serializer_class = PerformanceRecordSerializer
    action_roles = {"summary": Role.VIEWER, "create": Role.SERVICE}

    @extend_schema(
        summary="Performance records and per-metric count/avg/min/max",
        description=PERFORMANCE_RANGE_RULE,
        parameters=[REF_PARAMETER, PerformanceQuerySerializer],
        responses={200: PerformanceSummarySerializer, **ERROR_RESPONSES},
    )
    def summary(self, request: Request, ref: str) -> Response:
        query = self.validated_query(PerformanceQuerySerializer)
        limit = query.pop("limit")
        model_id, name = selectors.model_key_get(ref)
        records: QuerySet[Any] = selectors.performance_records(
            model_id=model_id,
            metric_name=query.get("metric_name"),
            task_category=query.get("task_category"),
            start=query.get("from"),
            end=query.get("to"),
        )
        body = {"model": name, "records": records[:limit], "summary": selectors.performance_summary(records)}
        return Response(PerformanceSummarySerializer(body).data)

    def create(self, request: Request, ref: str) -> Response:
        model = self.registered_model()
        records = self.records_body(PerformanceRecordSerializer)
        created = services.performance_record_batch(model=model, records=records)
        return Response({"recorded": len(created)}, status=status.HTTP_201_CREATED)
