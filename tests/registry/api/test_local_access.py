"""A local user's role and active flag are cached, and every change to them shows on the next request."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import AbstractUser, Group, User
from django.core.cache import cache
from rest_framework.test import APIClient

from registry.access.accounts import user_access
from tests.factories import RegisteredModelFactory

pytestmark = pytest.mark.django_db

NEW_MODEL = {"name": "fresh-model", "display_name": "Fresh", "provider": "custom", "model_type": "chat"}


def test_a_promotion_takes_effect_on_the_next_request(
    api_client_for: Callable[[str], APIClient], role_users: dict[str, AbstractUser]
) -> None:
    client = api_client_for("viewer")
    assert client.post("/models", NEW_MODEL, format="json").status_code == 403

    role_users["viewer"].groups.add(Group.objects.get(name="editor"))

    assert client.post("/models", NEW_MODEL, format="json").status_code == 201


def test_a_demotion_through_the_group_side_takes_effect_on_the_next_request(
    api_client_for: Callable[[str], APIClient], role_users: dict[str, AbstractUser]
) -> None:
    client = api_client_for("editor")
    assert client.post("/models", NEW_MODEL, format="json").status_code == 201

    Group.objects.get(name="editor").user_set.remove(role_users["editor"])

    assert client.post("/models", {**NEW_MODEL, "name": "other"}, format="json").status_code == 403


def test_a_deactivated_user_is_refused_on_the_next_request(
    api_client_for: Callable[[str], APIClient], role_users: dict[str, AbstractUser]
) -> None:
    RegisteredModelFactory()
    client = api_client_for("viewer")
    assert client.get("/models").status_code == 200

    user = role_users["viewer"]
    user.is_active = False
    user.save()

    response = client.get("/models")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_deleted_user_is_refused(
    api_client_for: Callable[[str], APIClient], role_users: dict[str, AbstractUser]
) -> None:
    client = api_client_for("viewer")
    assert client.get("/models").status_code == 200

    role_users["viewer"].delete()

    assert client.get("/models").status_code == 401


def test_renaming_a_role_group_takes_the_role_away(
    api_client_for: Callable[[str], APIClient],
) -> None:
    client = api_client_for("viewer")
    assert client.get("/models").status_code == 200

    group = Group.objects.get(name="viewer")
    group.name = "former-viewers"
    group.save()

    assert client.get("/models").status_code == 403


def test_writes_are_audited_with_the_local_user_behind_the_token(
    api_client_for: Callable[[str], APIClient], role_users: dict[str, AbstractUser]
) -> None:
    assert api_client_for("editor").post("/models", NEW_MODEL, format="json").status_code == 201

    entry = LogEntry.objects.filter(object_repr="fresh-model").get()
    assert entry.actor_id == role_users["editor"].pk


def test_another_process_sees_a_change_once_its_memory_window_ends(
    api_client_for: Callable[[str], APIClient], role_users: dict[str, AbstractUser], settings
) -> None:
    # This process stands for another gunicorn worker: it remembered the access before the change,
    # and the change's signal reached only the shared cache, as it would from another process.
    settings.USER_ACCESS_LOCAL_SECONDS = 0.2
    user = role_users["viewer"]
    client = api_client_for("viewer")
    assert client.get("/models").status_code == 200
    remembered = user_access(user.pk)

    User.objects.filter(pk=user.pk).update(is_active=False)  # no signal: as if elsewhere
    cache.delete(f"user-access:{user.pk}")  # what the other process's signal did

    assert user_access(user.pk) == remembered  # still within the window
    time.sleep(0.25)
    assert client.get("/models").status_code == 401
