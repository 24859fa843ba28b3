"""The registry's four roles and what each may do.

Roles are Django groups of these names (created by a migration); superusers are admins. The
model permissions given to each group make the admin console show each role what it may do.
"""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    """Ordered: each role may do everything the roles below it may."""

    VIEWER = 1
    SERVICE = 2
    EDITOR = 3
    ADMIN = 4

    @property
    def group_name(self) -> str:
        return self.name.lower()

    @classmethod
    def from_name(cls, name: str | None) -> Role | None:
        if not name:
            return None
        try:
            return cls[name.upper()]
        except KeyError:
            return None


ROLE_NAMES = [role.group_name for role in Role]

# Model permissions (app_label.codename) of each role's group, cumulative up the ladder.
_REGISTRY_CONFIG_MODELS = [
    "registeredmodel",
    "modelendpoint",
    "modelcapability",
    "modelparameter",
    "modelprice",
    "capabilitymetric",
]
_HISTORY_MODELS = ["modelperformance", "modelusage"]

ROLE_PERMISSIONS: dict[Role, list[str]] = {
    # Viewers see everything but secrets: sources (whose keys no page shows) and their runs included.
    Role.VIEWER: [f"registry.view_{m}" for m in [*_REGISTRY_CONFIG_MODELS, *_HISTORY_MODELS, "alert", "modelruntime"]]
    + ["discovery.view_providersource", "discovery.view_discoveryrun", "discovery.view_catalogsnapshot"],
    Role.SERVICE: [f"registry.add_{m}" for m in _HISTORY_MODELS],
    Role.EDITOR: [f"registry.{action}_{m}" for m in _REGISTRY_CONFIG_MODELS for action in ("add", "change")]
    + ["registry.delete_modelcapability", "registry.delete_modelparameter", "registry.delete_modelendpoint"]
    + ["registry.delete_modelprice", "registry.delete_capabilitymetric"],
    Role.ADMIN: [f"registry.delete_{m}" for m in ["registeredmodel"]]
    + ["registry.change_alert"]
    + [f"discovery.{action}_{m}" for m in ["providersource"] for action in ("add", "change", "delete")]
    + ["auditlog.view_logentry"],
}


def permissions_for(role: Role) -> list[str]:
    """All permissions of ``role``, including those of the roles below it."""
    return [perm for lower in Role if lower <= role for perm in ROLE_PERMISSIONS[lower]]
