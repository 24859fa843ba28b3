"""``POST /sources/{id}/discover`` with the broker down or hung: a bounded 503 and a failed run that says why."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from discovery.models import DiscoveryRun, RunStatus
from registry_project.celery import app
from tests.factories import ProviderSourceFactory
from tests.faults import refused_port, silent_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker_at() -> Iterator[Callable[[int], None]]:
    """Point the Celery app at a Redis broker on a port of the test's choosing (a real connection attempt)."""
    saved = (app.conf.broker_url, app.conf.broker_transport_options)

    def use(port: int) -> None:
        app.conf.broker_url = f"redis://127.0.0.1:{port}/14"
        # The production Redis options, with a shorter socket timeout to keep the test fast.
        app.conf.broker_transport_options = {**settings.BROKER_REDIS_TRANSPORT_OPTIONS, "socket_timeout": 1.0}
        app._pool = None
        app.amqp._producer_pool = None

    yield use
    app.conf.broker_url, app.conf.broker_transport_options = saved
    app._pool = None
    app.amqp._producer_pool = None


def discover(client: APIClient, source_id: int) -> tuple[float, object]:
    started = time.monotonic()
    response = client.post(f"/sources/{source_id}/discover")
    return time.monotonic() - started, response


@pytest.mark.parametrize("broker", ["refusing", "hung"])
def test_discovery_requested_while_the_broker_is_down_is_a_503_and_a_failed_run(
    api_client_for: Callable[[str], APIClient], broker_at: Callable[[int], None], broker: str
) -> None:
    source = ProviderSourceFactory(name="ollama")
    with silent_server() as hung_port:
        broker_at(refused_port() if broker == "refusing" else hung_port)
        elapsed, response = discover(api_client_for("admin"), source.pk)
    assert response.status_code == 503  # type: ignore[attr-defined]
    assert response["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)  # type: ignore[index]
    assert "nothing was queued" in response.json()["detail"]  # type: ignore[attr-defined]
    assert elapsed < 8
    run = DiscoveryRun.objects.get(source=source)
    assert run.status == RunStatus.FAILED
    assert run.trigger == "manual"
    assert run.error_message.startswith("Not queued: the broker is unavailable")
