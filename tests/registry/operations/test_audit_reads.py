"""GET /audit/reads and the console's page of them: token-less reads as counts, for those who read the audit log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from registry.access.read_counts import read_counted, read_counts_flush
from tests.tokens import platform_token

pytestmark = pytest.mark.django_db

ClientFor = Callable[[str], APIClient]
ROUTER, OTHER = "172.28.1.5", "172.28.1.9"
NETWORK = "172.28.1.0/24"
T_1204 = datetime(2026, 12, 5, 12, 4, tzinfo=UTC).timestamp()


@pytest.fixture
def reads() -> None:
    """A router that read the list 57 times at 12:04 and a model once at 12:05, and another client once at 12:04."""
    for second in range(57):
        read_counted(address=ROUTER, network=NETWORK, method="GET", route="/api/v1/models", at=T_1204 + second)
    read_counted(address=ROUTER, network=NETWORK, method="GET", route="/api/v1/models/{ref}", at=T_1204 + 70)
    read_counted(address=OTHER, network=NETWORK, method="GET", route="/api/v1/models", at=T_1204 + 3)
    read_counts_flush()


@pytest.mark.usefixtures("reads")
def test_admins_read_the_counts_newest_minute_first(api_client_for: ClientFor) -> None:
    response = api_client_for("admin").get("/audit/reads")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [(row["minute"], row["client_address"], row["route"], row["count"]) for row in body["results"]] == [
        ("2026-12-05T12:05:00Z", ROUTER, "/api/v1/models/{ref}", 1),
        ("2026-12-05T12:04:00Z", ROUTER, "/api/v1/models", 57),
        ("2026-12-05T12:04:00Z", OTHER, "/api/v1/models", 1),
    ]
    first_of_1204 = body["results"][1]
    assert first_of_1204["summary"] == f"{ROUTER} read GET /api/v1/models 57 times in 2026-12-05 12:04 UTC"
    assert first_of_1204["actor"] == f"platform:network:{ROUTER}"
    assert first_of_1204["network"] == NETWORK
    assert body["results"][0]["summary"].endswith("/api/v1/models/{ref} once in 2026-12-05 12:05 UTC")


@pytest.mark.usefixtures("reads")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"client": OTHER}, [(OTHER, 1)]),
        ({"route": "/api/v1/models/{ref}"}, [(ROUTER, 1)]),
        ({"since": "2026-12-05T12:05:00Z"}, [(ROUTER, 1)]),
        ({"until": "2026-12-05T12:05:00Z", "client": ROUTER}, [(ROUTER, 57)]),
    ],
)
def test_the_counts_filter_by_client_route_and_time(
    api_client_for: ClientFor, query: dict[str, str], expected: list[tuple[str, int]]
) -> None:
    response = api_client_for("admin").get("/audit/reads", query)
    assert response.status_code == 200
    assert [(row["client_address"], row["count"]) for row in response.json()["results"]] == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"client": "not-an-address"}, "client"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-12-05T12:05:00Z", "until": "2026-12-05T12:00:00Z"}, "until"),
        ({"route": "\x00"}, "route"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(api_client_for: ClientFor, query: dict[str, str], field: str) -> None:
    response = api_client_for("admin").get("/audit/reads", query)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("role", ["viewer", "service", "editor"])
def test_only_admins_read_the_counts(api_client_for: ClientFor, role: str) -> None:
    assert api_client_for(role).get("/audit/reads").status_code == 403


def test_no_token_is_a_401_and_a_trusted_network_is_refused_as_the_service_role(settings: Any) -> None:
    assert APIClient().get("/audit/reads").status_code == 401
    settings.PLATFORM_TRUSTED_NETWORKS = [NETWORK]
    assert APIClient().get("/audit/reads", REMOTE_ADDR=ROUTER).status_code == 403
    assert APIClient().get("/api/v1/audit/reads", REMOTE_ADDR=ROUTER).status_code == 403


@pytest.mark.usefixtures("reads")
def test_a_platform_admin_reads_them_under_v1_too() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {platform_token('service_role')}")
    response = client.get("/api/v1/audit/reads")
    assert response.status_code == 200
    assert response.json()["count"] == 3


@pytest.mark.usefixtures("reads")
def test_the_console_lists_the_counts_for_admins_only(staff: dict[str, Client]) -> None:
    admin, editor = staff["admin"], staff["editor"]

    page = admin.get("/admin/registry/trustednetworkread/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"{ROUTER} read GET /api/v1/models 57 times in 2026-12-05 12:04 UTC" in html
    assert "/admin/registry/trustednetworkread/" in admin.get("/admin/").content.decode()

    assert editor.get("/admin/registry/trustednetworkread/").status_code == 403
    assert "trustednetworkread" not in editor.get("/admin/").content.decode()
