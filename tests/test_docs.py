"""The documentation says what the service does: required fields as the schema has them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"


def backticked(text: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", text))


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-any-return]


def test_api_doc_names_the_fields_a_model_create_requires(openapi: dict[str, Any]) -> None:
    stated = re.search(r"\*\*Required on create\*\*[^:]*:(.*?)\.", API_DOC.read_text(), re.DOTALL)

    assert stated is not None, "docs/api.md does not say which fields a model requires on create"
    assert backticked(stated.group(1)) == set(openapi["components"]["schemas"]["RegisteredModelRequest"]["required"])


def test_api_doc_names_the_field_an_endpoint_requires(openapi: dict[str, Any]) -> None:
    stated = re.search(r"An endpoint, [^.]*?\s+requires\s+`([^`]+)`", API_DOC.read_text(), re.DOTALL)

    assert stated is not None, "docs/api.md does not say which fields an endpoint requires"
    assert [stated.group(1)] == openapi["components"]["schemas"]["EndpointRequest"]["required"]
