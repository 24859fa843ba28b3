"""GET /audit: admins only, filters by object, actor, action and time, secrets masked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import AbstractUser
from django.utils import timezone
from rest_framework.test import APIClient

from registry.access.audit import MASK, acting_as, system_actor
from registry.catalog.prices import price_set
from registry.models import Alert, AlertKind
from registry.telemetry.alerts import alerts_acknowledge
from tests.factories import ModelEndpointFactory, ProviderSourceFactory, RegisteredModelFactory
from tests.tokens import platform_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(role_users: dict[str, AbstractUser]) -> dict[str, object]:
    """A small history: an admin's model, discovery's source, an endpoint with a key, a deletion."""
    LogEntry.objects.all().delete()  # the role users' own creation
    with acting_as(user=role_users["admin"]):
        model = RegisteredModelFactory(name="gpt-4o")
        endpoint = ModelEndpointFactory(model=model, api_key="sk-live-should-never-show")
    with system_actor("discovery"):
        source = ProviderSourceFactory(name="ollama-local")
        doomed = RegisteredModelFactory(name="old-model")
    with acting_as(user=role_users["admin"]):
        doomed.delete()
    return {"model": model, "endpoint": endpoint, "source": source}


def audit(client: APIClient, **params: str) -> list[dict[str, object]]:
    response = client.get("/audit", params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_admins_read_the_audit_log(api_client_for: Callable[[str], APIClient], history: dict[str, object]) -> None:
    entries = audit(api_client_for("admin"))

    assert [(e["action"], e["object_type"], e["object_repr"], e["actor"]) for e in entries] == [
        ("delete", "model", "old-model", "admin"),
        ("create", "model", "old-model", "system:discovery"),
        ("create", "source", "ollama-local", "system:discovery"),
        ("create", "endpoint", str(history["endpoint"]), "admin"),
        ("create", "model", "gpt-4o", "admin"),
    ]


@pytest.mark.parametrize("role", ["viewer", "service", "editor"])
def test_other_roles_may_not_read_the_audit_log(api_client_for: Callable[[str], APIClient], role: str) -> None:
    assert api_client_for(role).get("/audit").status_code == 403


def test_anonymous_callers_get_401() -> None:
    assert APIClient().get("/audit").status_code == 401


def test_a_platform_admin_reads_the_audit_log(role_users: dict[str, AbstractUser]) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {platform_token('service_role')}")

    assert client.get("/audit").status_code == 200


def test_secrets_show_only_as_changed(api_client_for: Callable[[str], APIClient], history: dict[str, object]) -> None:
    response = api_client_for("admin").get("/audit", {"object_type": "endpoint"})

    assert "sk-live-should-never-show" not in response.content.decode()
    assert response.json()["results"][0]["changes"]["api_key"] == [MASK, MASK]


def test_filter_by_object(api_client_for: Callable[[str], APIClient], history: dict[str, object]) -> None:
    model_id = str(history["model"].pk)  # type: ignore[attr-defined]

    entries = audit(api_client_for("admin"), object_type="model", object_id=model_id)

    assert [(e["object_type"], e["object_id"], e["action"]) for e in entries] == [("model", model_id, "create")]


def test_filter_by_named_actor(api_client_for: Callable[[str], APIClient], history: dict[str, object]) -> None:
    entries = audit(api_client_for("admin"), actor="system:discovery")

    assert {e["actor"] for e in entries} == {"system:discovery"}
    assert len(entries) == 2


def test_filter_by_user_actor_and_action(
    api_client_for: Callable[[str], APIClient], history: dict[str, object]
) -> None:
    entries = audit(api_client_for("admin"), actor="admin", action="delete")

    assert [(e["actor"], e["action"], e["object_repr"]) for e in entries] == [("admin", "delete", "old-model")]


def test_filter_by_time_range(api_client_for: Callable[[str], APIClient], history: dict[str, object]) -> None:
    now = timezone.now()
    LogEntry.objects.filter(object_repr="gpt-4o").update(timestamp=now - timedelta(days=3))

    recent = audit(api_client_for("admin"), since=(now - timedelta(days=1)).isoformat())
    older = audit(
        api_client_for("admin"),
        since=(now - timedelta(days=4)).isoformat(),
        until=(now - timedelta(days=2)).isoformat(),
    )

    assert "gpt-4o" not in {e["object_repr"] for e in recent}
    assert [e["object_repr"] for e in older] == ["gpt-4o"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"action": "explode"}, "action"),
        ({"object_type": "table"}, "object_type"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(
    api_client_for: Callable[[str], APIClient], params: dict[str, str], field: str
) -> None:
    response = api_client_for("admin").get("/audit", params)

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_the_audit_log_is_paginated_with_a_fixed_number_of_queries(
    api_client_for: Callable[[str], APIClient], role_users: dict[str, AbstractUser], django_assert_max_num_queries
) -> None:
    with acting_as(user=role_users["admin"]):
        RegisteredModelFactory.create_batch(60)
    client = api_client_for("admin")

    with django_assert_max_num_queries(8):
        response = client.get("/audit", {"limit": 50})

    body = response.json()
    assert len(body["results"]) == 50
    assert body["count"] >= 60


def test_price_and_alert_entries_have_an_object_type(
    api_client_for: Callable[[str], APIClient], role_users: dict[str, AbstractUser]
) -> None:
    model = RegisteredModelFactory(name="gpt-4o")
    alert = Alert.objects.create(kind=AlertKind.ERROR_RATE, model=model, message="errors")
    with acting_as(user=role_users["admin"]):
        price, _ = price_set(model=model, input_per_mtok=Decimal("1"), output_per_mtok=Decimal("2"))
        alerts_acknowledge(alerts=[alert], by="admin")

    prices = audit(api_client_for("admin"), object_type="price")
    alerts = audit(api_client_for("admin"), object_type="alert")

    assert [(e["object_type"], e["object_id"], e["actor"]) for e in prices] == [("price", str(price.pk), "admin")]
    assert [(e["object_type"], e["object_id"], e["actor"]) for e in alerts] == [("alert", str(alert.pk), "admin")]
