"""The schema states what the service checks: errors with one shape, every status, name and text patterns."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.factories import RegisteredModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-any-return]


def operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in openapi["paths"].items() for method, op in ops.items()]


def test_every_error_response_has_the_error_schema(openapi: dict[str, Any]) -> None:
    for path, method, operation in operations(openapi):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)
        assert "503" in operation["responses"], (path, method)


def test_the_token_endpoints_document_their_answers(openapi: dict[str, Any]) -> None:
    token = openapi["paths"]["/auth/token"]["post"]["responses"]
    assert {"200", "400", "401", "429", "503"} <= set(token)
    assert "content" in openapi["paths"]["/auth/token/verify"]["post"]["responses"]["200"]


def test_writes_document_413_and_reads_of_a_thing_document_404(openapi: dict[str, Any]) -> None:
    assert "413" in openapi["paths"]["/models"]["post"]["responses"]
    assert "404" in openapi["paths"]["/models/{ref}"]["get"]["responses"]
    assert {"401", "403"} <= set(openapi["paths"]["/models"]["get"]["responses"])


@pytest.mark.parametrize(
    "name", ["gpt-4o", "hf.co/org/m:Q4", "12", "select", " gpt", "a//b", "a/usage", "a\u200bb", "modèle:1", "a?b"]
)
def test_the_schemas_name_pattern_agrees_with_the_service(
    openapi: dict[str, Any], api_client_for: Callable[[str], APIClient], name: str
) -> None:
    pattern = openapi["components"]["schemas"]["RegisteredModelRequest"]["properties"]["name"]["pattern"]
    body = {"name": name, "display_name": "M", "provider": "ollama", "model_type": "chat"}
    response = api_client_for("editor").post("/models", body, format="json")
    assert (response.status_code == 201) == bool(re.search(pattern, name)), response.content


def test_a_leading_space_in_a_name_is_refused_not_stripped(api_client_for: Callable[[str], APIClient]) -> None:
    body = {"name": " gpt-4o", "display_name": "M", "provider": "openai", "model_type": "chat"}
    response = api_client_for("editor").post("/models", body, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


@pytest.mark.parametrize("capability", ["0", "9b", "-x", "Code"])
def test_capability_names_start_with_a_lower_case_letter(
    api_client_for: Callable[[str], APIClient], capability: str
) -> None:
    model = RegisteredModelFactory()
    response = api_client_for("editor").post(
        f"/models/{model.pk}/capabilities", {"capability": capability, "capability_score": 0.5}, format="json"
    )
    assert response.status_code == 400
    assert "capability" in response.json()


@pytest.mark.parametrize("query", ["status=", "provider=", "capability=", "limit=", "search="])
def test_empty_filter_values_are_refused(api_client_for: Callable[[str], APIClient], query: str) -> None:
    response = api_client_for("viewer").get(f"/models?{query}")
    assert response.status_code == 400
    assert response.json() == {query[:-1]: ["May not be empty; leave the parameter out instead."]}


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_options_answers_any_role_with_the_endpoints_metadata(
    api_client_for: Callable[[str], APIClient], role: str
) -> None:
    model = RegisteredModelFactory()
    for path in ("/models", f"/models/{model.pk}", f"/models/{model.pk}/endpoints/1", "/sources/1"):
        response = api_client_for(role).options(path)
        assert response.status_code in {200, 403}, path  # /sources is for admins
        assert response.json()["name" if response.status_code == 200 else "detail"]


def test_prices_with_more_decimals_than_stored_are_rounded_not_refused(
    api_client_for: Callable[[str], APIClient],
) -> None:
    body = {
        "name": "m",
        "display_name": "M",
        "provider": "openai",
        "model_type": "chat",
        "input_cost_per_mtok": 0.1 + 0.2,
    }
    response = api_client_for("editor").post("/models", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["input_cost_per_mtok"] == 0.3


def test_every_operation_documents_the_size_refusals(openapi: dict[str, Any]) -> None:
    for path, method, operation in operations(openapi):
        assert {"414", "431"} <= set(operation["responses"]), (path, method)


@pytest.mark.parametrize(
    ("price", "accepted"), [(999999.9999994, True), (999999.9999995, False), (999999.99999999, False)]
)
def test_the_schemas_price_bound_is_the_one_the_rounding_service_applies(
    openapi: dict[str, Any], api_client_for: Callable[[str], APIClient], price: float, accepted: bool
) -> None:
    """Found by make fuzz: 999999.9999999 was below the schema's bound (10**6) but rounds to 1000000.000000."""
    schema = openapi["components"]["schemas"]["RegisteredModelRequest"]["properties"]["output_cost_per_mtok"]
    body = {"name": "m", "display_name": "M", "provider": "openai", "model_type": "chat", "output_cost_per_mtok": price}

    response = api_client_for("editor").post("/models", body, format="json")

    assert (price < schema["exclusiveMaximum"]) is accepted
    assert response.status_code == (201 if accepted else 400), response.content
    if accepted:
        assert response.json()["output_cost_per_mtok"] == 999999.999999


