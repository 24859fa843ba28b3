"""``manage.py register_schedules``: create the registry's periodic tasks if they are missing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from discovery.schedules import catalog_refresh_schedule_ensure, runtime_schedules_ensure
from registry.operations.schedules import (
    prices_schedule_ensure,
    prune_schedule_ensure,
    scores_schedule_ensure,
    usage_buffer_schedule_ensure,
)
from registry.telemetry.alerts import alert_schedule_ensure


class Command(BaseCommand):
    help = "Create the registry's periodic tasks in django-celery-beat if missing (an operator's changes are kept)."

    def handle(self, *args: Any, **options: Any) -> None:
        for task in (
            alert_schedule_ensure(),
            prices_schedule_ensure(),
            scores_schedule_ensure(),
            prune_schedule_ensure(),
            usage_buffer_schedule_ensure(),
        ):
            state = "enabled" if task.enabled else "disabled"
            self.stdout.write(f"schedule {task.name!r}: {task.task}, {task.interval or task.crontab} ({state})")
        catalog_task = catalog_refresh_schedule_ensure()
        if catalog_task is not None:
            self.stdout.write(f"schedule {catalog_task.name!r}: {catalog_task.task}, {catalog_task.interval}")
        for task in runtime_schedules_ensure():
            self.stdout.write(f"schedule {task.name!r}: {task.task}, {task.interval} (created)")
