"""The admin user that `make run` and the container entrypoint make sure of."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import call_command

from registry.access.accounts import UserAccess, admin_user_ensure, user_access, user_role
from registry.access.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_new_admin_without_password_gets_a_generated_one_shown_once(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("ensure_admin")
    first = capsys.readouterr().out
    assert "generated password" in first
    password = first.split("generated password: ")[1].split()[0]
    # Advice that works as printed: no `changepassword`, which needs the service's settings (DEBUG).
    assert "changepassword" not in first
    assert "set DJANGO_SUPERUSER_PASSWORD" in first
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser
    assert user.check_password(password)

    call_command("ensure_admin")
    assert "generated password" not in capsys.readouterr().out
    user.refresh_from_db()
    assert user.check_password(password)


def test_password_from_the_environment_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "first-password-123")
    call_command("ensure_admin")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "second-password-456")
    call_command("ensure_admin")
    assert get_user_model().objects.get(username="ops").check_password("second-password-456")


def test_role_groups_exist_after_migrate() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= {"viewer", "service", "editor", "admin"}


def test_user_role_is_the_highest_group_and_superusers_are_admins() -> None:
    user = UserFactory()
    assert user_role(user) is None
    user.groups.add(Group.objects.get(name="viewer"), Group.objects.get(name="editor"))
    assert user_role(user) == Role.EDITOR
    admin = admin_user_ensure(username="root", password="pw-123456789")
    assert user_role(get_user_model().objects.get(username=admin.username)) == Role.ADMIN


def test_editor_group_may_change_models_in_the_admin_but_not_delete_them() -> None:
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="editor"))
    user = get_user_model().objects.get(pk=user.pk)
    assert user.has_perm("registry.change_registeredmodel")
    assert user.has_perm("registry.view_modelusage")
    assert not user.has_perm("registry.delete_registeredmodel")
    assert not user.has_perm("discovery.change_providersource")


def test_the_access_kept_for_a_database_outage_goes_with_any_change_to_the_user() -> None:
    user = UserFactory()
    user.groups.add(Group.objects.get(name="service"))
    assert user_access(user.pk) == UserAccess(user_id=user.pk, is_active=True, role=Role.SERVICE)
    assert cache.get(f"user-access-known:{user.pk}") is not None

    user.is_active = False
    user.save()

    # Gone with the fresh entry: an outage right after the change cannot bring back the old access.
    assert cache.get(f"user-access-known:{user.pk}") is None
    refreshed = user_access(user.pk)
    assert refreshed is not None
    assert refreshed.is_active is False
