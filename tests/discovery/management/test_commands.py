"""``discover`` (foreground) and ``register_sources --discover`` (queues and returns)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from django.core.management.base import CommandError

from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
from registry.models import RegisteredModel
from tests.discovery.fakes.ollama import FakeOllama, generated_models
from tests.discovery.fakes.openai import FakeOpenAI
from tests.factories import ProviderSourceFactory

pytestmark = pytest.mark.django_db


def _discover(*args: str) -> str:
    out = StringIO()
    call_command("discover", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_discover_registers_the_environment_source_and_runs_it(fake_ollama: FakeOllama, settings: Any) -> None:
    settings.OLLAMA_URL = fake_ollama.url

    output = _discover()

    assert f"ollama (ollama, {fake_ollama.url}): discovering..." in output
    assert "ollama: 5 listed; 5 were added, 0 were updated, 0 were made unavailable, 0 skipped" in output
    assert RegisteredModel.objects.count() == 5
    run = DiscoveryRun.objects.get()
    assert (run.trigger, run.status) == ("command", RunStatus.SUCCEEDED)
    assert LogEntry.objects.filter(actor_email="system:command:discover").count() > 0


def test_discover_prints_a_runs_warnings(fake_ollama: FakeOllama, settings: Any) -> None:
    settings.OLLAMA_URL = fake_ollama.url
    for _ in range(6):  # /api/tags and the five /api/show answer; /api/ps fails on every attempt
        fake_ollama.fail_next("pass")
    fake_ollama.fail_next("status", status=500, times=3)

    output = _discover()

    assert "ollama: 5 listed; 5 were added" in output
    assert "warning: What the host has loaded could not be read" in output


def test_discover_names_what_it_changed_and_skipped(fake_openai: FakeOpenAI, settings: Any) -> None:
    settings.OPENAI_API_KEY = fake_openai.api_key
    settings.OPENAI_BASE_URL = f"{fake_openai.url}/v1"

    output = _discover()

    assert "    added: ft:gpt-4o-mini-2024-07-18:acme::9xYz1234, gpt-3.5-turbo-instruct, gpt-4o," in output
    assert (
        "    skipped: dall-e-3, gpt-4o-audio-preview, gpt-4o-realtime-preview, gpt-image-1, "
        "omni-moderation-latest, tts-1-hd, whisper-1\n"
    ) in output


def test_discover_dry_run_says_what_would_change_and_writes_nothing(fake_ollama: FakeOllama, settings: Any) -> None:
    settings.OLLAMA_URL = fake_ollama.url

    output = _discover("--dry-run")

    assert "5 would be added" in output
    assert RegisteredModel.objects.count() == 0


def test_discover_prints_progress_for_many_models(settings: Any) -> None:
    server = FakeOllama(models=generated_models(60)).start()
    settings.OLLAMA_URL = server.url
    try:
        output = _discover()
    finally:
        server.stop()

    assert "ollama: described 25/60 models" in output
    assert "ollama: described 50/60 models" in output
    assert "ollama: described 60/60 models" in output


def test_discover_exits_non_zero_when_a_source_failed(fake_ollama: FakeOllama, free_port: int) -> None:
    ProviderSourceFactory(name="up", kind=SourceKind.OLLAMA, base_url=fake_ollama.url)
    ProviderSourceFactory(name="down", kind=SourceKind.OLLAMA, base_url=f"http://127.0.0.1:{free_port}")

    with pytest.raises(CommandError, match="discovery failed for: down") as raised:
        _discover()

    assert raised.value.returncode == 1
    assert RegisteredModel.objects.count() == 5  # the healthy source still ran


def test_discover_one_source_by_name(fake_ollama: FakeOllama, free_port: int) -> None:
    ProviderSourceFactory(name="up", kind=SourceKind.OLLAMA, base_url=fake_ollama.url)
    ProviderSourceFactory(name="down", kind=SourceKind.OLLAMA, base_url=f"http://127.0.0.1:{free_port}")

    _discover("--source", "up")

    assert list(DiscoveryRun.objects.values_list("source__name", flat=True)) == ["up"]


def test_discover_unknown_source_name_is_an_error() -> None:
    with pytest.raises(CommandError, match="no source named 'nope'"):
        _discover("--source", "nope")


def test_register_sources_with_discover_queues_each_enabled_source_after_commit(
    settings: Any, queued: list[tuple[Any, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    settings.OLLAMA_URL = "http://llm-service:11434"
    disabled = ProviderSourceFactory(name="off", enabled=False)
    out = StringIO()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("register_sources", "--discover", stdout=out)
        assert queued == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()

    ollama = ProviderSource.objects.get(name="ollama")
    assert queued == [((ollama.pk,), {"trigger": "startup"})]
    assert disabled.pk not in [args[0] for args, _ in queued]
    assert "source ollama (ollama): created" in out.getvalue()
    assert "queued a discovery of 1 enabled source(s)" in out.getvalue()


def test_register_sources_queues_nothing_when_startup_discovery_is_off(
    settings: Any, queued: list[tuple[Any, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    settings.OLLAMA_URL = "http://llm-service:11434"
    settings.DISCOVERY_ON_STARTUP = False
    out = StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("register_sources", "--discover", stdout=out)

    assert queued == []
    assert "DISCOVERY_ON_STARTUP is off" in out.getvalue()
    assert ProviderSource.objects.filter(name="ollama").exists()
