"""Query parameters are read as the schema states them, or refused with a 400 naming the parameter.

make fuzz found each of these accepted: a parameter that takes one value given twice (read as the
last one), ``?limit=AAA`` or ``?offset=-1`` on the audit log (read as the default), and control
characters in search and filter text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from discovery.models import ProviderSource
from tests.factories import ProviderSourceFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

ONCE = ["Give this parameter once (it takes one value)."]


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-any-return]


@pytest.fixture
def source() -> ProviderSource:
    return ProviderSourceFactory(name="ollama")  # type: ignore[no-any-return]


def query_schema(openapi: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    parameters = openapi["paths"][path]["get"]["parameters"]
    return next(p["schema"] for p in parameters if p["in"] == "query" and p["name"] == name)  # type: ignore[no-any-return]


def ecma_matches(pattern: str, value: str) -> bool:
    """The pattern read as a JSON Schema validator reads it (ECMA-262): ``$`` is the end, not a final newline."""
    return re.search(pattern.removesuffix("$") + r"\Z", value) is not None


@pytest.mark.parametrize(
    ("path", "parameter", "value"),
    [
        ("/models", "offset", "1"),
        ("/models", "limit", "5"),
        ("/models", "status", "available"),
        ("/models", "search", "llama"),
        ("/models/select", "limit", "3"),
        ("/models/select", "min_score", "0.5"),
        ("/models/{model}/usage", "bucket", "day"),
        ("/models/{model}/usage", "to", "2026-01-02T00:00:00Z"),
        ("/models/{model}/performance", "limit", "10"),
        ("/models/{model}/performance", "metric_name", "latency"),
        ("/audit", "limit", "10"),
        ("/audit", "offset", "0"),
        ("/audit", "actor", "admin"),
        ("/sources/{source}/runs", "limit", "5"),
    ],
)
def test_a_single_valued_parameter_given_twice_is_a_400_naming_it(
    api_client_for: Callable[[str], APIClient], source: ProviderSource, path: str, parameter: str, value: str
) -> None:
    model = RegisteredModelFactory(name="m")
    url = path.format(model=model.pk, source=source.pk)
    client = api_client_for("admin")
    assert client.get(url, {parameter: value}).status_code == 200

    response = client.get(url, {parameter: [value, value]})

    assert response.status_code == 400
    assert response.json() == {parameter: ONCE}


def test_a_list_parameter_may_repeat(api_client_for: Callable[[str], APIClient]) -> None:
    response = api_client_for("viewer").get("/models/select", {"capability": ["code", "text"]})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=AAA", "limit"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("offset=-1", "offset"),
        ("limit=", "limit"),
    ],
)
def test_the_audit_logs_page_parameters_are_checked_not_read_as_the_default(
    api_client_for: Callable[[str], APIClient], query: str, parameter: str
) -> None:
    response = api_client_for("admin").get(f"/audit?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [parameter]


def test_the_audit_logs_page_bounds_are_in_the_schema(openapi: dict[str, Any]) -> None:
    assert query_schema(openapi, "/audit", "limit") == {"type": "integer", "minimum": 1, "maximum": 500}
    assert query_schema(openapi, "/audit", "offset") == {"type": "integer", "minimum": 0, "maximum": 2147483647}


TEXT_FILTERS = [
    ("/models", "search"),
    ("/models/{model}/performance", "metric_name"),
    ("/models/{model}/performance", "task_category"),
    ("/audit", "actor"),
    ("/audit", "object_id"),
]


@pytest.mark.parametrize(("path", "parameter"), TEXT_FILTERS)
@pytest.mark.parametrize("value", ["\x19", "a\x07b", "\x1ca", "a\n", "\x85", "\u200b", "llama", " llama ", "é\u00a0x"])
def test_search_and_filter_text_is_refused_with_a_control_character_as_the_schema_says(
    api_client_for: Callable[[str], APIClient], openapi: dict[str, Any], path: str, parameter: str, value: str
) -> None:
    model = RegisteredModelFactory(name="m")
    schema = query_schema(openapi, path.replace("{model}", "{ref}"), parameter)

    response = api_client_for("admin").get(path.format(model=model.pk), {parameter: value})

    assert response.status_code in {200, 400}
    assert (response.status_code == 200) == ecma_matches(schema["pattern"], value), response.content
    if response.status_code == 400:
        assert list(response.json()) == [parameter]
