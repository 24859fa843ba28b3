"""registry.catalog.validation: the rules the API and a registry file share say the same thing through both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from registry.catalog.registry_apply import registry_apply
from registry.catalog.registry_file import RegistryFileInvalid
from registry.catalog.validation import (
    is_capability_name,
    is_parameter_name,
    model_name_problem,
    platform_override_problems,
)
from registry.models import RegisteredModel

pytestmark = pytest.mark.django_db

ClientFor = Callable[[str], APIClient]


def model(**overrides: Any) -> dict[str, Any]:
    return {"name": "m", "display_name": "M", "provider": "custom", "model_type": "chat", **overrides}


def file_errors(**overrides: Any) -> list[str]:
    with pytest.raises(RegistryFileInvalid) as refused:
        registry_apply({"version": 1, "models": [model(**overrides)]})
    return refused.value.errors


@pytest.mark.parametrize(
    "name", ["select", "12345", "org/model/", "/org", "a//b", "org/prices", "a b", "a\u200bb", "what?", "a#b", "a\\b"]
)
def test_a_bad_name_gets_the_same_message_from_the_api_and_from_a_file(api_client_for: ClientFor, name: str) -> None:
    response = api_client_for("editor").post("/models", model(name=name), format="json")

    assert response.status_code == 400
    assert file_errors(name=name) == [f"models[0].name: {message}" for message in response.json()["name"]]
    assert not RegisteredModel.objects.exists()


def test_bad_platform_overrides_get_the_same_messages_from_the_api_and_from_a_file(api_client_for: ClientFor) -> None:
    overrides = {"task_types": ["chat", ""], "content_types": ["text"] * 51, "colour": ["blue"]}
    response = api_client_for("editor").post("/models", model(details={"platform": overrides}), format="json")

    assert response.status_code == 400
    by_key = response.json()["details"]["platform"]
    assert set(by_key) == {"task_types", "content_types", "colour"}
    assert file_errors(details={"platform": overrides}) == [
        f"models[0].details.platform.{key}: {messages[0]}" for key, messages in by_key.items()
    ]


def test_platform_overrides_that_are_not_an_object_are_named_as_a_whole(api_client_for: ClientFor) -> None:
    response = api_client_for("editor").post("/models", model(details={"platform": ["chat"]}), format="json")

    assert response.status_code == 400
    assert response.json()["details"] == {"platform": ["Must be an object."]}
    assert file_errors(details={"platform": ["chat"]}) == ["models[0].details.platform: Must be an object."]


@pytest.mark.parametrize("name", ["gpt-4o", "llama3.2:latest", "hf.co/org/Model-GGUF:Q4_K_M", "org/usage-stats"])
def test_good_names_have_no_problem(name: str) -> None:
    assert model_name_problem(name) is None


def test_overrides_given_right_or_not_given_have_no_problem() -> None:
    assert platform_override_problems(None) == {}
    assert platform_override_problems({"task_types": ["chat"], "content_types": []}) == {}


@pytest.mark.parametrize(
    ("name", "expected"),
    [("code", True), ("long-context_2", True), ("Code", False), ("2code", False), ("a-", False), ("a" * 51, False)],
)
def test_capability_names_are_lower_case_slugs_of_at_most_50(name: str, expected: bool) -> None:
    assert is_capability_name(name) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("top_k", True),
        ("ns:seed.v-2", True),
        ("_x", False),
        ("é", False),
        ("a b", False),
        ("a" * 101, False),
        (3, False),
    ],
)
def test_parameter_names_are_ascii_words_of_at_most_100(name: Any, expected: bool) -> None:
    assert is_parameter_name(name) is expected
