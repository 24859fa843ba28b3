"""Data migrations map the rows they find (run on today's tables, which hold the columns they read)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from registry.models import EvidenceSource, ModelCapability, SetBy
from tests.factories import ModelCapabilityFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

evidence_migration = importlib.import_module("registry.migrations.0008_capability_evidence")


def test_old_capability_rows_get_the_source_their_evidence_text_implies() -> None:
    model = RegisteredModelFactory()
    rows = {
        "operator": ModelCapabilityFactory(model=model, capability="code", set_by=SetBy.OPERATOR, evidence="operator"),
        "catalog": ModelCapabilityFactory(
            model=model,
            capability="text",
            set_by=SetBy.DISCOVERY,
            evidence="curated catalog (gpt-4o): https://platform.openai.com/docs/models/gpt-4o",
        ),
        "declared": ModelCapabilityFactory(
            model=model,
            capability="tools",
            set_by=SetBy.DISCOVERY,
            evidence="declared by Ollama /api/show capabilities; default score for a declared capability",
        ),
        "inferred": ModelCapabilityFactory(
            model=model, capability="image", set_by=SetBy.DISCOVERY, evidence="implied by the OpenAI model family"
        ),
    }
    # As the AddField left them: every row with the column's default.
    ModelCapability.objects.update(evidence_source=EvidenceSource.OPERATOR, evaluated_at=None)

    # The function only reads and updates rows: it needs no schema editor (SQLite's cannot open in a test).
    evidence_migration.fill_evidence_source(apps, None)

    found = dict(ModelCapability.objects.values_list("pk", "evidence_source"))
    assert {name: found[row.pk] for name, row in rows.items()} == {
        "operator": EvidenceSource.OPERATOR,
        "catalog": EvidenceSource.CATALOG,
        "declared": EvidenceSource.PROVIDER,
        "inferred": EvidenceSource.PROVIDER,
    }
    assert set(ModelCapability.objects.values_list("evaluated_at", flat=True)) == {None}
