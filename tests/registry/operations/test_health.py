"""/healthz and /health: status codes, body shape, degraded dependencies, bounded time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import kombu.transport
import pytest
from django.conf import settings
from django.test import Client, override_settings

from registry.operations import usage_buffer

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.django_db


def redis_cache_at(port: int) -> dict[str, dict[str, object]]:
    return {
        "default": {
            "BACKEND": "registry.reads.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/3",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5, "IGNORE_EXCEPTIONS": True},
        }
    }


def test_healthz_answers_ok_without_touching_dependencies(client: Client, django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_reports_every_service_ok(client: Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    # With Redis, the usage buffer's state too (tests/registry/telemetry/test_buffering.py fills it).
    empty_buffer = {"status": "empty", "records": 0, "entries": 0, "oldest_age_seconds": None, "dead_letters": 0}
    assert body.pop("usage_buffer", None) == (empty_buffer if usage_buffer.enabled() else None)
    assert body == {
        "status": "ok",
        "version": settings.VERSION,
        "services": {"database": "ok", "cache": "ok", "broker": "ok"},
    }


def test_health_leaves_out_the_usage_buffer_without_redis(client: Client) -> None:
    with override_settings(USAGE_BUFFER_ENABLED=False):
        assert "usage_buffer" not in client.get("/health").json()


def test_health_is_degraded_when_redis_refuses_connections(client: Client, closed_port: int) -> None:
    with override_settings(CACHES=redis_cache_at(closed_port)):
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["services"] == {"database": "ok", "cache": "error", "broker": "ok"}


def test_health_is_degraded_within_a_second_when_redis_hangs(client: Client, hanging_port: int) -> None:
    with override_settings(CACHES=redis_cache_at(hanging_port), HEALTH_CHECK_TIMEOUT=0.3):
        started = time.monotonic()
        response = client.get("/health")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["services"]["cache"] in {"timeout", "error"}
    assert elapsed < 1.0


def test_health_is_degraded_when_the_broker_is_unreachable(client: Client, closed_port: int) -> None:
    broker = {"CELERY_BROKER_URL": f"redis://127.0.0.1:{closed_port}/3", "CELERY_BROKER_TRANSPORT_OPTIONS": {}}
    with override_settings(**broker):
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["services"]["broker"] == "error"


def test_health_is_degraded_when_the_brokers_transport_cannot_be_imported(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis answers, but the worker could not use it: kombu's Redis transport fails to import (as it did
    on a production install without `packaging`), so the broker is reported failing."""
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        monkeypatch.setattr(settings, "CELERY_BROKER_URL", "redis://127.0.0.1:6379/3")
    # As in a fresh process: neither the module nor kombu's cache of resolved transports holds it yet.
    monkeypatch.setattr(kombu.transport, "_transport_cache", {})
    monkeypatch.delitem(sys.modules, "kombu.transport.redis", raising=False)
    monkeypatch.setitem(sys.modules, "packaging", None)
    monkeypatch.setitem(sys.modules, "packaging.version", None)
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["services"]["broker"] == "error"


def test_health_is_degraded_within_a_second_when_the_broker_hangs(client: Client, hanging_port: int) -> None:
    broker = {"CELERY_BROKER_URL": f"redis://127.0.0.1:{hanging_port}/3", "CELERY_BROKER_TRANSPORT_OPTIONS": {}}
    with override_settings(HEALTH_CHECK_TIMEOUT=0.3, **broker):
        started = time.monotonic()
        response = client.get("/health")
        elapsed = time.monotonic() - started
    assert response.json()["services"]["broker"] in {"timeout", "error"}
    assert response.status_code == 200
    assert elapsed < 1.0


def health_in_subprocess(database_url: str, tmp_path: Path) -> tuple[int, dict[str, object], float]:
    """GET /health in a fresh process whose DATABASE_URL points at ``database_url``."""
    script = (
        "import json, time, django\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "client = Client()\n"
        "client.get('/healthz', HTTP_HOST='localhost')  # loads the URLs and middleware: not what is timed\n"
        "started = time.monotonic()\n"
        "response = client.get('/health', HTTP_HOST='localhost')\n"
        "print(json.dumps([response.status_code, response.json(), time.monotonic() - started]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "registry_project.settings",
            "DATABASE_URL": database_url,
            "REGISTRY_DATA_DIR": str(tmp_path),
            "HEALTH_CHECK_TIMEOUT": "0.3",
            "DB_CONNECT_TIMEOUT": "1",
        }
    )
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=60, check=True
    ).stdout
    status, body, elapsed = json.loads(output.decode().strip().splitlines()[-1])
    return status, body, elapsed


def test_health_answers_503_when_the_database_refuses_connections(closed_port: int, tmp_path: Path) -> None:
    status, body, _ = health_in_subprocess(f"postgresql://postgres@127.0.0.1:{closed_port}/registry", tmp_path)
    assert status == 503
    assert body["status"] == "error"
    assert body["services"] == {"database": "error", "cache": "ok", "broker": "ok"}


def test_health_answers_503_within_a_second_when_the_database_hangs(hanging_port: int, tmp_path: Path) -> None:
    status, body, elapsed = health_in_subprocess(f"postgresql://postgres@127.0.0.1:{hanging_port}/registry", tmp_path)
    assert status == 503
    assert body["services"]["database"] == "timeout"  # type: ignore[index]
    assert elapsed < 1.0
