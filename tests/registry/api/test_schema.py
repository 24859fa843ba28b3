"""The OpenAPI schema validates, and what the endpoints return matches what it says."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.core.management import call_command
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from registry.models import Alert, AlertKind, ModelRuntime, StatusEventKind, StatusEventOrigin
from registry.telemetry.availability import status_event, status_events_record
from tests.factories import (
    ModelCapabilityFactory,
    ModelEndpointFactory,
    ModelParameterFactory,
    ModelPerformanceFactory,
    ModelUsageFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db

REF = "hf.co%2Fbartowski%2FLlama-3.2-3B-Instruct-GGUF:Q4_K_M"


def test_schema_validates_without_warnings(tmp_path: Path) -> None:
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/models/{ref}/usage" in (tmp_path / "schema.yaml").read_text()


def as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects as JSON Schema: ``nullable`` becomes a null alternative, boolean
    ``exclusiveMinimum``/``exclusiveMaximum`` become numeric bounds, and objects with declared
    properties admit no others (so an undocumented field fails the test)."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: as_json_schema(value) for key, value in node.items()}
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(converted.get(exclusive), bool) and converted.pop(exclusive):
            converted[exclusive] = converted.pop(bound)
    if "properties" in converted and "additionalProperties" not in converted:
        converted["additionalProperties"] = False
    if converted.pop("nullable", False):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-any-return]


def assert_matches_schema(openapi: dict[str, Any], method: str, template: str, status: int, body: Any) -> None:
    operation = openapi["paths"][template][method]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    document = {**as_json_schema(schema), "components": as_json_schema(openapi["components"])}
    jsonschema.validate(body, document, cls=jsonschema.Draft202012Validator)


@pytest.fixture
def populated() -> dict[str, int]:
    source = ProviderSourceFactory(name="ollama-gpu")
    model = RegisteredModelFactory(
        name="hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M",
        version="Q4_K_M",
        description="Quantised Llama",
        input_cost_per_mtok="0.10",
        source=source,
        details={"family": "llama"},
    )
    # Loaded on one host, checked and not loaded on another: every runtime field, null and not.
    now = timezone.now()
    ModelRuntime.objects.create(
        model=model, source=source, loaded=True, size_vram=3 * 2**30, expires_at=now, checked_at=now
    )
    ModelRuntime.objects.create(model=model, source=ProviderSourceFactory(), loaded=False, checked_at=now)
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.8)
    ModelParameterFactory(model=model)
    endpoint = ModelEndpointFactory(model=model, api_key="sk-x", headers={"X-A": "b"})
    ModelUsageFactory(model=model, cost="0.25")
    # Its availability history: a status with a source and a run, a host loading it, an alert (null and not).
    status_events_record(
        [
            status_event(
                model_id=model.pk,
                kind=StatusEventKind.STATUS,
                state="unavailable",
                origin=StatusEventOrigin.DISCOVERY,
                cause="gone",
                at=now - timedelta(hours=2),
                source_id=source.pk,
                run_id=3,
            ),
            status_event(
                model_id=model.pk,
                kind=StatusEventKind.RUNTIME,
                state="loaded",
                origin=StatusEventOrigin.RUNTIME,
                cause="loaded",
                at=now - timedelta(hours=1),
                source_id=source.pk,
            ),
            status_event(
                model_id=model.pk,
                kind=StatusEventKind.ALERT,
                state="opened",
                origin=StatusEventOrigin.ALERT_CHECK,
                cause="unavailable for 40 min",
                at=now - timedelta(minutes=20),
                alert_kind="unavailable",
                alert_id=9,
            ),
        ]
    )
    ModelPerformanceFactory(model=model, task_category="chat", sample_size=10)
    # A second model for GET /models/compare, with an open alert.
    other = RegisteredModelFactory(name="gpt-4o-mini", provider="openai", input_cost_per_mtok="0.15")
    Alert.objects.create(kind=AlertKind.ERROR_RATE, model=other, message="error rate 27%")
    return {"endpoint": endpoint.pk, "other": other.pk}


CASES: list[tuple[str, str, str, Any, int]] = [
    ("get", "/models", "/models", None, 200),
    ("get", "/models/select", "/models/select?capability=code", None, 200),
    ("get", "/models/compare", f"/models/compare?models={REF},{{other}}&date=2026-01-01", None, 200),
    (
        "post",
        "/models/select",
        "/models/select",
        {"capabilities": {"code": 0.5}, "max_cost_per_mtok": {"input": 5}, "limit": 1},
        200,
    ),
    ("get", "/models/{ref}", f"/models/{REF}", None, 200),
    ("patch", "/models/{ref}", f"/models/{REF}", {"description": "new"}, 200),
    ("get", "/models/{ref}/capabilities", f"/models/{REF}/capabilities", None, 200),
    (
        "post",
        "/models/{ref}/capabilities",
        f"/models/{REF}/capabilities",
        {"capability": "text", "capability_score": 1},
        201,
    ),
    ("get", "/models/{ref}/parameters", f"/models/{REF}/parameters", None, 200),
    (
        "post",
        "/models/{ref}/parameters",
        f"/models/{REF}/parameters",
        {"parameter_name": "seed", "default_value": 1},
        201,
    ),
    ("get", "/models/{ref}/endpoints", f"/models/{REF}/endpoints", None, 200),
    ("post", "/models/{ref}/endpoints", f"/models/{REF}/endpoints", {"endpoint_type": "local"}, 201),
    ("get", "/models/{ref}/endpoints/{endpoint_id}", f"/models/{REF}/endpoints/{{endpoint}}", None, 200),
    (
        "put",
        "/models/{ref}/endpoints/{endpoint_id}",
        f"/models/{REF}/endpoints/{{endpoint}}",
        {"endpoint_type": "rest"},
        200,
    ),
    ("get", "/models/{ref}/prices", f"/models/{REF}/prices", None, 200),
    (
        "post",
        "/models/{ref}/prices",
        f"/models/{REF}/prices",
        {"input_per_mtok": 1, "output_per_mtok": 2, "effective_from": "2026-01-01T00:00:00Z"},
        201,
    ),
    ("get", "/models/{ref}/usage", f"/models/{REF}/usage", None, 200),
    ("post", "/models/{ref}/usage", f"/models/{REF}/usage", [{"token_count": 1}], 201),
    ("get", "/models/{ref}/performance", f"/models/{REF}/performance", None, 200),
    ("get", "/models/{ref}/availability", f"/models/{REF}/availability", None, 200),
    ("post", "/models/{ref}/performance", f"/models/{REF}/performance", {"metric_name": "x", "metric_value": 1}, 201),
    (
        "post",
        "/models",
        "/models",
        {"name": "gpt-4o", "display_name": "GPT-4o", "provider": "openai", "model_type": "chat"},
        201,
    ),
    (
        "put",
        "/models/{ref}",
        f"/models/{REF}",
        {"name": "renamed", "display_name": "R", "provider": "ollama", "model_type": "chat", "capabilities": {}},
        200,
    ),
]


@pytest.mark.parametrize(
    ("method", "template", "path", "body", "status"), CASES, ids=[f"{c[0].upper()} {c[1]}" for c in CASES]
)
def test_responses_match_the_schema(
    api_client_for: Callable[[str], APIClient],
    openapi: dict[str, Any],
    populated: dict[str, int],
    method: str,
    template: str,
    path: str,
    body: Any,
    status: int,
) -> None:
    response = getattr(api_client_for("admin"), method)(path.format(**populated), body, format="json")
    assert response.status_code == status
    assert_matches_schema(openapi, method, template, status, response.json())


def test_every_documented_model_operation_is_exercised_above(openapi: dict[str, Any]) -> None:
    documented = {
        (method, path)
        for path, operations in openapi["paths"].items()
        for method in operations
        # The REST API of models; /auth is simplejwt's, /audit and the like belong to operations.
        if path.startswith("/models")
    }
    exercised = {(method, template) for method, template, *_ in CASES}
    # Deletions answer 204 with no body: nothing to validate.
    deletions = {(method, path) for method, path in documented if method == "delete"}
    # PATCH of an endpoint shares PUT's serializer and response.
    assert documented - exercised - deletions == {("patch", "/models/{ref}/endpoints/{endpoint_id}")}


def test_docs_page_serves_its_assets_from_this_service(
    api_client_for: Callable[[str], APIClient], settings: Any
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    page = api_client_for("viewer").get("/api/docs").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn.jsdelivr.net" not in page
