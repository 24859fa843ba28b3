"""Requests generated from the OpenAPI schema (schemathesis): the API never answers with a 5xx."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient

from tests.factories import ModelCapabilityFactory, ModelEndpointFactory, RegisteredModelFactory
from tests.tokens import platform_token

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = get_wsgi_application()


@pytest.fixture
def registry_with_a_model(db: None) -> Iterator[None]:
    """One model to find, and the WSGI app kept on the test's connection (as Django's test client does)."""
    model = RegisteredModelFactory(name="1a")
    ModelCapabilityFactory(model=model, capability="code")
    ModelEndpointFactory(model=model)
    # The WSGI handler closes the connection after each request; the test's transaction lives on it.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.include(path_regex="^/models").parametrize()
# Derandomized: the suite's run is the same cases every time (CI must not pass or fail by luck);
# make fuzz (bench/fuzz.py) explores at random, with more cases, against the production server.
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@pytest.mark.usefixtures("registry_with_a_model")
def test_generated_requests_never_get_a_server_error(case: Any) -> None:
    response = case.call(headers={"Authorization": f"Bearer {platform_token('service_role')}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}"


def _fuzz_rules() -> Any:
    """bench/fuzz_rules.py (bench is scripts, not a package): what make fuzz's hook relies on."""
    path = Path(__file__).resolve().parents[3] / "bench" / "fuzz_rules.py"
    spec = importlib.util.spec_from_file_location("fuzz_rules", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "template", "query", "body", "broken"),
    [
        ("GET", "/models/{ref}/usage", {"bucket": "hour", "from": "2000-01-01T00:00:00Z"}, None, True),
        ("GET", "/models/{ref}/usage", {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, None, True),
        ("GET", "/models/{ref}/usage", {"bucket": "day", "from": "2000-01-01T00:00:00Z"}, None, True),
        ("GET", "/models/{ref}/usage", {"to": "0001-01-01T00:00:00Z"}, None, True),
        ("GET", "/models/{ref}/usage", {"to": "2026-01-02T00:00:00Z"}, None, False),  # 200
        ("GET", "/models/{ref}/usage", {"bucket": "week"}, None, False),  # a 400 for another reason
        (
            "GET",
            "/models/{ref}/performance",
            {"from": "2001-01-01T00:00:00Z", "to": "2000-01-01T00:00:00Z"},
            None,
            True,
        ),
        ("GET", "/models/{ref}/performance", {"from": "2000-01-01T00:00:00Z", "limit": "0"}, None, False),
        ("POST", "/models/{ref}/parameters", {}, {"parameter_name": "p", "default_value": [1], "min_value": {}}, True),
        ("POST", "/models/{ref}/parameters", {}, {"parameter_name": "p", "default_value": 5, "max_value": 1}, True),
        ("POST", "/models/{ref}/parameters", {}, {"parameter_name": "p", "default_value": 5, "max_value": 9}, False),
        ("POST", "/models/{ref}/parameters", {}, {"parameter_name": "-", "default_value": 5, "min_value": "a"}, False),
        ("PUT", "/models/{ref}", {}, {"endpoints": [{"id": 999999, "endpoint_type": "rest"}]}, True),
        ("PATCH", "/models/{ref}", {}, {"endpoints": [{"id": 999999, "endpoint_type": "rest"}]}, True),
        ("PATCH", "/models/{ref}", {}, {"endpoints": [{"id": None, "endpoint_type": "fax"}]}, False),
        ("GET", "/audit", {"since": "2000-01-01T00:00:00Z", "until": "2000-01-01T00:00:00Z"}, None, True),
        ("GET", "/audit", {"since": "2000-01-01T00:00:00Z", "until": "2001-01-01T00:00:00Z"}, None, False),
        ("POST", "/models/{ref}/usage", {}, {"timestamp": "2999-01-01T00:00:00Z"}, True),
        ("POST", "/models/{ref}/usage", {}, [{}, {"timestamp": "2999-01-01T00:00:00-13:27"}], True),
        ("POST", "/models/{ref}/usage", {}, [{"timestamp": "2999-01-01T00:00:00Z"}, {"request_count": -1}], False),
        (
            "POST",
            "/models/{ref}/performance",
            {},
            {"metric_name": "x", "metric_value": 1, "timestamp": "2999-01-01"},
            True,
        ),
        ("POST", "/models", {}, {"details": {"a": {"\x00": 1}}}, True),
        ("POST", "/models", {}, {"details": {"a": "\x00"}, "colour": 1}, False),
        ("POST", "/models/{ref}/parameters", {}, {"parameter_name": "p", "default_value": ["\x00"]}, True),
        ("POST", "/models/{ref}/usage", {}, [{}, {"input_tokens": 2, "output_tokens": 3, "token_count": 4}], True),
        ("POST", "/models/{ref}/usage", {}, {"input_tokens": 2147483647, "output_tokens": 1}, True),
        ("POST", "/models/{ref}/usage", {}, [{"input_tokens": 200.0, "output_tokens": 12, "token_count": 21}], True),
        ("POST", "/models/{ref}/usage", {}, {"input_tokens": 2, "output_tokens": 3, "token_count": 5}, False),
    ],
)
def test_make_fuzz_drops_only_the_documented_400_of_a_request_breaking_a_cross_field_rule(
    api_client_for: Callable[[str], APIClient],
    method: str,
    template: str,
    query: dict[str, str],
    body: Any,
    broken: bool,
) -> None:
    """The hook's rules, from the request alone, agree with what the service answers that request."""
    model = RegisteredModelFactory(name="m", provider="ollama", model_type="chat", display_name="M")
    if method == "PUT" or template == "/models":
        name = "m" if method == "PUT" else "n"
        body = {"name": name, "display_name": "M", "provider": "ollama", "model_type": "chat", **body}
    client = api_client_for("admin")
    path = template.replace("{ref}", str(model.pk))
    if method == "GET":
        response = client.get(path, query)
    else:
        response = getattr(client, method.lower())(path, body, format="json")
    case = SimpleNamespace(query=query, body=body)

    verdict = _fuzz_rules().documented_rule_broken(method, template, case, response.status_code, response.json())

    assert verdict is broken, (response.status_code, response.json())
    assert response.status_code == (400 if broken else response.status_code)
