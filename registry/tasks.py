"""Celery tasks of the registry: thin wrappers over services."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from registry.access.audit import system_actor
from registry.catalog.prices import prices_follow_all
from registry.models import ModelPrice
from registry.operations import metrics
from registry.operations.retention import retention_apply
from registry.operations.schedules import PRICES_TASK_NAME, PRUNE_TASK_NAME, SCORES_TASK_NAME, USAGE_BUFFER_TASK_NAME
from registry.selection import scores
from registry.telemetry.alerts import ALERT_TASK_NAME, alerts_check
from registry.telemetry.buffering import usage_buffer_drain
from registry.telemetry.costing import USAGE_RECOST_TASK_NAME, usage_recost_all


@shared_task(name=ALERT_TASK_NAME, ignore_result=True)
def check_alerts() -> dict[str, int]:
    """Periodic (beat, ``registry: alert checks``): safe to run twice, see registry/telemetry/alerts.py."""
    changes = alerts_check()
    return {"opened": len(changes.opened), "resolved": len(changes.resolved)}


@shared_task(name=PRICES_TASK_NAME, ignore_result=True)
def prices_follow() -> int:
    """Periodic (beat, ``registry: prices in force``): idempotent, a model already at its price is not written."""
    with system_actor("prices"):
        return prices_follow_all()


@shared_task(name=SCORES_TASK_NAME, ignore_result=True)
def scores_derive() -> dict[str, int]:
    """Periodic (beat, ``registry: measured scores``): idempotent, a rerun over the same records writes nothing."""
    with system_actor("scores"):
        outcome = scores.scores_derive()
    return {"created": outcome.created, "updated": outcome.updated, "removed": outcome.removed}


@shared_task(name=USAGE_RECOST_TASK_NAME, ignore_result=True)
def usage_recost_task(price_id: int) -> int:
    """Queued by a price whose backlog of uncosted usage is too large for a request; safe to run twice
    (only records still without a cost are written, batch by batch)."""
    price = ModelPrice.objects.filter(pk=price_id).first()
    if price is None:
        return 0  # removed since: the price now in force is re-costed by its own writer
    with system_actor("prices"):
        return usage_recost_all(price)


@shared_task(name=PRUNE_TASK_NAME, ignore_result=True)
def prune() -> dict[str, int]:
    """Periodic (beat, ``registry: retention``): safe to run twice, a second prune finds the lock held, does nothing."""
    return retention_apply().removed


@shared_task(name=USAGE_BUFFER_TASK_NAME, ignore_result=True)
def drain_usage_buffer() -> dict[str, Any]:
    """Periodic (beat, ``registry: usage buffer``): safe to run twice, a second drain finds the lock held."""
    with system_actor("usage-buffer"):
        return usage_buffer_drain().as_dict()


@worker_ready.connect
def serve_worker_metrics(**kwargs: Any) -> None:
    """With WORKER_METRICS_PORT set, the worker serves its own /metrics (separate containers)."""
    if settings.WORKER_METRICS_PORT:
        metrics.serve_worker_metrics(settings.WORKER_METRICS_PORT)
