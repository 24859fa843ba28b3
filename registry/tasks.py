"""Celery tasks of the registry: thin wrappers over services."""

from __future__ import annotations

from celery import shared_task

from registry.alerts import ALERT_TASK_NAME, alerts_check


@shared_task(name=ALERT_TASK_NAME, ignore_result=True)
def check_alerts() -> dict[str, int]:
    """Periodic (beat, ``registry: alert checks``): safe to run twice, see registry/alerts.py."""
    changes = alerts_check()
    return {"opened": len(changes.opened), "resolved": len(changes.resolved)}
