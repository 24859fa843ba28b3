"""Usage writes while Redis is stopped or hung: every acknowledged record is stored."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from registry.models import ModelUsage
from tests.factories import RegisteredModelFactory
from tests.faults import refused_port, silent_server
from tests.registry.reads.test_cache import redis_cache

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("redis", ["stopped", "hung"])
def test_usage_acknowledged_while_redis_fails_is_stored(api_client_for: Callable[[str], APIClient], redis: str) -> None:
    model = RegisteredModelFactory()
    service = api_client_for("service")
    with (
        silent_server() as hung_port,
        override_settings(CACHES=redis_cache(refused_port() if redis == "stopped" else hung_port)),
    ):
        statuses = [
            service.post(f"/models/{model.pk}/usage", [{"token_count": 10}] * 5, format="json").status_code
            for _ in range(4)
        ]
    assert statuses == [201] * 4
    assert ModelUsage.objects.filter(model=model).count() == 20
