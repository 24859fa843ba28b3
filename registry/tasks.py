"""Celery tasks of the registry: thin wrappers over services."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from registry import metrics
from registry.alerts import ALERT_TASK_NAME, alerts_check


@shared_task(name=ALERT_TASK_NAME, ignore_result=True)
def check_alerts() -> dict[str, int]:
    """Periodic (beat, ``registry: alert checks``): safe to run twice, see registry/alerts.py."""
    changes = alerts_check()
    return {"opened": len(changes.opened), "resolved": len(changes.resolved)}


@worker_ready.connect
def serve_worker_metrics(**kwargs: Any) -> None:
    """With WORKER_METRICS_PORT set, the worker serves its own /metrics (separate containers)."""
    if settings.WORKER_METRICS_PORT:
        metrics.serve_worker_metrics(settings.WORKER_METRICS_PORT)
