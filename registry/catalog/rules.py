"""Writes to the capability rules (``CapabilityMetric``): how the score derivation measures a capability.

The console's rule pages write through the admin's form; a registry file's apply writes through
these, one row at a time with ``save()``/``delete()`` so that auditlog records each change with the
caller's actor. The derivation that reads the rules is ``registry.selection.scores``.
"""

from __future__ import annotations

from typing import Any, Final

from django.db import transaction

from registry.models import CapabilityMetric

RULE_FIELDS: Final = ("metric_name", "task_category", "window_days", "min_samples", "stale_after_days", "enabled")


@transaction.atomic
def capability_rule_set(*, capability: str, **values: Any) -> tuple[CapabilityMetric, bool]:
    """Add or change the rule of ``capability`` (fields of ``RULE_FIELDS`` not given keep their values)."""
    row, created = CapabilityMetric.objects.update_or_create(
        capability=capability, defaults={key: value for key, value in values.items() if key in RULE_FIELDS}
    )
    return row, created


@transaction.atomic
def capability_rule_delete(*, capability: str) -> bool:
    """Remove the rule of ``capability`` (measured scores already written stay); False when it had none."""
    row = CapabilityMetric.objects.filter(capability=capability).first()
    if row is None:
        return False
    row.delete()
    return True
