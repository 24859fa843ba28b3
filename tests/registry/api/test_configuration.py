"""A model's capabilities, parameters and endpoints through their own routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from registry.models import ModelCapability, ModelEndpoint, ModelParameter, SetBy
from tests.factories import (
    ModelCapabilityFactory,
    ModelEndpointFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db

ClientFor = Callable[[str], APIClient]


@pytest.fixture
def model() -> Any:
    return RegisteredModelFactory(name="llama3.2:latest")


# --- capabilities ----------------------------------------------------------------------------------


def test_adding_a_capability_is_201_and_operator_owned(api_client_for: ClientFor, model: Any) -> None:
    response = api_client_for("editor").post(
        "/models/llama3.2:latest/capabilities", {"capability": "code", "capability_score": 0.75}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    evaluated_at = body["evidence"].pop("evaluated_at")
    assert body == {
        "capability": "code",
        "capability_score": 0.75,
        "set_by": "operator",
        "evidence": {
            "source": "operator",
            "note": "operator",
            "metric": None,
            "task_category": None,
            "sample_size": None,
            "window": None,
        },
    }
    assert evaluated_at == ModelCapability.objects.get(model=model).evaluated_at.isoformat().replace("+00:00", "Z")


def test_posting_an_existing_capability_updates_it_and_takes_it_from_discovery(
    api_client_for: ClientFor, model: Any
) -> None:
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.5, set_by=SetBy.DISCOVERY)
    response = api_client_for("editor").post(
        "/models/llama3.2:latest/capabilities", {"capability": "code", "capability_score": 0.9}, format="json"
    )
    assert response.status_code == 200
    row = ModelCapability.objects.get(model=model)
    assert (row.capability_score, row.set_by) == (0.9, SetBy.OPERATOR)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"capability": "Code", "capability_score": 0.5}, "capability"),
        ({"capability": "has space", "capability_score": 0.5}, "capability"),
        ({"capability": "c" * 51, "capability_score": 0.5}, "capability"),
        ({"capability": "code", "capability_score": 1.01}, "capability_score"),
        ({"capability": "code", "capability_score": -0.01}, "capability_score"),
        ({"capability": "code", "capability_score": "0.5"}, "capability_score"),
        ({"capability": "code", "capability_score": True}, "capability_score"),
        ({"capability": "code"}, "capability_score"),
        ({"capability": "code", "capability_score": 0.5, "scor": 1}, "scor"),
    ],
)
def test_invalid_capability_is_400_and_writes_nothing(
    api_client_for: ClientFor, model: Any, body: dict[str, Any], field: str
) -> None:
    response = api_client_for("editor").post("/models/llama3.2:latest/capabilities", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert ModelCapability.objects.count() == 0


def test_deleting_a_capability(api_client_for: ClientFor, model: Any) -> None:
    ModelCapabilityFactory(model=model, capability="code")
    client = api_client_for("editor")
    assert client.delete("/models/llama3.2:latest/capabilities/code").status_code == 204
    assert ModelCapability.objects.count() == 0
    assert client.delete("/models/llama3.2:latest/capabilities/code").status_code == 404


def test_capabilities_are_listed_with_their_owner(api_client_for: ClientFor, model: Any) -> None:
    ModelCapabilityFactory(model=model, capability="text", capability_score=0.8, set_by=SetBy.DISCOVERY)
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.6)
    response = api_client_for("viewer").get("/models/llama3.2:latest/capabilities")
    assert [(row["capability"], row["capability_score"], row["set_by"]) for row in response.json()] == [
        ("code", 0.6, "operator"),
        ("text", 0.8, "discovery"),
    ]


# --- parameters ------------------------------------------------------------------------------------


def test_adding_then_updating_a_parameter_by_name(api_client_for: ClientFor, model: Any) -> None:
    client = api_client_for("editor")
    body = {"parameter_name": "temperature", "default_value": 0.7, "min_value": 0, "max_value": 2}
    assert client.post("/models/llama3.2:latest/parameters", body, format="json").status_code == 201
    body["default_value"] = 1.0
    response = client.post("/models/llama3.2:latest/parameters", body, format="json")
    assert response.status_code == 200
    assert response.json()["default_value"] == 1.0
    row = ModelParameter.objects.get(model=model)
    assert (row.default_value, row.set_by) == (1.0, SetBy.OPERATOR)


def test_non_numeric_parameters_keep_their_json(api_client_for: ClientFor, model: Any) -> None:
    client = api_client_for("editor")
    body = {"parameter_name": "stop", "default_value": ["</s>", "<|eot|>"], "description": "Stop sequences"}
    assert client.post("/models/llama3.2:latest/parameters", body, format="json").status_code == 201
    listed = client.get("/models/llama3.2:latest/parameters").json()
    assert listed == [
        {
            "parameter_name": "stop",
            "default_value": ["</s>", "<|eot|>"],
            "min_value": None,
            "max_value": None,
            "description": "Stop sequences",
            "set_by": "operator",
        }
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"parameter_name": "t", "default_value": 3, "min_value": 0, "max_value": 2}, "default_value"),
        ({"parameter_name": "t", "default_value": -1, "min_value": 0}, "default_value"),
        ({"parameter_name": "t", "default_value": 1, "min_value": 2, "max_value": 1}, "min_value"),
        ({"parameter_name": "t", "default_value": 1, "min_value": "0"}, "min_value"),
        ({"parameter_name": "t", "default_value": True, "max_value": 1}, "max_value"),
        ({"parameter_name": "t", "default_value": None}, "default_value"),
        ({"parameter_name": "t"}, "default_value"),
        ({"parameter_name": "t", "default_value": "x" * 17000}, "default_value"),
        ({"parameter_name": "t", "default_value": 1, "max_value": 2, "min_valeu": 0}, "min_valeu"),
        ({"parameter_name": "", "default_value": 1}, "parameter_name"),
        ({"parameter_name": "bad name", "default_value": 1}, "parameter_name"),
    ],
)
def test_invalid_parameter_is_400_and_writes_nothing(
    api_client_for: ClientFor, model: Any, body: dict[str, Any], field: str
) -> None:
    response = api_client_for("editor").post("/models/llama3.2:latest/parameters", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert ModelParameter.objects.count() == 0


# --- endpoints -------------------------------------------------------------------------------------


def test_endpoint_lifecycle_keeps_credentials_write_only(api_client_for: ClientFor, model: Any) -> None:
    client = api_client_for("editor")
    created = client.post(
        "/models/llama3.2:latest/endpoints",
        {
            "endpoint_type": "rest",
            "endpoint_url": "https://gpu-1.internal:8000/v1",
            "auth_type": "api_key",
            "api_key": "sk-first",
            "headers": {"X-Route": "a", "Authorization": "Bearer tok"},
        },
        format="json",
    )
    assert created.status_code == 201
    endpoint_id = created.json()["id"]
    assert created.json()["has_api_key"] is True
    assert created.json()["headers"] == {"X-Route": "a"}
    assert created.json()["secret_header_names"] == ["Authorization"]
    assert b"sk-first" not in created.content
    assert b"Bearer tok" not in created.content

    # A full replacement without credentials keeps them: the client never saw them to send back.
    replaced = client.put(
        f"/models/llama3.2:latest/endpoints/{endpoint_id}",
        {"endpoint_type": "rest", "endpoint_url": "https://gpu-2.internal:8000/v1"},
        format="json",
    )
    assert replaced.status_code == 200
    endpoint = ModelEndpoint.objects.get(pk=endpoint_id)
    assert endpoint.endpoint_url == "https://gpu-2.internal:8000/v1"
    assert endpoint.auth_type is None
    assert endpoint.headers is None
    assert endpoint.api_key == "sk-first"
    assert endpoint.secret_headers == {"Authorization": "Bearer tok"}

    patched = client.patch(
        f"/models/llama3.2:latest/endpoints/{endpoint_id}",
        {"api_key": None, "secret_headers": {"Authorization": None, "X-Api-Key": "k2"}},
        format="json",
    )
    assert patched.status_code == 200
    assert patched.json()["has_api_key"] is False
    assert patched.json()["secret_header_names"] == ["X-Api-Key"]

    assert client.delete(f"/models/llama3.2:latest/endpoints/{endpoint_id}").status_code == 204
    assert not ModelEndpoint.objects.filter(pk=endpoint_id).exists()


def test_endpoint_of_another_model_is_404(api_client_for: ClientFor, model: Any) -> None:
    other = ModelEndpointFactory()
    client = api_client_for("editor")
    assert client.get(f"/models/llama3.2:latest/endpoints/{other.pk}").status_code == 404
    assert client.delete(f"/models/llama3.2:latest/endpoints/{other.pk}").status_code == 404
    assert ModelEndpoint.objects.filter(pk=other.pk).exists()


def test_endpoints_added_through_the_api_have_no_source(api_client_for: ClientFor, model: Any) -> None:
    ModelEndpointFactory(model=model, source=ProviderSourceFactory(name="ollama-gpu"))
    client = api_client_for("editor")
    client.post("/models/llama3.2:latest/endpoints", {"endpoint_type": "local"}, format="json")
    listed = client.get("/models/llama3.2:latest/endpoints").json()
    assert [item["source"] for item in listed] == ["ollama-gpu", None]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"endpoint_type": "soap"}, "endpoint_type"),
        ({"endpoint_type": "rest", "endpoint_url": "javascript:alert(1)"}, "endpoint_url"),
        ({"endpoint_type": "rest", "endpoint_url": "https://"}, "endpoint_url"),
        ({"endpoint_type": "rest", "endpoint_url": "http://host:99999/"}, "endpoint_url"),
        ({"endpoint_type": "rest", "endpoint_url": "https://h/" + "p" * 300}, "endpoint_url"),
        ({"endpoint_type": "rest", "auth_type": "kerberos"}, "auth_type"),
        ({"endpoint_type": "rest", "headers": ["X-A", "b"]}, "headers"),
        ({"endpoint_type": "rest", "headers": {"X-A": "b\nc"}}, "headers"),
        ({"endpoint_type": "rest", "secret_headers": {"Authorization": 5}}, "secret_headers"),
        ({"endpoint_type": "rest", "source": 1, "api_kee": "x"}, "api_kee"),
    ],
)
def test_invalid_endpoint_is_400_and_writes_nothing(
    api_client_for: ClientFor, model: Any, body: dict[str, Any], field: str
) -> None:
    response = api_client_for("editor").post("/models/llama3.2:latest/endpoints", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert ModelEndpoint.objects.count() == 0
