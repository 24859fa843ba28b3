"""One django-celery-beat periodic task per enabled source: upserted, never wiped and rebuilt.

The source's ``interval_seconds`` is the schedule's truth: an operator changes it on the source
(admin or API), the source's save upserts its periodic task, and a restart (``register_sources``)
does not touch it. Other periodic tasks (the ops engineer's alert checks) are never touched.
"""

from __future__ import annotations

import json

from django_celery_beat.models import IntervalSchedule, PeriodicTask

from discovery.models import ProviderSource

DISCOVER_TASK = "discovery.discover_source"


def schedule_name(source: ProviderSource) -> str:
    # Keyed by primary key, not name: renaming a source must not leave its old task behind.
    return f"discovery: source #{source.pk}"


def schedule_upsert(*, source: ProviderSource) -> PeriodicTask | None:
    """Create or update the source's periodic task; remove it when the source is disabled."""
    if not source.enabled:
        schedule_remove(source=source)
        return None
    # Not get_or_create: beat's table has no unique (every, period), so duplicates may exist.
    interval = (
        IntervalSchedule.objects.filter(every=source.interval_seconds, period=IntervalSchedule.SECONDS)
        .order_by("id")
        .first()
    ) or IntervalSchedule.objects.create(every=source.interval_seconds, period=IntervalSchedule.SECONDS)
    desired = {
        "task": DISCOVER_TASK,
        "interval": interval,
        "args": json.dumps([source.pk]),
        "kwargs": json.dumps({"trigger": "schedule"}),
        "enabled": True,
        "description": f"Discover the models of source {source.name} every {source.interval_seconds}s.",
    }
    task = PeriodicTask.objects.filter(name=schedule_name(source)).first()
    if task is None:
        return PeriodicTask.objects.create(name=schedule_name(source), **desired)
    changed = [name for name, value in desired.items() if getattr(task, name) != value]
    if changed:
        for name in changed:
            setattr(task, name, desired[name])
        # save() also bumps beat's change marker, so a running beat reloads its schedule.
        task.save()
    return task


def schedule_remove(*, source: ProviderSource) -> None:
    """Remove the source's periodic task (one row, by name), if there is one."""
    for task in PeriodicTask.objects.filter(name=schedule_name(source)):
        # Deleted one by one so that beat's change marker (a delete signal) is bumped.
        task.delete()
