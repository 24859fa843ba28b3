"""The operator console: sources saved through the service, "Discover now" for admins, run history."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
from discovery.schedules import schedule_name
from tests.factories import ProviderSourceFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:discovery_providersource_changelist"


@pytest.fixture(autouse=True)
def _plain_static_files(settings: Any) -> None:
    # Admin pages name static files; the manifest storage of production needs collectstatic first.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def staff(role_users: dict[str, AbstractUser]) -> dict[str, Client]:
    clients = {}
    for role, user in role_users.items():
        user.is_staff = True
        user.save()
        client = Client()
        client.force_login(user)
        clients[role] = client
    return clients


def test_admin_discover_now_queues_the_selected_sources(
    staff: dict[str, Client], queued: list[tuple[Any, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    source = ProviderSourceFactory(name="gpu-box")

    with django_capture_on_commit_callbacks(execute=True):
        response = staff["admin"].post(
            reverse(CHANGELIST), {"action": "discover_now", "_selected_action": [source.pk]}, follow=True
        )

    assert response.status_code == 200
    assert queued == [((source.pk,), {"trigger": "manual"})]
    assert "Discovery queued for gpu-box" in response.content.decode()


def test_editor_cannot_reach_sources_or_discover_now(staff: dict[str, Client], queued: list[tuple[Any, Any]]) -> None:
    source = ProviderSourceFactory(name="gpu-box")

    response = staff["editor"].post(reverse(CHANGELIST), {"action": "discover_now", "_selected_action": [source.pk]})

    assert response.status_code == 403
    assert queued == []


def test_adding_a_source_in_the_admin_creates_its_schedule_and_hides_the_key(staff: dict[str, Client]) -> None:
    response = staff["admin"].post(
        reverse("admin:discovery_providersource_add"),
        {
            "name": "openai-eu",
            "kind": SourceKind.OPENAI,
            "base_url": "https://eu.api.openai.com/v1",
            "enabled": "on",
            "interval_seconds": "900",
            "api_key": "sk-admin-typed-secret",
        },
    )

    assert response.status_code == 302
    source = ProviderSource.objects.get(name="openai-eu")
    assert source.api_key == "sk-admin-typed-secret"
    assert PeriodicTask.objects.get(name=schedule_name(source)).interval.every == 900
    page = staff["admin"].get(reverse("admin:discovery_providersource_change", args=[source.pk]))
    assert page.status_code == 200
    assert "sk-admin-typed-secret" not in page.content.decode()


def test_invalid_base_url_in_the_admin_is_a_field_error(staff: dict[str, Client]) -> None:
    response = staff["admin"].post(
        reverse("admin:discovery_providersource_add"),
        {"name": "bad", "kind": SourceKind.OLLAMA, "base_url": "ollama:11434", "interval_seconds": "60"},
    )

    assert response.status_code == 200
    assert "Enter an http:// or https:// URL with a host" in response.content.decode()
    assert ProviderSource.objects.count() == 0


def test_deleting_a_source_in_the_admin_removes_its_schedule(staff: dict[str, Client]) -> None:
    staff["admin"].post(
        reverse("admin:discovery_providersource_add"),
        {
            "name": "box",
            "kind": SourceKind.OLLAMA,
            "base_url": "http://box:11434",
            "enabled": "on",
            "interval_seconds": "60",
        },
    )
    source = ProviderSource.objects.get(name="box")

    response = staff["admin"].post(reverse("admin:discovery_providersource_delete", args=[source.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not PeriodicTask.objects.filter(name=schedule_name(source)).exists()


def test_run_history_shows_counts_and_errors(staff: dict[str, Client]) -> None:
    source = ProviderSourceFactory(name="gpu-box")
    DiscoveryRun.objects.create(
        source=source, status=RunStatus.FAILED, error_message="the key for source gpu-box was rejected (HTTP 401)"
    )

    response = staff["admin"].get(reverse("admin:discovery_discoveryrun_changelist"))

    assert response.status_code == 200
    assert "the key for source gpu-box was rejected (HTTP 401)" in response.content.decode()


def test_source_page_shows_its_recent_runs(staff: dict[str, Client]) -> None:
    source = ProviderSourceFactory(name="gpu-box")
    DiscoveryRun.objects.create(source=source, status=RunStatus.SUCCEEDED, models_added=4)
    DiscoveryRun.objects.create(source=source, status=RunStatus.FAILED, error_message="connection <refused>")

    response = staff["admin"].get(reverse("admin:discovery_providersource_change", args=[source.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "<td>4 / 0 / 0 / 0</td>" in page
    assert "connection &lt;refused&gt;" in page  # escaped
