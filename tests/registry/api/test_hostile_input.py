"""Input the database cannot take, or values at the edges of their types: a 4xx naming the problem, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from registry.models import ModelEndpoint, ModelParameter, ModelPerformance, RegisteredModel
from tests.factories import RegisteredModelFactory

pytestmark = pytest.mark.django_db

MODEL = {"display_name": "x", "provider": "ollama", "model_type": "chat"}


@pytest.fixture
def client(api_client_for: Callable[[str], APIClient]) -> APIClient:
    RegisteredModelFactory(name="gpt-4o")
    client = api_client_for("admin")
    client.raise_request_exception = False  # a 500 must show as a status, not as the test's exception
    return client


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/models/99999999999999999999999", 404),
        ("get", "/models/gpt-4o/endpoints/99999999999999999999999", 404),
        ("get", "/models/%00", 404),
        ("get", "/models/a%00b/capabilities", 404),
        ("get", "/models/%ED%A0%80", 404),
        ("get", "/models/%C2%B2/endpoints/1", 404),  # "²" is a digit to str.isdigit(), not to int()
        ("delete", "/models/gpt-4o/capabilities/a%00", 404),
        ("get", "/models?offset=99999999999999999999999", 400),
        ("get", "/models?search=%00", 400),
        ("get", "/models?capability=code&min_score=nan", 400),
        ("get", "/models/select?capability=code&min_score=inf", 400),
        ("get", "/models/gpt-4o/usage?to=0001-01-01T00:00:00Z", 400),
        ("get", "/models/gpt-4o/usage?from=0001-01-01T00:00:00Z&to=0001-01-02T00:00:00Z", 200),
        ("get", "/models/gpt-4o/performance?from=0001-01-01T00:00:00Z&to=9999-12-31T00:00:00Z", 200),
    ],
)
def test_hostile_paths_and_queries(client: APIClient, method: str, path: str, status: int) -> None:
    assert getattr(client, method)(path).status_code == status


@pytest.mark.parametrize(
    ("path", "body", "field", "table"),
    [
        ("/models", {**MODEL, "name": "x", "details": {"a": "\u0000"}}, "details", RegisteredModel),
        ("/models", {**MODEL, "name": "y", "description": "\ud800"}, "description", RegisteredModel),
        ("/models", {**MODEL, "name": "z", "details": {"\u0000": 1}}, "details", RegisteredModel),
        (
            "/models/gpt-4o/parameters",
            {"parameter_name": "p", "default_value": ["\u0000"]},
            "default_value",
            ModelParameter,
        ),
        (
            "/models/gpt-4o/performance",
            {"metric_name": "m", "metric_value": 1, "task_category": "\ud800"},
            "task_category",
            ModelPerformance,
        ),
        ("/models/gpt-4o/endpoints", {"endpoint_type": "rest", "api_key": "\u0000"}, "api_key", ModelEndpoint),
        (
            "/models/gpt-4o/endpoints",
            {"endpoint_type": "rest", "endpoint_url": "http://[::1/"},
            "endpoint_url",
            ModelEndpoint,
        ),
        (
            "/models/gpt-4o/endpoints",
            {"endpoint_type": "rest", "endpoint_url": "http://h\ud800/"},
            "endpoint_url",
            ModelEndpoint,
        ),
    ],
)
def test_text_the_database_refuses_is_400_naming_the_field(
    client: APIClient, path: str, body: dict[str, Any], field: str, table: Any
) -> None:
    before = table.objects.count()
    # json.dumps keeps "\u0000" and lone surrogates as JSON escapes, as a hostile client would send them.
    response = client.post(path, json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()
    assert table.objects.count() == before
