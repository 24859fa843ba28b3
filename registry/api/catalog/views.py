"""The catalog's viewsets: models (with their selection), capabilities, parameters, endpoints, prices.

Each parses the request, calls one selector or service, shapes the response; ``RegistryViewSet``
(``registry.api.viewsets``) carries what every endpoint shares. Model reads (list, detail,
selection and the configuration sub-resources) are served through the generation-keyed cache.

Over 400 lines on purpose: the five viewsets of one model and its parts share the model lookup
and the write helpers, and read best side by side (the telemetry's are in ``api/telemetry``).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Window
from django.http import HttpResponse
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from registry.access.roles import Role
from registry.api.catalog.serializers import (
    CapabilitySerializer,
    EndpointSerializer,
    ModelListQuerySerializer,
    ParameterSerializer,
    PriceSerializer,
    RegisteredModelSerializer,
)
from registry.api.responses import body_key, cached_json_response, canonical_query, list_key, selection_key
from registry.api.selection.serializers import (
    ExplainedSelectionSerializer,
    ModelSelectQuerySerializer,
    SelectionRequestSerializer,
    SelectionSerializer,
)
from registry.api.viewsets import (
    CAPABILITY_PARAMETER,
    ENDPOINT_ID_PARAMETER,
    ERROR_RESPONSES,
    REF_PARAMETER,
    ModelPagination,
    RegistryViewSet,
)
from registry.catalog.prices import price_set
from registry.catalog.selectors import (
    model_get,
    model_key_get,
    model_lookup,
    model_prices,
    models_filtered,
    price_in_force_id,
)
from registry.catalog.services import (
    capability_remove,
    capability_set,
    endpoint_create,
    endpoint_delete,
    endpoint_update,
    model_delete,
    model_register,
    model_update,
    parameter_set,
)
from registry.models import ModelEndpoint, RegisteredModel
from registry.reads import bodies as model_documents
from registry.reads import representations
from registry.selection import explain as selection

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
            models = models_filtered(**query)
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
            rows = list(model_documents.with_documents(model_lookup(ref)))
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
                    "fallback_only": bool(row["alerting"]),
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
            "after the chain). A model with an open error-rate or unavailability alert ranks after the others "
            "(`open_alerts`, `fallback_only`). Recent usage is the last 24 hours for the p95 latency and the "
            "error-rate alert's window (`ALERT_WINDOW_MINUTES`) for the error rate; a model without usage passes the "
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
        model = model_register(fields=fields, capabilities=capabilities, endpoints=endpoints)
        body = _model_representation(model_get(str(model.pk)))
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": f"/models/{model.pk}"})

    def update(self, request: Request, ref: str, partial: bool = False) -> Response:
        model = model_get(ref)
        serializer = RegisteredModelSerializer(model, data=request.data, partial=partial)
        fields, capabilities, endpoints = _split_model_write(dict(self.validated_body(serializer)))
        model_update(model=model, fields=fields, capabilities=capabilities, endpoints=endpoints)
        return Response(_model_representation(model_get(str(model.pk))))

    def partial_update(self, request: Request, ref: str) -> Response:
        return self.update(request, ref, partial=True)

    def destroy(self, request: Request, ref: str) -> Response:
        model_delete(model=self.registered_model())
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
        rows = lambda: model_get(ref, related=False).capabilities.all()  # noqa: E731
        return self.cached("capabilities", ref, lambda: list(CapabilitySerializer(rows(), many=True).data))

    def create(self, request: Request, ref: str) -> Response:
        model = self.registered_model()
        validated = self.validated_body(CapabilitySerializer(data=request.data))
        row, created = capability_set(
            model=model,
            capability=validated["capability"],
            score=validated["capability_score"],
            evidence=validated.get("evidence", ""),
        )
        return Response(
            CapabilitySerializer(row).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    def destroy(self, request: Request, ref: str, capability: str) -> Response:
        if not capability_remove(model=self.registered_model(), capability=capability):
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
        rows = lambda: model_get(ref, related=False).parameters.all()  # noqa: E731
        return self.cached("parameters", ref, lambda: list(ParameterSerializer(rows(), many=True).data))

    def create(self, request: Request, ref: str) -> Response:
        model = self.registered_model()
        validated = self.validated_body(ParameterSerializer(data=request.data))
        row, created = parameter_set(model=model, **validated)
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
        model = self.registered_model()
        endpoint = ModelEndpoint.objects.select_related("source").get(pk=int(endpoint_id), model=model)
        endpoint.model = model  # loaded: its audit entries name the model, not "model 51"
        return endpoint

    def list(self, request: Request, ref: str) -> HttpResponse:
        return self.cached(
            "endpoints",
            ref,
            lambda: list(
                EndpointSerializer(model_get(ref, related=False).endpoints.select_related("source"), many=True).data
            ),
        )

    def retrieve(self, request: Request, ref: str, endpoint_id: str) -> Response:
        return Response(EndpointSerializer(self.endpoint(endpoint_id)).data)

    def create(self, request: Request, ref: str) -> Response:
        model = self.registered_model()
        validated = dict(self.validated_body(EndpointSerializer(data=request.data)))
        validated.pop("id", None)
        endpoint = endpoint_create(model=model, **validated)
        return Response(EndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, ref: str, endpoint_id: str, partial: bool = False) -> Response:
        endpoint = self.endpoint(endpoint_id)
        validated = dict(self.validated_body(EndpointSerializer(endpoint, data=request.data, partial=partial)))
        validated.pop("id", None)
        if not partial:
            # A full replacement resets what it leaves out, except credentials (write-only: the client never saw them).
            for field in ("endpoint_url", "auth_type", "headers"):
                validated.setdefault(field, None)
        endpoint = endpoint_update(endpoint=endpoint, **validated)
        return Response(EndpointSerializer(endpoint).data)

    def partial_update(self, request: Request, ref: str, endpoint_id: str) -> Response:
        return self.update(request, ref, endpoint_id, partial=True)

    def destroy(self, request: Request, ref: str, endpoint_id: str) -> Response:
        endpoint_delete(endpoint=self.endpoint(endpoint_id))
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
        model_id, _ = model_key_get(ref)
        prices = model_prices(model_id=model_id)
        context = {"in_force_id": price_in_force_id(prices)}
        return Response(PriceSerializer(prices, many=True, context=context).data)

    def create(self, request: Request, ref: str) -> Response:
        model = self.registered_model()
        validated = self.validated_body(PriceSerializer(data=request.data))
        row, created = price_set(model=model, **validated)
        context = {"in_force_id": price_in_force_id(model_prices(model_id=model.pk))}
        return Response(
            PriceSerializer(row, context=context).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