def test_a_batch_of_records_states_its_bounds(openapi: dict[str, Any]) -> None:
    for name in ("UsageRecordsRequest", "PerformanceRecordsRequest"):
        array = next(b for b in openapi["components"]["schemas"][name]["oneOf"] if b.get("type") == "array")
        assert (array["minItems"], array["maxItems"]) == (1, 1000), name


@pytest.mark.parametrize(
    ("path", "method", "words"),
    [
        ("/models/{ref}/usage", "get", ["`from` must be before `to`", "93 days", "400 naming `from`"]),
        ("/models/{ref}/performance", "get", ["`from` must be before `to`", "400 naming `from`"]),
        ("/models/{ref}/parameters", "post", ["`default_value`'s JSON type", "400 naming the bound"]),
        ("/models/{ref}", "put", ["must be one of this model's", "400 naming `endpoints`"]),
        ("/models/{ref}", "patch", ["must be one of this model's", "400 naming `endpoints`"]),
    ],
)
def test_rules_across_fields_are_stated_in_the_operations_description(
    openapi: dict[str, Any], path: str, method: str, words: list[str]
) -> None:
    description = openapi["paths"][path][method]["description"]
    assert all(word in description for word in words), description


def test_a_parameters_bound_of_another_type_is_a_400_naming_it(api_client_for: Callable[[str], APIClient]) -> None:
    model = RegisteredModelFactory()
    body = {"parameter_name": "stop", "default_value": ["\n"], "min_value": {}}
    response = api_client_for("editor").post(f"/models/{model.pk}/parameters", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"min_value": ["Must be an array, like default_value."]}


@pytest.mark.parametrize("port", ["0", "0816", "65535", "65536", "99999", "70000"])
def test_the_schemas_url_pattern_states_the_port_range_the_service_checks(
    openapi: dict[str, Any], api_client_for: Callable[[str], APIClient], port: str
) -> None:
    """Found by make fuzz: https://r:85536 matched the schema's pattern and was refused as "Not a valid URL"."""
    pattern = openapi["components"]["schemas"]["EndpointRequest"]["properties"]["endpoint_url"]["pattern"]
    url = f"https://gpu-1:{port}/v1"
    model = RegisteredModelFactory()

    response = api_client_for("editor").post(
        f"/models/{model.pk}/endpoints", {"endpoint_type": "rest", "endpoint_url": url}, format="json"
    )

    assert (response.status_code == 201) == bool(re.search(pattern, url)) == (int(port) <= 65535), response.content


@pytest.mark.parametrize(
    ("price", "status", "stored"),
    [
        (0.23681619526312872, 201, 0.236816),
        (999999, 201, 999999.0),
        (999999.0000004, 400, None),
        (-0.0000001, 400, None),
    ],
)
def test_a_dated_price_is_rounded_as_a_models_price_and_bounded_as_sent(
    openapi: dict[str, Any], api_client_for: Callable[[str], APIClient], price: float, status: int, stored: float | None
) -> None:
    """Found by make fuzz: 0.23681619526312872 (schema-valid) was refused for its digits."""
    schema = openapi["components"]["schemas"]["PriceRequest"]["properties"]["output_per_mtok"]
    model = RegisteredModelFactory()

    response = api_client_for("editor").post(
        f"/models/{model.pk}/prices", {"input_per_mtok": 0, "output_per_mtok": price}, format="json"
    )

    assert response.status_code == status, response.content
    assert (schema["minimum"] <= price <= schema["maximum"]) is (status == 201)
    if stored is not None:
        assert response.json()["output_per_mtok"] == stored


def test_a_parameters_default_value_may_not_be_null_as_the_schema_says(
    openapi: dict[str, Any], api_client_for: Callable[[str], APIClient]
) -> None:
    """Found by make fuzz: the schema allowed any value for default_value, null included."""
    schema = openapi["components"]["schemas"]["ParameterRequest"]["properties"]["default_value"]
    assert schema["not"] == {"type": "null"}
    model = RegisteredModelFactory()
    response = api_client_for("editor").post(
        f"/models/{model.pk}/parameters", {"parameter_name": "p", "default_value": None}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == ["default_value"]


def test_a_body_that_cannot_be_empty_is_required_in_the_schema(
    openapi: dict[str, Any], api_client_for: Callable[[str], APIClient]
) -> None:
    """Found by make fuzz: POST /models/{ref}/performance without a body was schema-valid, and a 400."""
    assert openapi["paths"]["/models/{ref}/performance"]["post"]["requestBody"]["required"] is True
    # A usage record has defaults for every field: no body records one, and the schema leaves it optional.
    assert "required" not in openapi["paths"]["/models/{ref}/usage"]["post"]["requestBody"]
    model = RegisteredModelFactory()
    assert api_client_for("service").post(f"/models/{model.pk}/performance").status_code == 400
    assert api_client_for("service").post(f"/models/{model.pk}/usage").status_code == 201
