"""The token endpoints: a deleted user's refresh token, and throttling per client and per username."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_hasher(settings) -> None:
    # Dozens of logins per test: each failed one still hashes once (Django's timing defence).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def throttled_count(scope: str) -> float:
    return REGISTRY.get_sample_value("registry_requests_throttled_total", {"scope": scope}) or 0.0


def test_a_deleted_users_refresh_token_is_a_401_json() -> None:
    user = UserFactory(username="gone", password=None)
    refresh = str(RefreshToken.for_user(user))
    user.delete()
    response = APIClient().post("/auth/token/refresh", {"refresh": refresh}, format="json")
    assert response.status_code == 401
    assert response.json() == {"detail": "The token's user no longer exists."}


def test_wrong_passwords_for_one_username_are_throttled_with_429_and_counted() -> None:
    UserFactory(username="carol", password="a-long-password-123")
    before = throttled_count("auth-username")
    # From a different address each time: the per-username limit holds whatever the address.
    statuses = [
        APIClient(REMOTE_ADDR=f"10.0.0.{n}")
        .post("/auth/token", {"username": "carol", "password": f"guess-{n}"}, format="json")
        .status_code
        for n in range(12)
    ]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    refused = APIClient(REMOTE_ADDR="10.0.1.1").post(
        "/auth/token", {"username": "carol", "password": "a-long-password-123"}, format="json"
    )
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "throttled" in refused.json()["detail"]
    assert throttled_count("auth-username") == before + 3


def test_one_client_is_throttled_across_usernames_and_the_refresh_endpoint() -> None:
    client = APIClient(REMOTE_ADDR="10.0.2.2")
    statuses = [
        client.post("/auth/token", {"username": f"user{n}", "password": "x"}, format="json").status_code
        for n in range(30)
    ]
    assert set(statuses) == {401}
    assert client.post("/auth/token/refresh", {"refresh": "x"}, format="json").status_code == 429
    # Another client is not affected.
    assert (
        APIClient(REMOTE_ADDR="10.0.2.3").post("/auth/token/refresh", {"refresh": "x"}, format="json").status_code
        == 401
    )


def test_a_forged_x_forwarded_for_does_not_escape_the_client_limit() -> None:
    statuses = [
        APIClient(REMOTE_ADDR="10.0.3.3", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
        .post("/auth/token", {"username": f"u{n}", "password": "x"}, format="json")
        .status_code
        for n in range(31)
    ]
    assert statuses[-1] == 429
