"""One django-celery-beat periodic task per enabled source: upserted, never wiped and rebuilt.

The source's ``interval_seconds`` is the schedule's truth: an operator changes it on the source
(admin or API), the source's save upserts its periodic task, and a restart (``register_sources``)
does not touch it. Other periodic tasks (the ops engineer's alert checks) are never touched.

An enabled Ollama source with ``runtime_poll_seconds`` above 0 has a second one, the runtime poll
(``GET /api/ps`` only), on that shorter interval; it follows the source the same way.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from discovery.models import ProviderSource, SourceKind

DISCOVER_TASK = "discovery.discover_source"
POLL_RUNTIME_TASK = "discovery.poll_runtime"
CATALOG_REFRESH_TASK = "discovery.catalogs_refresh"
CATALOG_REFRESH_SCHEDULE_NAME = "discovery: catalog refresh"


def schedule_name(source: ProviderSource) -> str:
    # Keyed by primary key, not name: renaming a source must not leave its old task behind.
    return f"discovery: source #{source.pk}"


def runtime_schedule_name(source: ProviderSource) -> str:
    return f"runtime poll: source #{source.pk}"


def _interval(seconds: int) -> IntervalSchedule:
    # Not get_or_create: beat's table has no unique (every, period), so duplicates may exist.
    return (
        IntervalSchedule.objects.filter(every=seconds, period=IntervalSchedule.SECONDS).order_by("id").first()
    ) or IntervalSchedule.objects.create(every=seconds, period=IntervalSchedule.SECONDS)


def _upsert(name: str, desired: dict[str, Any]) -> PeriodicTask:
    task = PeriodicTask.objects.filter(name=name).first()
    if task is None:
        return PeriodicTask.objects.create(name=name, **desired)
    changed = [field for field, value in desired.items() if getattr(task, field) != value]
    if changed:
        for field in changed:
            setattr(task, field, desired[field])
        # save() also bumps beat's change marker, so a running beat reloads its schedule.
        task.save()
    return task


def _remove(name: str) -> None:
    for task in PeriodicTask.objects.filter(name=name):
        # Deleted one by one so that beat's change marker (a delete signal) is bumped.
        task.delete()


def schedule_upsert(*, source: ProviderSource) -> PeriodicTask | None:
    """Create or update the source's periodic tasks; remove them when the source is disabled."""
    runtime_schedule_upsert(source=source)
    if not source.enabled:
        _remove(schedule_name(source))
        return None
    desired = {
        "task": DISCOVER_TASK,
        "interval": _interval(source.interval_seconds),
        "args": json.dumps([source.pk]),
        "kwargs": json.dumps({"trigger": "schedule"}),
        "enabled": True,
        "description": f"Discover the models of source {source.name} every {source.interval_seconds}s.",
    }
    return _upsert(schedule_name(source), desired)


def runtime_schedule_upsert(*, source: ProviderSource) -> PeriodicTask | None:
    """The source's runtime poll: present for an enabled Ollama source polled every n > 0 seconds."""
    seconds = source.runtime_poll_seconds
    if not (source.enabled and source.kind == SourceKind.OLLAMA and seconds > 0):
        _remove(runtime_schedule_name(source))
        return None
    desired = {
        "task": POLL_RUNTIME_TASK,
        "interval": _interval(seconds),
        "args": json.dumps([source.pk]),
        "kwargs": json.dumps({}),
        "enabled": True,
        # A poll not picked up within its interval is dropped: a stopped worker finds one poll, not a backlog.
        "expire_seconds": seconds,
        "description": f"Ask Ollama source {source.name} what it has loaded (GET /api/ps) every {seconds}s.",
    }
    return _upsert(runtime_schedule_name(source), desired)


def runtime_schedules_ensure() -> list[PeriodicTask]:
    """The runtime poll of every enabled Ollama source that should have one and has none.

    For sources saved before the poll existed (``register_schedules`` calls it at startup); an
    existing poll task is left as it is.
    """
    sources = ProviderSource.objects.filter(enabled=True, kind=SourceKind.OLLAMA, runtime_poll_seconds__gt=0)
    existing = set(PeriodicTask.objects.filter(task=POLL_RUNTIME_TASK).values_list("name", flat=True))
    created = []
    for source in sources.order_by("pk"):
        if runtime_schedule_name(source) not in existing:
            task = runtime_schedule_upsert(source=source)
            if task is not None:
                created.append(task)
    return created


def schedule_remove(*, source: ProviderSource) -> None:
    """Remove the source's periodic tasks (by name), if there are any."""
    _remove(schedule_name(source))
    _remove(runtime_schedule_name(source))


def catalog_refresh_schedule_ensure() -> PeriodicTask | None:
    """The catalog refresh, when an update URL is set; an existing task is left as the operator set it.

    Without a URL nothing is scheduled (the bundled snapshots are used); a task left from an
    earlier configuration finds no URL and does nothing.
    """
    if not (settings.CATALOG_PRICES_UPDATE_URL or settings.CATALOG_MODELS_UPDATE_URL):
        return None
    existing = PeriodicTask.objects.filter(name=CATALOG_REFRESH_SCHEDULE_NAME).first()
    if existing is not None:
        return existing
    every = int(settings.CATALOG_REFRESH_INTERVAL_SECONDS)
    return PeriodicTask.objects.create(
        name=CATALOG_REFRESH_SCHEDULE_NAME,
        task=CATALOG_REFRESH_TASK,
        interval=_interval(every),
        description=f"Refresh the price and model-fact catalogs from their update URLs every {every}s "
        "(discovery.catalog_refresh; rejected data leaves the snapshot in use).",
    )
