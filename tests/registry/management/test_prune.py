"""``manage.py prune``: the same retention as the beat task, at once; ``--dry-run`` counts and writes nothing."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from registry.models import ModelPerformance, ModelUsage
from registry.operations.schedules import PRUNE_SCHEDULE_NAME, PRUNE_TASK_NAME
from tests.factories import ModelPerformanceFactory, ModelUsageFactory
from tests.registry.operations.test_retention import prune_lock_held_elsewhere

pytestmark = pytest.mark.django_db


@pytest.fixture
def old_records(settings: Any) -> None:
    settings.RETENTION_USAGE_DAYS = 30
    settings.RETENTION_PERFORMANCE_DAYS = 30
    settings.RETENTION_AUDIT_DAYS = 0
    old = timezone.now() - timedelta(days=31)
    ModelUsageFactory.create_batch(3, timestamp=old)
    ModelUsageFactory(timestamp=timezone.now())
    ModelPerformanceFactory(timestamp=old)


def run(*args: str) -> str:
    out = StringIO()
    call_command("prune", *args, stdout=out)
    return out.getvalue()


@pytest.mark.usefixtures("old_records")
def test_prune_dry_run_prints_per_table_counts_and_removes_nothing() -> None:
    output = run("--dry-run")

    assert "model_usage: would remove 3 (UTC days wholly older than 30 days, RETENTION_USAGE_DAYS)" in output
    assert "model_performance: would remove 1 " in output
    assert "auditlog_logentry: would remove 0 (none: kept for ever, RETENTION_AUDIT_DAYS)" in output
    assert ModelUsage.objects.count() == 4
    assert ModelPerformance.objects.count() == 1


@pytest.mark.usefixtures("old_records")
def test_prune_removes_the_rows_past_retention_at_once() -> None:
    output = run("--batch-size", "2")

    assert "model_usage: removed 3 " in output
    assert "model_performance: removed 1 " in output
    assert ModelUsage.objects.count() == 1
    assert not ModelPerformance.objects.exists()


@pytest.mark.usefixtures("old_records")
def test_prune_fails_and_removes_nothing_while_another_prune_runs() -> None:
    with prune_lock_held_elsewhere(), pytest.raises(CommandError, match="another prune is running"):
        run()

    assert ModelUsage.objects.count() == 4


def test_register_schedules_adds_the_retention_schedule(settings: Any) -> None:
    settings.RETENTION_INTERVAL_SECONDS = 1800

    call_command("register_schedules", stdout=StringIO())

    task = PeriodicTask.objects.get(name=PRUNE_SCHEDULE_NAME)
    assert task.task == PRUNE_TASK_NAME
    assert task.interval is not None
    assert task.interval.every == 1800
