"""The registry's own periodic tasks besides the alert checks, upserted like every schedule."""

from __future__ import annotations

from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

PRICES_TASK_NAME = "registry.prices_follow"
PRICES_SCHEDULE_NAME = "registry: prices in force"
PRICES_INTERVAL_SECONDS = 300

SCORES_TASK_NAME = "registry.scores_derive"
SCORES_SCHEDULE_NAME = "registry: measured scores"
SCORES_INTERVAL_SECONDS = 3600

PRUNE_TASK_NAME = "registry.prune"
PRUNE_SCHEDULE_NAME = "registry: retention"

USAGE_BUFFER_TASK_NAME = "registry.usage_buffer_drain"
USAGE_BUFFER_SCHEDULE_NAME = "registry: usage buffer"


def _schedule_ensure(
    *, name: str, task: str, every: int, description: str, expire_seconds: int | None = None
) -> PeriodicTask:
    """Create the periodic task ``name`` when missing; an existing one is left as the operator set it."""
    existing = PeriodicTask.objects.filter(name=name).first()
    if existing is not None:
        return existing
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(
        name=name, task=task, interval=interval, description=description, expire_seconds=expire_seconds
    )


def prices_schedule_ensure() -> PeriodicTask:
    """Create the periodic task that makes future-dated prices take over; an existing one is left as set."""
    return _schedule_ensure(
        name=PRICES_SCHEDULE_NAME,
        task=PRICES_TASK_NAME,
        every=PRICES_INTERVAL_SECONDS,
        description="Sets each model's price fields to its dated price in force (services.prices_follow_all).",
    )


def scores_schedule_ensure() -> PeriodicTask:
    """Create the periodic task that derives measured capability scores; an existing one is left as set."""
    return _schedule_ensure(
        name=SCORES_SCHEDULE_NAME,
        task=SCORES_TASK_NAME,
        every=SCORES_INTERVAL_SECONDS,
        description="Derives measured capability scores from performance records and lets stale ones decay "
        "(registry.selection.scores.scores_derive; rules: capability metrics).",
    )


def prune_schedule_ensure() -> PeriodicTask:
    """Create the periodic retention task (every ``RETENTION_INTERVAL_SECONDS``); an existing one is left as set."""
    return _schedule_ensure(
        name=PRUNE_SCHEDULE_NAME,
        task=PRUNE_TASK_NAME,
        every=settings.RETENTION_INTERVAL_SECONDS,
        description="Removes rows past their retention (RETENTION_* settings) in batches, one prune at a time "
        "(registry.operations.retention.retention_apply).",
    )


def usage_buffer_schedule_ensure() -> PeriodicTask:
    """Create the periodic drain of the usage buffer; an existing one is left as set.

    Every ``USAGE_BUFFER_DRAIN_INTERVAL_SECONDS``: an empty buffer costs one Redis call and no query.
    A run not started within one interval expires, so a worker that was away does not find a pile
    of them (one run drains everything there is).
    """
    every = settings.USAGE_BUFFER_DRAIN_INTERVAL_SECONDS
    return _schedule_ensure(
        name=USAGE_BUFFER_SCHEDULE_NAME,
        task=USAGE_BUFFER_TASK_NAME,
        every=every,
        expire_seconds=every,
        description="Writes usage kept in Redis while the database was unreachable, oldest first, one drain "
        "at a time (registry.telemetry.buffering.usage_buffer_drain).",
    )
