"""Discovery runs and runtime checks write the availability history: vanished, listed again, loaded, unloaded."""

from __future__ import annotations

import pytest

from discovery.models import DiscoveryRun, ProviderSource
from discovery.sync import source_sync
from discovery.tasks import poll_runtime
from registry.access.audit import system_actor
from registry.models import ModelStatus, ModelStatusEvent, RegisteredModel, StatusEventKind, StatusEventOrigin
from registry.telemetry.availability import availability
from tests.discovery.fakes.ollama import FakeOllama, load_models

pytestmark = pytest.mark.django_db


def _sync(source: ProviderSource) -> DiscoveryRun:
    with system_actor("discovery"):
        return source_sync(source=source, trigger="manual")


def _status_events(name: str) -> list[tuple[str, str, int | None]]:
    rows = ModelStatusEvent.objects.filter(model__name=name, kind=StatusEventKind.STATUS).order_by("at", "id")
    return [(e.state, e.cause, e.run_id) for e in rows]


def test_a_run_records_models_it_adds_finds_missing_and_finds_again(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    first = _sync(ollama_source)
    fake_ollama.set_models([m for m in load_models() if m[0]["name"] != "gemma3:4b"])
    missing = _sync(ollama_source)
    idle = _sync(ollama_source)  # nothing changed: nothing recorded
    fake_ollama.set_models(load_models())
    back = _sync(ollama_source)

    source = ollama_source.name
    assert _status_events("gemma3:4b") == [
        ("available", f"first listed by source {source} (run #{first.pk})", first.pk),
        ("unavailable", f"no longer listed by source {source} nor any other (run #{missing.pk})", missing.pk),
        ("available", f"listed again by source {source} (run #{back.pk})", back.pk),
    ]
    assert idle.pk not in set(ModelStatusEvent.objects.values_list("run_id", flat=True))
    assert ModelStatusEvent.objects.filter(kind=StatusEventKind.STATUS).count() == len(load_models()) + 2
    gone = ModelStatusEvent.objects.get(model__name="gemma3:4b", run_id=missing.pk)
    # Dated at the run that did not list it: what the unavailability alert counts from.
    assert (gone.origin, gone.source_id) == (StatusEventOrigin.DISCOVERY, ollama_source.pk)
    assert missing.started_at <= gone.at <= missing.finished_at
    model = RegisteredModel.objects.get(name="gemma3:4b")
    assert model.status == ModelStatus.AVAILABLE
    history = availability(model.pk, first.started_at, back.finished_at)
    # Unknown until the first run's moment of writing, then what the runs saw.
    assert [i.state for i in history.intervals] == ["unknown", "available", "unavailable", "available"]
    assert history.intervals[2].start == gone.at


def test_a_dry_run_records_nothing(ollama_source: ProviderSource) -> None:
    with system_actor("discovery"):
        source_sync(source=ollama_source, trigger="manual", dry_run=True)

    assert not ModelStatusEvent.objects.exists()


def test_runtime_checks_record_a_model_loaded_and_unloaded_once_per_change(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    _sync(ollama_source)
    fake_ollama.load("qwen3:8b")
    assert poll_runtime(ollama_source.pk) == "succeeded"
    assert poll_runtime(ollama_source.pk) == "succeeded"  # still loaded: no second event
    fake_ollama.set_loaded([])
    assert poll_runtime(ollama_source.pk) == "succeeded"

    events = ModelStatusEvent.objects.filter(kind=StatusEventKind.RUNTIME).order_by("at", "id")
    assert [(e.model.name, e.state, e.source_id, e.origin) for e in events] == [
        ("qwen3:8b", "loaded", ollama_source.pk, StatusEventOrigin.RUNTIME),
        ("qwen3:8b", "unloaded", ollama_source.pk, StatusEventOrigin.RUNTIME),
    ]
    assert events[0].cause == f"host {ollama_source.name} lists it as loaded (GET /api/ps)"
