"""Celery tasks: thin, safe to run twice (the sync takes the source's lock)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from discovery.models import ProviderSource
from discovery.schedules import DISCOVER_TASK
from discovery.sync import source_sync
from registry.audit import system_actor

logger = logging.getLogger(__name__)


@shared_task(name=DISCOVER_TASK, ignore_result=True)
def discover_source(source_id: int, trigger: str = "schedule") -> str | None:
    """Discover the models of one source; returns the run's status."""
    source = ProviderSource.objects.filter(pk=source_id).first()
    if source is None:
        # Deleted after the task was queued (or its schedule outlived it): nothing to do.
        logger.info("discovery task for source #%s: the source no longer exists", source_id)
        return None
    if not source.enabled and trigger == "schedule":
        return None
    with system_actor("discovery"):
        run = source_sync(source=source, trigger=trigger)
    return run.status


def discovery_enqueue(*, source_ids: list[int], trigger: str) -> None:
    """Queue a discovery of each source once the current transaction commits.

    A broker that cannot be reached is logged, not raised: the caller (startup, the admin) must
    go on; the beat schedule runs the discovery later anyway.
    """

    def send() -> None:
        for source_id in source_ids:
            try:
                discover_source.apply_async(args=(source_id,), kwargs={"trigger": trigger}, retry=False)
            except Exception as exc:
                logger.warning("could not queue discovery of source #%s: %s", source_id, exc)

    transaction.on_commit(send)
