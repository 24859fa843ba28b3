"""Local users and their roles."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction

from registry.roles import Role


@dataclass(frozen=True)
class EnsuredAdmin:
    username: str
    created: bool
    generated_password: str | None


@transaction.atomic
def admin_user_ensure(*, username: str, password: str | None, email: str = "") -> EnsuredAdmin:
    """Make sure a superuser ``username`` exists.

    A given password is (re)applied, so the environment stays the source of truth. Without one,
    a new user gets a generated password, returned once for the caller to show; an existing user
    keeps theirs.
    """
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    generated: str | None = None
    created = user is None
    if user is None:
        user = user_model(username=username, email=email)
        if password is None:
            generated = password = secrets.token_urlsafe(18)
    user.is_staff = True
    user.is_superuser = True
    user.is_active = True
    if password is not None:
        user.set_password(password)
    user.save()
    return EnsuredAdmin(username=username, created=created, generated_password=generated)


def user_role(user: AbstractUser) -> Role | None:
    """The highest registry role of a local user; superusers are admins."""
    if not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    roles = [Role.from_name(name) for name in user.groups.values_list("name", flat=True)]
    known = [role for role in roles if role is not None]
    return max(known) if known else None
