"""The registry's own periodic tasks besides the alert checks, upserted like every schedule."""

from __future__ import annotations

from django_celery_beat.models import IntervalSchedule, PeriodicTask

PRICES_TASK_NAME = "registry.prices_follow"
PRICES_SCHEDULE_NAME = "registry: prices in force"
PRICES_INTERVAL_SECONDS = 300


def prices_schedule_ensure() -> PeriodicTask:
    """Create the periodic task that makes future-dated prices take over; an existing one is left as set."""
    existing = PeriodicTask.objects.filter(name=PRICES_SCHEDULE_NAME).first()
    if existing is not None:
        return existing
    interval, _ = IntervalSchedule.objects.get_or_create(every=PRICES_INTERVAL_SECONDS, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(
        name=PRICES_SCHEDULE_NAME,
        task=PRICES_TASK_NAME,
        interval=interval,
        description="Sets each model's price fields to its dated price in force (services.prices_follow_all).",
    )
