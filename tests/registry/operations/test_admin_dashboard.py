"""The console's front page points operators at alerts, discovery runs, the audit log, health and metrics."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def plain_static_files(settings) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def test_the_admin_index_links_the_operations_pages() -> None:
    client = Client()
    client.force_login(UserFactory(username="ops", is_staff=True, is_superuser=True))

    page = client.get("/admin/").content.decode()

    assert 'id="operations-module"' in page
    assert 'href="/admin/registry/alert/?state=open">Open alerts' in page
    assert 'href="/admin/discovery/discoveryrun/">Discovery runs' in page
    assert 'href="/admin/auditlog/logentry/">Audit log' in page
    assert 'href="/health">Health' in page
    assert 'href="/metrics">Metrics' in page


def test_the_open_alerts_link_filters_the_alert_list() -> None:
    client = Client()
    client.force_login(UserFactory(username="ops", is_staff=True, is_superuser=True))

    assert client.get("/admin/registry/alert/?state=open").status_code == 200


def test_staff_without_the_permissions_see_only_health_and_metrics() -> None:
    client = Client()
    client.force_login(UserFactory(username="staff-only", is_staff=True))

    page = client.get("/admin/").content.decode()

    assert "Open alerts" not in page
    assert "Audit log" not in page
    assert 'href="/health">Health' in page
