"""Fixtures shared by the whole suite."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser, Group
from django.core.cache import cache
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from registry.access import read_counts
from registry.access.accounts import clear_local_access
from registry.access.roles import ROLE_NAMES
from tests.discovery.fakes.ollama import FakeOllama
from tests.factories import UserFactory


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Each test starts with an empty cache, whichever backend the environment configured."""
    cache.clear()
    # And with no access remembered in this process: user ids are reused across tests on SQLite.
    clear_local_access()
    # And with no trusted-network read counted and no thread flushing them (importing registry_project.wsgi
    # starts one, as a served process needs): a test's counts reach its database when it flushes them.
    read_counts.read_counts_flush_every(0)
    read_counts.pending_reads.take()


@pytest.fixture
def role_users(db: None) -> dict[str, AbstractUser]:
    """One local user per role (viewer, service, editor, admin), named after it, in its group.

    Unusable passwords: the API tests authenticate with tokens minted directly, which skips the
    deliberately slow password hashing.
    """
    users = {}
    for name in ROLE_NAMES:
        user = UserFactory(username=name, password=None)
        # get_or_create: a transactional test before this one may have flushed the migration's groups.
        user.groups.add(Group.objects.get_or_create(name=name)[0])
        users[name] = user
    return users


@pytest.fixture
def api_client_for(role_users: dict[str, AbstractUser]) -> Callable[[str], APIClient]:
    """``api_client_for("editor")``: an APIClient carrying a local access token of that role's user."""

    def client_for(role: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(role_users[role])}")
        return client

    return client_for


@pytest.fixture
def plain_static_files(settings: Any) -> None:
    """Admin pages name static files; production's manifest storage would need collectstatic first."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def staff(role_users: dict[str, AbstractUser], plain_static_files: None) -> dict[str, Client]:
    """``staff["editor"]``: a Django test client logged into the admin as that role's (staff) user."""
    clients = {}
    for role, user in role_users.items():
        user.is_staff = True
        user.save()
        client = Client()
        client.force_login(user)
        clients[role] = client
    return clients


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    """A fake Ollama on loopback (tests/discovery/fakes): discovery's, the console's and the API's tests use it."""
    server = FakeOllama().start()
    yield server
    server.stop()
