"""The dashboard's retention panel: each pruned table's size and how long it is kept."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.factories import ModelUsageFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_dashboard_shows_each_tables_size_and_retention(settings: Any, plain_static_files: None) -> None:
    settings.RETENTION_USAGE_DAYS = 93
    settings.RETENTION_AUDIT_DAYS = 0
    ModelUsageFactory.create_batch(2)
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    page = client.get("/admin/").content.decode()

    assert "Table sizes and retention" in page
    assert 'usage records <span class="quiet">(model_usage)</span>' in page
    assert 'hourly usage rollups <span class="quiet">(model_usage_rollup)</span>' in page
    assert "731 days" in page  # RETENTION_USAGE_ROLLUP_DAYS' default: rollups outlive the records
    assert "93 days" in page
    assert "<td>for ever</td>" in page


def test_the_retention_panel_is_the_admin_roles(staff: dict[str, Client]) -> None:
    assert "Table sizes and retention" in staff["admin"].get("/admin/").content.decode()
    assert "Table sizes and retention" not in staff["viewer"].get("/admin/").content.decode()
