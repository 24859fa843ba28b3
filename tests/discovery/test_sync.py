"""Sync rules: upsert, idempotence, unavailability, operator edits win, one model many sources."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
from discovery.sync import source_sync
from registry.access.audit import system_actor
from registry.models import (
    ModelCapability,
    ModelEndpoint,
    ModelParameter,
    ModelStatus,
    ModelUsage,
    RegisteredModel,
    SetBy,
)
from registry.operations import metrics
from registry.reads.cache import GENERATION_KEY
from tests.discovery.fakes.ollama import FakeOllama, load_models
from tests.discovery.fakes.openai_compatible import FakeOpenAICompatible
from tests.factories import ModelCapabilityFactory, ModelParameterFactory, ProviderSourceFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE")


def _sync(source: ProviderSource, **kwargs: Any) -> DiscoveryRun:
    with system_actor("discovery"):
        return source_sync(source=source, trigger="manual", **kwargs)


def _registry_writes(queries: list[dict[str, Any]]) -> list[str]:
    """Write statements against anything but the run history and the source's bookkeeping."""
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(WRITES)
        and "discovery_runs" not in q["sql"]
        and "provider_sources" not in q["sql"]
    ]


def test_first_run_registers_every_listed_model_with_its_endpoint_capabilities_and_parameters(
    ollama_source: ProviderSource,
) -> None:
    run = _sync(ollama_source)

    assert (run.status, run.models_seen, run.models_added, run.models_updated, run.error_message) == (
        RunStatus.SUCCEEDED,
        5,
        5,
        0,
        "",
    )
    model = RegisteredModel.objects.get(name="qwen3:8b")
    assert (model.provider, model.model_type, model.status, model.source_id) == (
        "ollama",
        "chat",
        ModelStatus.AVAILABLE,
        ollama_source.pk,
    )
    assert model.context_window == 40960
    assert model.first_seen_at == model.last_seen_at
    assert dict(model.capabilities.values_list("capability", "capability_score")) == {
        "text": 0.5,
        "tools": 0.5,
        "reasoning": 0.5,
    }
    assert set(model.capabilities.values_list("set_by", flat=True)) == {SetBy.DISCOVERY}
    assert model.parameters.get(parameter_name="temperature").default_value == 0.6
    endpoint = model.endpoints.get()
    assert (endpoint.source_id, endpoint.endpoint_type, endpoint.endpoint_url) == (
        ollama_source.pk,
        "local",
        f"{ollama_source.base_url}/api/chat",
    )


def test_rerun_over_the_same_answer_writes_no_row_and_no_audit_entry(ollama_source: ProviderSource) -> None:
    _sync(ollama_source)
    audit_entries = LogEntry.objects.count()
    updated = dict(RegisteredModel.objects.values_list("name", "updated_at"))

    with CaptureQueriesContext(connection) as queries:
        run = _sync(ollama_source)

    assert (run.status, run.models_added, run.models_updated, run.models_unavailable) == (RunStatus.SUCCEEDED, 0, 0, 0)
    assert _registry_writes(queries.captured_queries) == []
    assert LogEntry.objects.count() == audit_entries
    assert dict(RegisteredModel.objects.values_list("name", "updated_at")) == updated


@pytest.mark.parametrize("kind", ["openai", "anthropic", "openai_compatible"])
def test_rerun_of_a_cloud_or_compatible_source_writes_nothing(
    kind: str, openai_source: ProviderSource, anthropic_source: ProviderSource, fake_vllm: FakeOpenAICompatible
) -> None:
    source = {
        "openai": openai_source,
        "anthropic": anthropic_source,
        "openai_compatible": ProviderSourceFactory(
            name="vllm", kind=SourceKind.OPENAI_COMPATIBLE, base_url=fake_vllm.url
        ),
    }[kind]
    first = _sync(source)
    audit_entries = LogEntry.objects.count()

    with CaptureQueriesContext(connection) as queries:
        run = _sync(source)

    assert first.models_added > 0
    assert (run.status, run.models_added, run.models_updated) == (RunStatus.SUCCEEDED, 0, 0)
    assert _registry_writes(queries.captured_queries) == []
    assert LogEntry.objects.count() == audit_entries


def test_rerun_with_nothing_changed_does_not_invalidate_cached_reads(ollama_source: ProviderSource) -> None:
    _sync(ollama_source)
    generation = cache.get(GENERATION_KEY)

    _sync(ollama_source)

    assert cache.get(GENERATION_KEY) == generation


def test_run_that_changes_models_invalidates_cached_reads(
    ollama_source: ProviderSource, django_capture_on_commit_callbacks: Any
) -> None:
    cache.set(GENERATION_KEY, 7, timeout=None)

    with django_capture_on_commit_callbacks(execute=True):
        _sync(ollama_source)

    assert cache.get(GENERATION_KEY) == 8


