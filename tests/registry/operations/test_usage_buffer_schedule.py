"""The usage buffer's drain is on beat's schedule, created once, and known to the worker by its name."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from registry.operations.schedules import USAGE_BUFFER_SCHEDULE_NAME, USAGE_BUFFER_TASK_NAME
from registry_project.celery import app

pytestmark = pytest.mark.django_db


def test_register_schedules_adds_the_usage_buffer_drain_expiring_within_its_interval(settings: Any) -> None:
    settings.USAGE_BUFFER_DRAIN_INTERVAL_SECONDS = 7

    call_command("register_schedules", stdout=StringIO())

    task = PeriodicTask.objects.get(name=USAGE_BUFFER_SCHEDULE_NAME)
    assert task.task == USAGE_BUFFER_TASK_NAME
    assert task.interval is not None
    assert (task.interval.every, task.interval.period) == (7, "seconds")
    # A run the worker could not start within one interval is dropped: the next one drains it all.
    assert task.expire_seconds == 7


def test_an_operators_change_to_the_drain_schedule_is_kept(settings: Any) -> None:
    call_command("register_schedules", stdout=StringIO())
    PeriodicTask.objects.filter(name=USAGE_BUFFER_SCHEDULE_NAME).update(enabled=False)

    call_command("register_schedules", stdout=StringIO())

    assert PeriodicTask.objects.get(name=USAGE_BUFFER_SCHEDULE_NAME).enabled is False


def test_the_worker_knows_the_drain_task_by_its_scheduled_name() -> None:
    app.loader.import_default_modules()
    assert USAGE_BUFFER_TASK_NAME in app.tasks
