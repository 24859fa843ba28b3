"""Local users and their roles."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.http import HttpRequest

from registry.access.roles import Role
from registry_project.env import env_str

# What to tell someone who wants a password of their own: the environment's password is applied
# at every start (admin_user_ensure), so this works as printed, with no DEBUG or settings to know.
CHOOSE_PASSWORD_HINT = "to choose your own, set DJANGO_SUPERUSER_PASSWORD (applied at every start)"  # noqa: S105


@dataclass(frozen=True)
class EnsuredAdmin:
    username: str
    created: bool
    generated_password: str | None
    # The caller's password was applied (the environment's, for the commands).
    password_given: bool = False


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
    return EnsuredAdmin(
        username=username,
        created=created,
        generated_password=generated,
        password_given=password is not None and generated is None,
    )


def admin_user_ensure_from_environment() -> EnsuredAdmin:
    """``admin_user_ensure`` for DJANGO_SUPERUSER_USERNAME (default ``admin``), _PASSWORD (or _FILE) and _EMAIL."""
    return admin_user_ensure(
        username=os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin",
        password=env_str("DJANGO_SUPERUSER_PASSWORD"),
        email=os.environ.get("DJANGO_SUPERUSER_EMAIL", ""),
    )


def user_role(user: AbstractUser) -> Role | None:
    """The highest registry role of a local user; superusers are admins."""
    if not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    roles = [Role.from_name(name) for name in user.groups.values_list("name", flat=True)]
    known = [role for role in roles if role is not None]
    return max(known) if known else None


def request_role(request: HttpRequest) -> Role | None:
    """The role of a request's logged-in user, looked up once per request.

    The console asks it several times while building one page (each inline's form and fields); a
    role is a query on the user's groups, so the answer is kept on the request.
    """
    cached = getattr(request, "_console_role", _NOT_LOOKED_UP)
    if cached is _NOT_LOOKED_UP:
        user = request.user
        cached = user_role(user) if user.is_authenticated else None
        request._console_role = cached  # type: ignore[attr-defined]
    return cached  # type: ignore[return-value]


_NOT_LOOKED_UP = object()


@dataclass(frozen=True)
class UserAccess:
    """What a request needs to know of a local user to authorize it: whether it may log in, and its role."""

    user_id: int
    is_active: bool
    role: Role | None


# A second, per-process layer for the hottest lookup of all: it spares a cache round trip on
# nearly every request. The process that makes a change drops its entry at once; other processes
# see the change within USER_ACCESS_LOCAL_SECONDS.
_local_access: dict[int, tuple[float, UserAccess]] = {}
_LOCAL_ACCESS_MAX = 10_000


def _access_key(user_id: int) -> str:
    return f"user-access:{user_id}"


def _known_access_key(user_id: int) -> str:
    return f"user-access-known:{user_id}"


# How long the access last read is kept for a database outage (see user_access).
_KNOWN_ACCESS_SECONDS = 24 * 3600


def user_access(user_id: int) -> UserAccess | None:
    """The access of local user ``user_id`` (None if there is no such user), cached for a short while.

    Every API request with a local token needs it, and two queries (the user, its groups) cost more
    than the cached read they guard. Changes to a user, its groups or a group drop the entry at once
    (``connect_access_invalidation``); ``USER_ACCESS_CACHE_SECONDS`` bounds staleness if a signal is
    bypassed (a raw SQL update). While the database cannot be reached, the access last read (kept a
    day, dropped by the same changes) answers instead of an error.
    """
    now = time.monotonic()
    local = _local_access.get(user_id)
    if local is not None and local[0] > now:
        return local[1]
    key = _access_key(user_id)
    cached = cache.get(key)
    if isinstance(cached, UserAccess):
        access = cached
    else:
        try:
            user = get_user_model().objects.filter(pk=user_id).first()
        except (OperationalError, InterfaceError):
            # The database is away (a failover): the access last read stands, so that usage posts can
            # be kept in the usage buffer meanwhile. Safe: a change to a user or a group drops this copy
            # as it drops the fresh one, and no such change can be made while the database is away.
            known = cache.get(_known_access_key(user_id))
            if isinstance(known, UserAccess):
                return known
            raise
        if user is None:
            return None
        access = UserAccess(user_id=user_id, is_active=user.is_active, role=user_role(user))
        cache.set(key, access, timeout=settings.USER_ACCESS_CACHE_SECONDS)
        cache.set(_known_access_key(user_id), access, timeout=_KNOWN_ACCESS_SECONDS)
    if len(_local_access) >= _LOCAL_ACCESS_MAX:
        _local_access.clear()
    _local_access[user_id] = (now + settings.USER_ACCESS_LOCAL_SECONDS, access)
    return access


def clear_local_access() -> None:
    """Forget this process's in-memory access entries (the shared cache keeps its own)."""
    _local_access.clear()


def _forget_access(user_ids: list[int]) -> None:
    for user_id in user_ids:
        _local_access.pop(user_id, None)
    cache.delete_many([key for user_id in user_ids for key in (_access_key(user_id), _known_access_key(user_id))])


def connect_access_invalidation() -> None:
    """Drop cached access when a user, its group membership or any group changes."""
    user_model = get_user_model()
    post_save.connect(_on_user_change, sender=user_model, dispatch_uid="user-access-save")
    post_delete.connect(_on_user_change, sender=user_model, dispatch_uid="user-access-delete")
    m2m_changed.connect(_on_membership_change, sender=user_model.groups.through, dispatch_uid="user-access-groups")
    post_save.connect(_on_group_change, sender=Group, dispatch_uid="user-access-group-save")
    # pre_delete: once a group is gone, so are its memberships, and with them the members to drop.
    pre_delete.connect(_on_group_change, sender=Group, dispatch_uid="user-access-group-delete")


def _on_user_change(instance: AbstractUser, **kwargs: Any) -> None:
    _forget_access([instance.pk])


def _on_membership_change(instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any) -> None:
    if action == "pre_clear" and reverse:
        # group.user_set.clear(): name the members while they are still members.
        _drop_all_access(instance)
    elif action.startswith("post_"):
        if not reverse:  # user.groups.add/remove/clear(...): instance is the user
            _forget_access([instance.pk])
        elif pk_set:  # group.user_set.add/remove(...): pk_set holds the users
            _forget_access(list(pk_set))


def _on_group_change(instance: Group, **kwargs: Any) -> None:
    _drop_all_access(instance)


def _drop_all_access(group: Group) -> None:
    # A renamed or deleted group can change the role of every member; members are few per group.
    _forget_access(list(get_user_model().objects.filter(groups=group).values_list("pk", flat=True)))
