"""List, detail and selection cost a fixed number of queries, whatever the number of models."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from registry.access.accounts import clear_local_access
from registry.models import (
    EndpointType,
    ModelCapability,
    ModelDocument,
    ModelEndpoint,
    ModelParameter,
    ModelRuntime,
    ModelType,
    ModelUsage,
    Provider,
    RegisteredModel,
)
from tests.factories import ProviderSourceFactory
from tests.tokens import platform_token

pytestmark = pytest.mark.django_db

MAX_QUERIES = 8


def grow_registry_to(count: int) -> None:
    """Models with every related row the representation shows (bulk, so that 200 stay fast to create)."""
    start = RegisteredModel.objects.count()
    source = ProviderSourceFactory()
    models = RegisteredModel.objects.bulk_create(
        RegisteredModel(
            name=f"m-{index}",
            display_name=f"M {index}",
            provider=Provider.OLLAMA,
            model_type=ModelType.CHAT,
            source=source,
        )
        for index in range(start, count)
    )
    ModelCapability.objects.bulk_create(
        ModelCapability(model=model, capability=capability, capability_score=0.5 + (model.pk % 5) / 10)
        for model in models
        for capability in ("code", "text")
    )
    ModelParameter.objects.bulk_create(
        ModelParameter(model=model, parameter_name="temperature", default_value=0.7) for model in models
    )
    ModelEndpoint.objects.bulk_create(
        ModelEndpoint(model=model, endpoint_type=EndpointType.REST, endpoint_url="http://h/api", source=source)
        for model in models
    )
    ModelUsage.objects.bulk_create(
        ModelUsage(model=model, model_name=model.name, average_latency=0.5) for model in models
    )
    # Two hosts' runtime rows per model: one loaded, one not.
    other = ProviderSourceFactory()
    now = timezone.now()
    ModelRuntime.objects.bulk_create(
        ModelRuntime(model=model, source=host, loaded=host == source, size_vram=1, checked_at=now)
        for model in models
        for host in (source, other)
    )


def queries_of(client: APIClient, path: str, *, documents: bool = False) -> int:
    # The worst case: nothing cached, not even the caller's access; and, unless ``documents``, no
    # model's document stored either (every body built from rows).
    cache.clear()
    clear_local_access()
    if not documents:
        ModelDocument.objects.all().delete()
    with CaptureQueriesContext(connection) as context:
        response = client.get(path)
    assert response.status_code == 200
    return len(context.captured_queries)


@pytest.mark.parametrize(
    "path",
    [
        "/models?limit=500",
        "/models?capability=code&min_score=0.6&search=m-&limit=500",
        "/models/m-0",
        "/models/m-0/endpoints",
        "/models/select?capability=code&capability=text&limit=100",
    ],
)
def test_reads_make_the_same_number_of_queries_for_5_and_200_models(
    api_client_for: Callable[[str], APIClient], path: str
) -> None:
    client = api_client_for("viewer")
    grow_registry_to(5)
    with_five = queries_of(client, path)
    with_five_stored = queries_of(client, path, documents=True)
    grow_registry_to(200)
    with_two_hundred = queries_of(client, path)
    with_two_hundred_stored = queries_of(client, path, documents=True)
    assert with_five == with_two_hundred
    assert with_two_hundred <= MAX_QUERIES
    assert with_five_stored == with_two_hundred_stored


@pytest.mark.parametrize(
    ("path", "queries"),
    [
        # The caller's access (2, cold here), the page with its count and documents.
        ("/models?limit=500", 3),
        # The caller's access, the model with its document.
        ("/models/m-0", 3),
        # The caller's access, the ranking with the documents.
        ("/models/select?capability=code&capability=text&limit=100", 3),
    ],
)
def test_a_miss_with_every_document_stored_builds_nothing(
    api_client_for: Callable[[str], APIClient], path: str, queries: int
) -> None:
    client = api_client_for("viewer")
    grow_registry_to(200)
    queries_of(client, path)  # stores the documents
    assert queries_of(client, path, documents=True) == queries


def test_a_cached_read_makes_no_query_with_a_platform_token() -> None:
    grow_registry_to(5)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {platform_token('authenticated')}")
    assert client.get("/models").status_code == 200
    with CaptureQueriesContext(connection) as context:
        assert client.get("/models").status_code == 200
    assert context.captured_queries == []


def test_a_cached_read_makes_no_query_with_a_local_token(api_client_for: Callable[[str], APIClient]) -> None:
    grow_registry_to(5)
    client = api_client_for("viewer")
    assert client.get("/models").status_code == 200  # fills the model cache and the user's access
    with CaptureQueriesContext(connection) as context:
        assert client.get("/models").status_code == 200
    assert context.captured_queries == []
