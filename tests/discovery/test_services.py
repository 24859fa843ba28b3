"""Sources from the environment, and their beat schedules: upserted, never wiped, operator's interval kept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from discovery.models import ProviderSource, SourceKind
from discovery.schedules import DISCOVER_TASK, runtime_schedule_name, schedule_name
from discovery.services import source_delete, source_save, sources_register_from_environment
from tests.factories import ProviderSourceFactory

pytestmark = pytest.mark.django_db


def test_environment_registers_ollama_openai_and_anthropic_sources(settings: Any) -> None:
    settings.OLLAMA_URL = "http://llm-service:11434"
    settings.OPENAI_API_KEY = "sk-env-openai"
    settings.OPENAI_BASE_URL = "https://api.openai.com/v1"
    settings.ANTHROPIC_API_KEY = "sk-ant-env"
    settings.ANTHROPIC_BASE_URL = "https://api.anthropic.com"

    results = sources_register_from_environment()

    assert [(r.source.name, r.created) for r in results] == [("ollama", True), ("openai", True), ("anthropic", True)]
    sources = {s.name: s for s in ProviderSource.objects.all()}
    assert (sources["ollama"].kind, sources["ollama"].base_url, sources["ollama"].api_key) == (
        SourceKind.OLLAMA,
        "http://llm-service:11434",
        None,
    )
    assert (sources["openai"].base_url, sources["openai"].api_key) == ("https://api.openai.com/v1", "sk-env-openai")
    assert all(s.from_environment for s in sources.values())
    assert PeriodicTask.objects.filter(task=DISCOVER_TASK).count() == 3


def test_cloud_source_without_a_key_is_not_created(settings: Any) -> None:
    settings.OPENAI_BASE_URL = "https://proxy.example/v1"  # a base URL alone is not a source

    results = sources_register_from_environment()

    assert results == []
    assert ProviderSource.objects.count() == 0


def test_registering_twice_changes_nothing(settings: Any) -> None:
    settings.OLLAMA_URL = "http://llm-service:11434"
    sources_register_from_environment()
    task = PeriodicTask.objects.get(task=DISCOVER_TASK)

    results = sources_register_from_environment()

    assert [(r.created, r.changed) for r in results] == [(False, False)]
    assert PeriodicTask.objects.get(task=DISCOVER_TASK).pk == task.pk
    assert ProviderSource.objects.count() == 1


def test_changed_environment_updates_the_url_and_key(settings: Any) -> None:
    settings.OPENAI_API_KEY = "sk-old"
    sources_register_from_environment()
    settings.OPENAI_API_KEY = "sk-new"
    settings.OPENAI_BASE_URL = "https://gateway.internal/v1"

    results = sources_register_from_environment()

    source = ProviderSource.objects.get(name="openai")
    assert [(r.created, r.changed) for r in results] == [(False, True)]
    assert (source.api_key, source.base_url) == ("sk-new", "https://gateway.internal/v1")


def test_operator_interval_and_enabled_flag_survive_a_restart(settings: Any) -> None:
    settings.OLLAMA_URL = "http://llm-service:11434"
    sources_register_from_environment()
    source = ProviderSource.objects.get(name="ollama")
    source.interval_seconds = 600  # changed by an operator in the admin
    source_save(source=source)
    settings.OLLAMA_URL = "http://llm-service-2:11434"

    sources_register_from_environment()  # the restart

    source.refresh_from_db()
    task = PeriodicTask.objects.get(name=schedule_name(source))
    assert (source.interval_seconds, source.base_url) == (600, "http://llm-service-2:11434")
    assert (task.interval.every, task.interval.period) == (600, IntervalSchedule.SECONDS)


def test_source_created_by_an_operator_is_not_taken_over_by_the_environment(settings: Any) -> None:
    ProviderSourceFactory(name="ollama", base_url="http://gpu-box:11434")
    settings.OLLAMA_URL = "http://llm-service:11434"

    sources_register_from_environment()

    assert ProviderSource.objects.get(name="ollama").base_url == "http://gpu-box:11434"


def test_saving_a_source_upserts_one_periodic_task_with_its_id() -> None:
    source = source_save(
        source=ProviderSource(name="vllm", kind=SourceKind.OPENAI_COMPATIBLE, base_url="http://v:8000")
    )
    source.interval_seconds = 120
    source_save(source=source)

    task = PeriodicTask.objects.get(task=DISCOVER_TASK)
    assert (task.name, json.loads(task.args), json.loads(task.kwargs)) == (
        schedule_name(source),
        [source.pk],
        {"trigger": "schedule"},
    )
    assert (task.interval.every, task.enabled) == (120, True)


def test_disabling_a_source_removes_only_its_periodic_task() -> None:
    other_task = PeriodicTask.objects.create(
        name="alerts",
        task="registry.check_alerts",
        interval=IntervalSchedule.objects.create(every=60, period="seconds"),
    )
    keep = source_save(source=ProviderSource(name="a", kind=SourceKind.OLLAMA, base_url="http://a:11434"))
    gone = source_save(source=ProviderSource(name="b", kind=SourceKind.OLLAMA, base_url="http://b:11434"))
    gone.enabled = False

    source_save(source=gone)

    # An Ollama source has two: discovery and the runtime poll; the disabled one has neither.
    assert sorted(PeriodicTask.objects.values_list("name", flat=True)) == sorted(
        ["alerts", schedule_name(keep), runtime_schedule_name(keep)]
    )
    assert PeriodicTask.objects.filter(pk=other_task.pk).exists()


def test_deleting_a_source_removes_its_periodic_task_and_keeps_its_models() -> None:
    source = source_save(source=ProviderSource(name="a", kind=SourceKind.OLLAMA, base_url="http://a:11434"))
    name = schedule_name(source)

    source_delete(source=source)

    assert not PeriodicTask.objects.filter(name=name).exists()
    assert ProviderSource.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "values"),
    [("interval_seconds", {"interval_seconds": 5}), ("base_url", {"base_url": "ollama:11434"})],
)
def test_invalid_source_is_rejected_with_the_field_named_and_no_schedule(field: str, values: dict[str, Any]) -> None:
    source = ProviderSource(**{"name": "a", "kind": SourceKind.OLLAMA, "base_url": "http://a:11434", **values})

    with pytest.raises(ValidationError) as raised:
        source_save(source=source)

    assert list(raised.value.message_dict) == [field]
    assert (ProviderSource.objects.count(), PeriodicTask.objects.count()) == (0, 0)
