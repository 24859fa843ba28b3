"""Role checks for DRF views, on the registry's ordered roles (viewer < service < editor < admin).

Two forms, for two kinds of view:

- ``HasRole(Role.ADMIN)`` (or the ready-made ``IsViewer``/``IsService``/``IsEditor``/``IsAdmin``):
  one role for the whole view, e.g. ``permission_classes = [IsAdmin]`` on ``GET /audit``.
- ``ActionRoles``: per-action minimum roles read from the view's ``action_roles`` mapping
  (``{"list": Role.VIEWER, "create": Role.EDITOR, ...}``); an action missing from the mapping is
  refused, so a new action is closed until someone grants it.

A caller without credentials gets 401 (DRF answers NotAuthenticated when no authenticator
succeeded); an authenticated caller without the role gets 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from registry.access.roles import Role
from registry.api.authentication import request_role

if TYPE_CHECKING:
    # Only for annotations: DRF imports DEFAULT_PERMISSION_CLASSES while rest_framework.views loads,
    # so importing the views module here at runtime would be circular.
    from rest_framework.views import APIView


class HasRole(BasePermission):
    """Allows callers whose role is ``role`` or higher.

    DRF instantiates each entry of ``permission_classes``; an instance is callable and returns
    itself, so ``permission_classes = [HasRole(Role.EDITOR)]`` works as well as a class would.
    """

    def __init__(self, role: Role = Role.VIEWER) -> None:
        self.role = role

    def __call__(self) -> HasRole:
        return self

    def has_permission(self, request: Request, view: APIView) -> bool:
        role = request_role(request)
        return role is not None and role >= self.role


class IsViewer(HasRole):
    def __init__(self) -> None:
        super().__init__(Role.VIEWER)


class IsService(HasRole):
    def __init__(self) -> None:
        super().__init__(Role.SERVICE)


class IsEditor(HasRole):
    def __init__(self) -> None:
        super().__init__(Role.EDITOR)


class IsAdmin(HasRole):
    def __init__(self) -> None:
        super().__init__(Role.ADMIN)


class ActionRoles(BasePermission):
    """Minimum role per viewset action, from ``view.action_roles``; unknown actions are refused."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        action_roles: Mapping[str, Role] = getattr(view, "action_roles", {})
        role = request_role(request)
        action: Any = getattr(view, "action", None)
        if action is None:
            if hasattr(view, "action_map"):
                # A viewset route without this method (or OPTIONS): any role may learn that (405, metadata).
                return role is not None
            # Plain APIViews have no action: fall back to the HTTP method, lower-cased.
            action = (request.method or "").lower()
        if action == "metadata":
            # OPTIONS (DRF names its action "metadata"): what the endpoint accepts, for any role.
            return role is not None
        required = action_roles.get(action)
        return required is not None and role is not None and role >= required
