"""The runtime poll's beat schedule follows its source: created, changed and removed with it."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from discovery.models import ProviderSource, SourceKind
from discovery.schedules import POLL_RUNTIME_TASK, runtime_schedule_name, schedule_name
from discovery.services import source_delete, source_save, sources_register_from_environment

pytestmark = pytest.mark.django_db


def _ollama(**values: object) -> ProviderSource:
    return source_save(source=ProviderSource(name="gpu", kind=SourceKind.OLLAMA, base_url="http://gpu:11434", **values))


def test_an_ollama_source_gets_a_poll_every_30_seconds_by_default() -> None:
    source = _ollama()

    task = PeriodicTask.objects.get(name=runtime_schedule_name(source))
    assert (task.task, json.loads(task.args), task.interval.every, task.interval.period) == (
        POLL_RUNTIME_TASK,
        [source.pk],
        30,
        "seconds",
    )
    assert task.expire_seconds == 30  # a poll no worker took in time is dropped, not piled up
    assert PeriodicTask.objects.filter(name=schedule_name(source)).exists()  # discovery keeps its own


def test_changing_runtime_poll_seconds_updates_the_same_task() -> None:
    source = _ollama()
    before = PeriodicTask.objects.get(name=runtime_schedule_name(source))

    source.runtime_poll_seconds = 10
    source_save(source=source)

    after = PeriodicTask.objects.get(name=runtime_schedule_name(source))
    assert (after.pk, after.interval.every, after.expire_seconds) == (before.pk, 10, 10)


@pytest.mark.parametrize("change", [{"runtime_poll_seconds": 0}, {"enabled": False}])
def test_switching_the_poll_off_or_disabling_the_source_removes_it(change: dict[str, object]) -> None:
    source = _ollama()
    for name, value in change.items():
        setattr(source, name, value)

    source_save(source=source)

    assert not PeriodicTask.objects.filter(name=runtime_schedule_name(source)).exists()


def test_switching_it_back_on_creates_it_again() -> None:
    source = _ollama(runtime_poll_seconds=0)
    source.runtime_poll_seconds = 15

    source_save(source=source)

    assert PeriodicTask.objects.get(name=runtime_schedule_name(source)).interval.every == 15


def test_a_source_of_another_kind_has_no_poll() -> None:
    source = source_save(
        source=ProviderSource(name="vllm", kind=SourceKind.OPENAI_COMPATIBLE, base_url="http://v:8000")
    )

    assert not PeriodicTask.objects.filter(task=POLL_RUNTIME_TASK).exists()
    assert PeriodicTask.objects.filter(name=schedule_name(source)).exists()


def test_deleting_the_source_removes_its_poll() -> None:
    source = _ollama()
    name = runtime_schedule_name(source)

    source_delete(source=source)

    assert not PeriodicTask.objects.filter(name=name).exists()


@pytest.mark.parametrize("seconds", [1, 4])
def test_a_poll_more_often_than_every_5_seconds_is_refused_naming_the_field(seconds: int) -> None:
    with pytest.raises(ValidationError) as raised:
        _ollama(runtime_poll_seconds=seconds)

    assert list(raised.value.message_dict) == ["runtime_poll_seconds"]
    assert not PeriodicTask.objects.exists()


def test_a_restart_keeps_the_operators_poll_interval(settings: Any) -> None:
    settings.OLLAMA_URL = "http://gpu-box:11434"
    (registered,) = sources_register_from_environment()
    source = registered.source
    source.runtime_poll_seconds = 120
    source_save(source=source)

    sources_register_from_environment()

    assert PeriodicTask.objects.get(name=runtime_schedule_name(source)).interval.every == 120


def test_register_schedules_creates_the_missing_poll_of_a_source_saved_before_it_existed() -> None:
    # Saved without the service (as a source of before this feature was): it has no poll task.
    old = ProviderSource.objects.create(name="old", kind=SourceKind.OLLAMA, base_url="http://old:11434")
    kept = _ollama()
    task = PeriodicTask.objects.get(name=runtime_schedule_name(kept))
    PeriodicTask.objects.filter(pk=task.pk).update(enabled=False)  # an operator paused it in beat's admin
    out = io.StringIO()

    call_command("register_schedules", stdout=out)

    assert PeriodicTask.objects.get(name=runtime_schedule_name(old)).interval.every == 30
    assert PeriodicTask.objects.get(pk=task.pk).enabled is False  # an existing one is left as it is
    assert runtime_schedule_name(old) in out.getvalue()