def test_every_bulk_write_is_audited_under_the_discovery_actor(ollama_source: ProviderSource) -> None:
    _sync(ollama_source)

    entries = LogEntry.objects.filter(actor_email="system:discovery")
    model_entry = entries.get(content_type__model="registeredmodel", object_repr="qwen3:8b")
    assert model_entry.action == LogEntry.Action.CREATE
    assert model_entry.changes["name"] == ["None", "qwen3:8b"]
    # 5 models, 5 endpoints, 12 capabilities, 13 parameters.
    assert entries.filter(content_type__model="registeredmodel").count() == 5
    assert entries.filter(content_type__model="modelendpoint").count() == 5
    assert entries.filter(content_type__model="modelcapability").count() == ModelCapability.objects.count()
    assert entries.filter(content_type__model="modelparameter").count() == ModelParameter.objects.count()


def test_model_no_longer_listed_becomes_unavailable_and_keeps_its_history(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    _sync(ollama_source)
    gemma = RegisteredModel.objects.get(name="gemma3:4b")
    ModelUsage.objects.create(model=gemma, model_name=gemma.name, token_count=10)
    fake_ollama.set_models([m for m in load_models() if m[0]["name"] != "gemma3:4b"])

    run = _sync(ollama_source)

    gemma.refresh_from_db()
    assert (run.models_unavailable, run.models_updated, run.models_added) == (1, 0, 0)
    assert gemma.status == ModelStatus.UNAVAILABLE
    assert gemma.usage_records.count() == 1
    assert gemma.capabilities.count() == 2
    assert gemma.endpoints.count() == 0
    entry = LogEntry.objects.filter(object_repr="gemma3:4b", action=LogEntry.Action.UPDATE).get()
    assert entry.changes == {"status": ["available", "unavailable"]}


def test_model_that_comes_back_is_available_again(ollama_source: ProviderSource, fake_ollama: FakeOllama) -> None:
    _sync(ollama_source)
    fake_ollama.set_models(load_models()[1:])
    _sync(ollama_source)
    fake_ollama.set_models(load_models())

    run = _sync(ollama_source)

    model = RegisteredModel.objects.get(name="llama3.2:latest")
    assert (run.models_updated, run.models_added) == (1, 0)
    assert model.status == ModelStatus.AVAILABLE
    assert model.endpoints.get().source_id == ollama_source.pk


def test_deprecated_model_stays_deprecated_when_listed(ollama_source: ProviderSource) -> None:
    _sync(ollama_source)
    RegisteredModel.objects.filter(name="qwen3:8b").update(status=ModelStatus.DEPRECATED)

    _sync(ollama_source)

    assert RegisteredModel.objects.get(name="qwen3:8b").status == ModelStatus.DEPRECATED


def test_operator_capability_is_never_overwritten_or_removed(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    _sync(ollama_source)
    model = RegisteredModel.objects.get(name="qwen3:8b")
    ModelCapability.objects.filter(model=model, capability="tools").update(capability_score=0.95, set_by=SetBy.OPERATOR)
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.8, set_by=SetBy.OPERATOR)
    tags = load_models()
    for _, show in tags:
        show["capabilities"] = ["completion"]  # the provider no longer declares tools
    fake_ollama.set_models(tags)

    _sync(ollama_source)

    assert dict(model.capabilities.values_list("capability", "capability_score")) == {
        "code": 0.8,
        "text": 0.5,
        "tools": 0.95,
    }


def test_discovery_removes_a_capability_it_set_when_the_provider_stops_declaring_it(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    _sync(ollama_source)
    tags = load_models()
    tags[1][1]["capabilities"] = ["completion", "tools"]  # qwen3 without thinking
    fake_ollama.set_models(tags)

    run = _sync(ollama_source)

    model = RegisteredModel.objects.get(name="qwen3:8b")
    assert run.models_updated == 1
    assert set(model.capabilities.values_list("capability", flat=True)) == {"text", "tools"}
    [entry] = LogEntry.objects.filter(content_type__model="modelcapability", action=LogEntry.Action.DELETE)
    assert entry.object_repr == "qwen3:8b: reasoning"


def test_operator_parameter_is_never_overwritten(ollama_source: ProviderSource) -> None:
    _sync(ollama_source)
    model = RegisteredModel.objects.get(name="qwen3:8b")
    ModelParameter.objects.filter(model=model, parameter_name="temperature").update(
        default_value=0.2, set_by=SetBy.OPERATOR
    )
    ModelParameterFactory(model=model, parameter_name="seed", default_value=42, set_by=SetBy.OPERATOR)

    _sync(ollama_source)

    assert model.parameters.get(parameter_name="temperature").default_value == 0.2
    assert model.parameters.get(parameter_name="seed").default_value == 42


def test_changed_provider_answer_updates_the_model_and_audits_old_and_new(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    _sync(ollama_source)
    before = RegisteredModel.objects.get(name="llama3.2:latest").updated_at
    tags = load_models()
    tags[0][1]["model_info"]["llama.context_length"] = 65536
    fake_ollama.set_models(tags)

    run = _sync(ollama_source)

    model = RegisteredModel.objects.get(name="llama3.2:latest")
    assert (run.models_updated, model.context_window) == (1, 65536)
    assert model.updated_at > before
    entry = LogEntry.objects.get(object_repr="llama3.2:latest", action=LogEntry.Action.UPDATE)
    assert entry.changes == {"context_window": ["131072", "65536"]}


def test_same_model_on_two_ollama_hosts_is_one_model_with_two_endpoints(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    other = FakeOllama().start()
    try:
        second = ProviderSourceFactory(name="ollama-b", kind=SourceKind.OLLAMA, base_url=other.url)
        _sync(ollama_source)
        run = _sync(second)
    finally:
        other.stop()

    model = RegisteredModel.objects.get(name="llama3.2:latest")
    assert (run.status, run.models_added, run.models_updated) == (RunStatus.SUCCEEDED, 0, 5)
    assert RegisteredModel.objects.count() == 5
    assert sorted(model.endpoints.values_list("endpoint_url", flat=True)) == sorted(
        [f"{fake_ollama.url}/api/chat", f"{other.url}/api/chat"]
    )
    assert model.source_id == ollama_source.pk


def test_model_stays_available_while_another_source_still_lists_it(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    other = FakeOllama().start()
    try:
        second = ProviderSourceFactory(name="ollama-b", kind=SourceKind.OLLAMA, base_url=other.url)
        _sync(ollama_source)
        _sync(second)
        fake_ollama.set_models(load_models()[1:])  # host A drops llama3.2

        run_a = _sync(ollama_source)
        model = RegisteredModel.objects.get(name="llama3.2:latest")
        assert (run_a.models_unavailable, model.status) == (0, ModelStatus.AVAILABLE)
        assert list(model.endpoints.values_list("source__name", flat=True)) == ["ollama-b"]

        other.set_models(load_models()[1:])  # host B drops it too
        run_b = _sync(second)
    finally:
        other.stop()

    model.refresh_from_db()
    assert (run_b.models_unavailable, model.status) == (1, ModelStatus.UNAVAILABLE)


def test_name_listed_by_a_source_of_another_kind_joins_the_existing_model(
    openai_source: ProviderSource,
) -> None:
    _sync(openai_source)
    proxy = FakeOpenAICompatible(flavour="vllm").start()
    proxy.models = [{"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "litellm"}]
    try:
        litellm = ProviderSourceFactory(name="litellm", kind=SourceKind.OPENAI_COMPATIBLE, base_url=proxy.url)
        run = _sync(litellm)
    finally:
        proxy.stop()

    model = RegisteredModel.objects.get(name="gpt-4o")
    assert (run.models_added, run.models_updated) == (0, 1)
    assert (model.provider, model.source_id, model.context_window) == ("openai", openai_source.pk, 128000)
    assert model.endpoints.count() == 2
    assert dict(model.capabilities.values_list("capability", "capability_score"))["image"] == 0.5


def test_hand_registered_model_keeps_its_description_and_gains_an_endpoint(ollama_source: ProviderSource) -> None:
    RegisteredModelFactory(name="qwen3:8b", display_name="Qwen 3 (ours)", context_window=1000)

    run = _sync(ollama_source)

    model = RegisteredModel.objects.get(name="qwen3:8b")
    assert (run.models_added, run.models_updated) == (4, 1)
    assert (model.display_name, model.context_window, model.source_id) == ("Qwen 3 (ours)", 1000, None)
    assert model.first_seen_at is not None
    assert model.capabilities.count() == 0
    assert model.endpoints.get().source_id == ollama_source.pk


def test_stale_last_seen_is_refreshed_without_an_audit_entry(ollama_source: ProviderSource) -> None:
    _sync(ollama_source)
    long_ago = timezone.now() - timedelta(days=2)
    RegisteredModel.objects.update(last_seen_at=long_ago)
    ModelEndpoint.objects.update(last_seen_at=long_ago)
    audit_entries = LogEntry.objects.count()

    run = _sync(ollama_source)

    assert run.models_updated == 0
    assert not RegisteredModel.objects.filter(last_seen_at=long_ago).exists()
    assert not ModelEndpoint.objects.filter(last_seen_at=long_ago).exists()
    assert LogEntry.objects.count() == audit_entries


def test_dry_run_counts_what_would_change_and_writes_nothing(ollama_source: ProviderSource) -> None:
    run = _sync(ollama_source, dry_run=True)

    ollama_source.refresh_from_db()
    assert (run.status, run.dry_run, run.models_added) == (RunStatus.SUCCEEDED, True, 5)
    assert RegisteredModel.objects.count() == 0
    assert LogEntry.objects.filter(content_type__model="registeredmodel").count() == 0
    assert ollama_source.last_run_at is None


def test_successful_run_resets_the_source_failure_count(ollama_source: ProviderSource) -> None:
    ProviderSource.objects.filter(pk=ollama_source.pk).update(consecutive_failures=3, last_error="boom")

    run = _sync(ollama_source)

    ollama_source.refresh_from_db()
    assert (ollama_source.last_status, ollama_source.last_error, ollama_source.consecutive_failures) == (
        RunStatus.SUCCEEDED,
        "",
        0,
    )
    assert ollama_source.last_run_at == run.finished_at


def test_finished_run_is_counted_in_the_metrics(ollama_source: ProviderSource) -> None:
    counter = metrics.DISCOVERY_RUNS.labels(source="ollama-a", status="succeeded")
    before = counter._value.get()

    _sync(ollama_source)

    assert counter._value.get() == before + 1


def test_discovery_keeps_the_operators_platform_overrides_in_details(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    _sync(ollama_source)
    model = RegisteredModel.objects.get(name="llama3.2:latest")
    model.details = {**model.details, "platform": {"task_types": ["summarization"]}}
    model.save()
    tags = load_models()
    tags[0][1]["model_info"]["llama.context_length"] = 65536  # a change, so the description is rewritten
    fake_ollama.set_models(tags)

    _sync(ollama_source)

    model.refresh_from_db()
    assert model.context_window == 65536
    assert model.details["platform"] == {"task_types": ["summarization"]}
    assert model.details["family"]  # the provider's facts are still the provider's


def test_run_records_the_names_of_the_models_it_added_updated_and_made_unavailable(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    listed = load_models()
    first = _sync(ollama_source)
    assert first.changes == {
        "added": sorted(tag["name"] for tag, _ in listed),
        "updated": [],
        "unavailable": [],
        "skipped": [],
    }

    gone, *rest = listed
    fake_ollama.set_models(rest)
    second = _sync(ollama_source)
    fake_ollama.set_models(listed)
    third = _sync(ollama_source)

    second.refresh_from_db()
    third.refresh_from_db()
    assert second.changes == {"added": [], "updated": [], "unavailable": [gone[0]["name"]], "skipped": []}
    assert third.changes == {"added": [], "updated": [gone[0]["name"]], "unavailable": [], "skipped": []}


def test_run_records_the_names_it_skipped(ollama_source: ProviderSource, fake_ollama: FakeOllama) -> None:
    tag, show = load_models()[0]
    long_name = "x" * 120
    fake_ollama.set_models([({**tag, "name": long_name, "model": long_name}, show)])

    run = _sync(ollama_source)

    assert run.changes["skipped"] == ["x" * 100 + "..."]
    assert run.models_skipped == 1


def test_run_keeps_the_first_names_of_a_long_list_and_the_full_count(
    ollama_source: ProviderSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("discovery.sync.CHANGES_NAMES_MAX", 2)

    run = _sync(ollama_source)

    run.refresh_from_db()
    assert run.models_added == 5
    assert run.changes["added"] == sorted(tag["name"] for tag, _ in load_models())[:2]


def test_failed_run_records_no_names(ollama_source: ProviderSource, fake_ollama: FakeOllama) -> None:
    fake_ollama.fail_next("status", status=401, times=5)

    run = _sync(ollama_source)

    assert run.status == RunStatus.FAILED
    assert run.changes == {}


def test_audit_entries_of_capabilities_and_parameters_name_their_model(ollama_source: ProviderSource) -> None:
    _sync(ollama_source)

    model = RegisteredModel.objects.get(name="qwen3:8b")
    capability_entries = LogEntry.objects.filter(
        content_type__model="modelcapability", object_id__in=model.capabilities.values("pk")
    )
    parameter_entries = LogEntry.objects.filter(
        content_type__model="modelparameter", object_id__in=model.parameters.values("pk")
    )
    assert set(capability_entries.values_list("object_repr", flat=True)) == {
        "qwen3:8b: text",
        "qwen3:8b: tools",
        "qwen3:8b: reasoning",
    }
    assert "qwen3:8b: temperature" in set(parameter_entries.values_list("object_repr", flat=True))
