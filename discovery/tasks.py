"""Celery tasks: thin, safe to run twice (the sync takes the source's lock)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction

from discovery.catalog_refresh import catalogs_refresh_all
from discovery.models import ProviderSource, SourceKind
from discovery.runtime import runtime_poll
from discovery.schedules import CATALOG_REFRESH_TASK, DISCOVER_TASK, POLL_RUNTIME_TASK
from discovery.services import run_record_not_queued
from discovery.sync import source_sync
from registry.access.audit import system_actor
from registry.catalog.credentials import redact_text

logger = logging.getLogger(__name__)


@shared_task(
    name=DISCOVER_TASK,
    ignore_result=True,
    # The soft limit raises SoftTimeLimitExceeded inside the run (recorded as failed, lock released);
    # the hard one kills a process stuck where no exception reaches. The broker's visibility timeout
    # is set past the hard limit (settings.BROKER_REDIS_TRANSPORT_OPTIONS).
    soft_time_limit=settings.DISCOVERY_TASK_SOFT_TIME_LIMIT_SECONDS,
    time_limit=settings.DISCOVERY_TASK_TIME_LIMIT_SECONDS,
)
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


@shared_task(
    name=POLL_RUNTIME_TASK,
    ignore_result=True,
    # One GET without retry: bounded by the HTTP timeouts; the limits only catch a stuck process.
    soft_time_limit=60,
    time_limit=90,
)
def poll_runtime(source_id: int) -> str | None:
    """Record what an Ollama source has loaded now; returns the poll's status. Never raises for a failure.

    A loaded model that is not registered queues a discovery run of the source (which registers it).
    """
    source = ProviderSource.objects.filter(pk=source_id).first()
    if source is None or not source.enabled or source.kind != SourceKind.OLLAMA or source.runtime_poll_seconds == 0:
        # Deleted, disabled or switched off after the schedule fired: nothing to ask.
        return None
    poll = runtime_poll(source=source)
    if poll.needs_discovery:
        discovery_enqueue(source_ids=[source.pk], trigger="runtime")
    return poll.status


@shared_task(name=CATALOG_REFRESH_TASK, ignore_result=True, soft_time_limit=300, time_limit=360)
def catalogs_refresh() -> int:
    """Refresh the catalogs that have an update URL; returns how many refreshes were recorded.

    Safe to run twice: an unchanged download records nothing, and each refresh is one transaction.
    """
    with system_actor("catalog refresh"):
        return len(catalogs_refresh_all())


class BrokerUnavailable(Exception):
    """The broker did not take a task (refused, or no answer within CELERY_BROKER_SOCKET_TIMEOUT)."""


def discovery_queue_now(*, source: ProviderSource, trigger: str) -> None:
    """Queue one discovery now, for a caller that must say whether it was queued (``POST /sources/{id}/discover``).

    Bounded by the broker's socket timeouts; on failure a failed run records why, and
    ``BrokerUnavailable`` is raised.
    """
    try:
        discover_source.apply_async(args=(source.pk,), kwargs={"trigger": trigger}, retry=False)
    except Exception as exc:  # kombu wraps some errors, not all (redis' own TimeoutError, OSError)
        reason = redact_text(str(exc)) or type(exc).__name__
        logger.warning("could not queue discovery of source #%s: %s", source.pk, reason)
        run_record_not_queued(source=source, trigger=trigger, reason=reason)
        raise BrokerUnavailable(reason) from exc


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
