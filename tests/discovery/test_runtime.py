"""What Ollama has loaded now: recorded by discovery runs and by the light poll, per (model, host)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from discovery.clients.base import LoadedModel
from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
from discovery.runtime import runtime_record
from discovery.services import source_save
from discovery.sync import source_sync
from discovery.tasks import poll_runtime
from registry.access.audit import system_actor
from registry.models import ModelEndpoint, ModelRuntime, ModelStatus, RegisteredModel
from registry.operations import metrics
from tests.discovery.fakes.ollama import FakeOllama, generated_models, running_entry
from tests.factories import ProviderSourceFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

EXPIRES = "2026-12-02T07:35:12.483716204+01:00"
EXPIRES_UTC = datetime(2026, 12, 2, 6, 35, 12, 483716, tzinfo=UTC)


def _sync(source: ProviderSource) -> DiscoveryRun:
    with system_actor("discovery"):
        return source_sync(source=source, trigger="manual")


def _rows(source: ProviderSource) -> dict[str, tuple[Any, ...]]:
    return {
        row.model.name: (row.loaded, row.size_vram, row.context_length, row.expires_at)
        for row in ModelRuntime.objects.filter(source=source).select_related("model")
    }


def test_a_discovery_run_records_what_the_host_has_loaded(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    fake_ollama.load("qwen3:8b", size_vram=6_000_000_000, context_length=8192, expires_at=EXPIRES)

    run = _sync(ollama_source)

    assert (run.status, run.warnings) == (RunStatus.SUCCEEDED, [])
    assert _rows(ollama_source) == {"qwen3:8b": (True, 6_000_000_000, 8192, EXPIRES_UTC)}
    assert ModelRuntime.objects.get().checked_at >= run.started_at


def test_a_failing_api_ps_leaves_the_run_successful_with_a_warning(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    # /api/tags and the five /api/show pass; /api/ps fails on every attempt.
    for _ in range(6):
        fake_ollama.fail_next("pass")
    fake_ollama.fail_next("status", status=500, times=3)

    run = _sync(ollama_source)

    assert run.status == RunStatus.SUCCEEDED
    assert run.error_message == ""
    assert run.models_added == 5
    assert len(run.warnings) == 1
    assert "could not be read" in run.warnings[0]
    assert "/api/ps answered HTTP 500" in run.warnings[0]
    assert not ModelRuntime.objects.exists()
    ollama_source.refresh_from_db()
    assert (ollama_source.last_status, ollama_source.consecutive_failures) == (RunStatus.SUCCEEDED, 0)


def test_a_loaded_model_the_host_does_not_list_is_registered_by_the_run(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    fake_ollama.set_loaded(
        [
            running_entry(
                {
                    "name": "mistral:7b",
                    "model": "mistral:7b",
                    "size": 4_100_000_000,
                    "digest": "f974a74358d6" + "0" * 52,
                    "details": {"family": "llama", "families": ["llama"], "parameter_size": "7.2B"},
                },
                size_vram=4_100_000_000,
            )
        ]
    )

    run = _sync(ollama_source)

    assert "mistral:7b" in run.changes["added"]
    model = RegisteredModel.objects.get(name="mistral:7b")
    assert (model.status, model.source_id, model.details["parameter_size"]) == (
        ModelStatus.AVAILABLE,
        ollama_source.pk,
        "7.2B",
    )
    assert ModelEndpoint.objects.get(model=model).endpoint_url == f"{fake_ollama.url}/api/chat"
    assert _rows(ollama_source)["mistral:7b"][0] is True


def test_a_model_loaded_on_two_hosts_has_a_row_per_host(ollama_source: ProviderSource, fake_ollama: FakeOllama) -> None:
    other = FakeOllama().start()
    try:
        second = ProviderSourceFactory(name="ollama-b", kind=SourceKind.OLLAMA, base_url=other.url)
        fake_ollama.load("qwen3:8b", size_vram=1)
        other.load("qwen3:8b", size_vram=2)

        _sync(ollama_source)
        _sync(second)
    finally:
        other.stop()

    assert sorted(ModelRuntime.objects.values_list("source__name", "size_vram")) == [("ollama-a", 1), ("ollama-b", 2)]


def test_the_poll_upserts_and_flips_a_model_to_not_loaded_when_the_host_unloads_it(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    _sync(ollama_source)
    fake_ollama.load("qwen3:8b", "gemma3:4b", size_vram=5, context_length=4096, expires_at=EXPIRES)

    assert poll_runtime(ollama_source.pk) == "succeeded"
    first = {row.model.name: row.checked_at for row in ModelRuntime.objects.select_related("model")}
    fake_ollama.load("gemma3:4b", size_vram=7, context_length=2048, expires_at=EXPIRES)
    assert poll_runtime(ollama_source.pk) == "succeeded"

    assert _rows(ollama_source) == {
        "qwen3:8b": (False, None, None, None),  # checked, not loaded: its row stays
        "gemma3:4b": (True, 7, 2048, EXPIRES_UTC),
    }
    checked = set(ModelRuntime.objects.values_list("checked_at", flat=True))
    assert len(checked) == 1  # both rows carry the second poll's moment
    assert checked.pop() > first["qwen3:8b"]


def test_the_poll_writes_in_a_fixed_number_of_queries_whatever_the_number_of_models(fake_ollama: FakeOllama) -> None:
    def poll_queries(count: int) -> list[int]:
        # A host of its own each time: the first poll creates every row, the second changes every row.
        source = ProviderSourceFactory(kind=SourceKind.OLLAMA, base_url=fake_ollama.url)
        models = generated_models(count, prefix=f"n{count}")
        fake_ollama.set_models(models)
        fake_ollama.set_loaded([])
        _sync(source)
        names = [tag["name"] for tag, _ in models]
        counts = []
        for facts in ({"size_vram": 1}, {"size_vram": 9}, {"size_vram": 9}):
            fake_ollama.load(*names, **facts)
            with CaptureQueriesContext(connection) as poll:
                poll_runtime(source.pk)
            counts.append(len(poll.captured_queries))
        assert ModelRuntime.objects.filter(source=source, loaded=True, size_vram=9).count() == count
        return counts

    assert poll_queries(5) == poll_queries(60)


def test_the_poll_queues_a_discovery_run_for_a_loaded_model_that_is_not_registered(
    ollama_source: ProviderSource,
    fake_ollama: FakeOllama,
    queued: list[tuple[Any, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    fake_ollama.load("qwen3:8b")

    with django_capture_on_commit_callbacks(execute=True):
        assert poll_runtime(ollama_source.pk) == "succeeded"

    assert queued == [((ollama_source.pk,), {"trigger": "runtime"})]
    assert not ModelRuntime.objects.exists()  # nothing to hang a row on until it is registered


def test_the_poll_does_not_queue_discovery_again_right_after_a_run(
    ollama_source: ProviderSource,
    fake_ollama: FakeOllama,
    queued: list[tuple[Any, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    DiscoveryRun.objects.create(source=ollama_source, status=RunStatus.FAILED)  # just started
    fake_ollama.load("qwen3:8b")

    with django_capture_on_commit_callbacks(execute=True):
        poll_runtime(ollama_source.pk)

    assert queued == []


def test_the_queued_run_registers_the_model_the_poll_saw(
    ollama_source: ProviderSource,
    fake_ollama: FakeOllama,
    queued: list[tuple[Any, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    fake_ollama.load("qwen3:8b", size_vram=3)
    with django_capture_on_commit_callbacks(execute=True):
        poll_runtime(ollama_source.pk)
    ((args, kwargs),) = queued

    with system_actor("discovery"):
        source_sync(source=ProviderSource.objects.get(pk=args[0]), trigger=kwargs["trigger"])

    assert _rows(ollama_source)["qwen3:8b"][:2] == (True, 3)


def test_a_failing_poll_is_counted_logged_once_and_never_raises(
    ollama_source: ProviderSource, fake_ollama: FakeOllama, caplog: pytest.LogCaptureFixture
) -> None:
    failed = metrics.RUNTIME_POLLS.labels(source="ollama-a", status="failed")
    before = failed._value.get()
    fake_ollama.fail_next("status", status=503, times=2)

    with caplog.at_level(logging.WARNING, logger="discovery.runtime"):
        assert poll_runtime(ollama_source.pk) == "failed"
        assert poll_runtime(ollama_source.pk) == "failed"
        assert poll_runtime(ollama_source.pk) == "succeeded"

    assert failed._value.get() == before + 2
    messages = [record.getMessage() for record in caplog.records if record.name == "discovery.runtime"]
    assert len(messages) == 2
    assert "failed (no further warning until it succeeds)" in messages[0]
    assert "succeeds again" in messages[1]
    # One request per poll: no retry within a poll.
    assert [request.path for request in fake_ollama.requests] == ["/api/ps"] * 3


@pytest.mark.parametrize(
    "change",
    [
        {"enabled": False},
        {"runtime_poll_seconds": 0},
        {"kind": SourceKind.OPENAI_COMPATIBLE},
    ],
)
def test_the_poll_asks_nothing_of_a_source_it_should_not_poll(
    ollama_source: ProviderSource, fake_ollama: FakeOllama, change: dict[str, Any]
) -> None:
    ProviderSource.objects.filter(pk=ollama_source.pk).update(**change)

    assert poll_runtime(ollama_source.pk) is None
    assert poll_runtime(10_000) is None  # deleted

    assert fake_ollama.requests == []


def test_an_older_observation_does_not_overwrite_a_newer_one(ollama_source: ProviderSource) -> None:
    model = RegisteredModelFactory(name="qwen3:8b")
    now = timezone.now()
    runtime_record(source=ollama_source, entries=[LoadedModel("qwen3:8b", 2, None, None)], checked_at=now)

    recorded = runtime_record(source=ollama_source, entries=[], checked_at=now - timedelta(seconds=5))

    assert recorded.stale
    row = ModelRuntime.objects.get(model=model)
    assert (row.loaded, row.size_vram, row.checked_at) == (True, 2, now)


def test_runtime_writes_are_not_audited(ollama_source: ProviderSource, fake_ollama: FakeOllama) -> None:
    _sync(ollama_source)
    fake_ollama.load("qwen3:8b")
    entries = LogEntry.objects.count()

    poll_runtime(ollama_source.pk)
    fake_ollama.set_loaded([])
    poll_runtime(ollama_source.pk)

    assert ModelRuntime.objects.count() == 1
    assert LogEntry.objects.count() == entries


def test_a_source_that_stops_being_ollama_loses_its_runtime_rows(ollama_source: ProviderSource) -> None:
    model = RegisteredModelFactory()
    ModelRuntime.objects.create(model=model, source=ollama_source, loaded=True, checked_at=timezone.now())
    kept = ModelRuntime.objects.create(
        model=model, source=ProviderSourceFactory(), loaded=True, checked_at=timezone.now()
    )

    ollama_source.kind = SourceKind.OPENAI_COMPATIBLE
    source_save(source=ollama_source)

    assert list(ModelRuntime.objects.all()) == [kept]


def test_a_size_no_column_holds_is_recorded_as_unknown(ollama_source: ProviderSource) -> None:
    RegisteredModelFactory(name="huge")

    runtime_record(source=ollama_source, entries=[LoadedModel("huge", 2**64, 2**40, None)], checked_at=timezone.now())

    row = ModelRuntime.objects.get()
    assert (row.loaded, row.size_vram, row.context_length) == (True, None, None)
