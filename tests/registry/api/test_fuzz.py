"""Requests generated from the OpenAPI schema (schemathesis): the API never answers with a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

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
