"""The evidence of capability scores in the API: read as an object everywhere, written as the operator's note only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from registry.models import EvidenceSource, ModelCapability, RegisteredModel, SetBy
from registry.selection.evidence import capability_evidence_of
from tests.factories import ModelCapabilityFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

ClientFor = Callable[[str], APIClient]
MEASURED_EVIDENCE = {
    "source": "measured",
    "note": "sample-weighted mean of success_rate on coding over 30 days",
    "metric": "success_rate",
    "task_category": "coding",
    "sample_size": 1240,
    "window": {"from": "2026-11-01T00:00:00Z", "to": "2026-11-30T18:30:00Z"},
    "evaluated_at": "2026-12-01T06:00:00Z",
}


@pytest.fixture
def model() -> RegisteredModel:
    model = RegisteredModelFactory(name="coder:7b")
    ModelCapabilityFactory(
        model=model,
        capability="code",
        capability_score=0.81,
        set_by=SetBy.DISCOVERY,
        evidence_source=EvidenceSource.MEASURED,
        evidence=MEASURED_EVIDENCE["note"],
        metric_name="success_rate",
        task_category="coding",
        sample_size=1240,
        window_start=datetime(2026, 11, 1, tzinfo=UTC),
        window_end=datetime(2026, 11, 30, 18, 30, tzinfo=UTC),
        evaluated_at=datetime(2026, 12, 1, 6, tzinfo=UTC),
    )
    ModelCapabilityFactory(
        model=model,
        capability="text",
        capability_score=0.5,
        set_by=SetBy.DISCOVERY,
        evidence_source=EvidenceSource.PROVIDER,
        evidence="declared by Ollama /api/show capabilities",
    )
    return model


def post_capability(client: APIClient, body: dict[str, Any]) -> Any:
    return client.post("/models/coder:7b/capabilities", body, format="json")


def test_capabilities_carry_their_evidence_object(api_client_for: ClientFor, model: RegisteredModel) -> None:
    rows = api_client_for("viewer").get("/models/coder:7b/capabilities").json()
    assert rows[0] == {
        "capability": "code",
        "capability_score": 0.81,
        "set_by": "discovery",
        "evidence": MEASURED_EVIDENCE,
    }
    assert rows[1]["evidence"] == {
        "source": "provider",
        "note": "declared by Ollama /api/show capabilities",
        "metric": None,
        "task_category": None,
        "sample_size": None,
        "window": None,
        "evaluated_at": None,
    }


@pytest.mark.parametrize("path", ["/models/coder:7b", "/models?search=coder", "/models/select?capability=code"])
def test_model_bodies_keep_scores_and_add_capability_evidence(
    api_client_for: ClientFor, model: RegisteredModel, path: str
) -> None:
    body = api_client_for("viewer").get(path).json()
    found = body if "name" in body else body["results"][0]
    found = found.get("model", found)
    assert found["capabilities"] == {"code": 0.81, "text": 0.5}
    assert list(found["capability_evidence"]) == ["code", "text"]
    assert found["capability_evidence"]["code"] == MEASURED_EVIDENCE


def test_capability_evidence_of_answers_many_models_in_one_query(model: RegisteredModel) -> None:
    other = RegisteredModelFactory(name="bare")
    with CaptureQueriesContext(connection) as context:
        found = capability_evidence_of([model.pk, other.pk])
    assert len(context.captured_queries) == 1
    assert found == {
        model.pk: {
            "code": {"score": 0.81, "evidence": MEASURED_EVIDENCE},
            "text": {"score": 0.5, "evidence": found[model.pk]["text"]["evidence"]},
        }
    }
    assert found[model.pk]["text"]["evidence"]["source"] == "provider"


@pytest.mark.parametrize(
    ("evidence", "note"),
    [
        ({"note": "benchmarked by the eval team, 2026-11"}, "benchmarked by the eval team, 2026-11"),
        ("benchmarked by the eval team", "benchmarked by the eval team"),
        # What an operator's evidence reads as, sent back.
        ({"source": "operator", "note": "kept", "metric": None, "window": None, "evaluated_at": None}, "kept"),
    ],
)
def test_an_operator_writes_the_note_and_the_source_is_operator(
    api_client_for: ClientFor, model: RegisteredModel, evidence: Any, note: str
) -> None:
    response = post_capability(
        api_client_for("editor"), {"capability": "code", "capability_score": 0.9, "evidence": evidence}
    )
    assert response.status_code == 200
    assert response.json()["evidence"]["source"] == "operator"
    assert response.json()["evidence"]["note"] == note
    row = ModelCapability.objects.get(model=model, capability="code")
    # The measured row became the operator's: none of the measurement's facts remain.
    assert (row.set_by, row.evidence_source, row.evidence) == (SetBy.OPERATOR, EvidenceSource.OPERATOR, note)
    assert (row.metric_name, row.task_category, row.sample_size, row.window_start, row.window_end) == (None,) * 5
    assert row.evaluated_at is not None


def test_evidence_is_optional(api_client_for: ClientFor, model: RegisteredModel) -> None:
    response = post_capability(api_client_for("editor"), {"capability": "tools", "capability_score": 0.4})
    assert response.status_code == 201
    assert response.json()["evidence"]["note"] == "operator"


@pytest.mark.parametrize(
    ("evidence", "error"),
    [
        ({"source": "measured"}, {"source"}),
        ({"source": "catalog", "note": "x"}, {"source"}),
        ({"note": "x", "sample_size": 5000}, {"sample_size"}),
        ({"window": {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}}, {"window"}),
        ({"notes": "typo"}, {"notes"}),
        ({"note": 5}, {"note"}),
        ({"note": "x" * 301}, {"note"}),
        (5, None),
        (["note"], None),
        ("x" * 301, None),
    ],
)
def test_bad_evidence_is_a_400_naming_the_field_and_writes_nothing(
    api_client_for: ClientFor, model: RegisteredModel, evidence: Any, error: set[str] | None
) -> None:
    response = post_capability(
        api_client_for("editor"), {"capability": "code", "capability_score": 0.9, "evidence": evidence}
    )
    assert response.status_code == 400
    detail = response.json()["evidence"]
    if error is not None:
        assert set(detail) == error
    row = ModelCapability.objects.get(model=model, capability="code")
    assert (row.capability_score, row.evidence_source) == (0.81, EvidenceSource.MEASURED)


def test_the_schema_documents_the_evidence_object_and_what_may_be_written() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    evidence = components["Evidence"]
    assert set(evidence["required"]) == set(MEASURED_EVIDENCE)
    assert {"$ref": "#/components/schemas/EvidenceWindow"} in evidence["properties"]["window"]["oneOf"]
    assert {"type": "null"} in evidence["properties"]["window"]["oneOf"]
    assert components["RegisteredModel"]["properties"]["capability_evidence"]["additionalProperties"] == {
        "$ref": "#/components/schemas/Evidence"
    }
    assert "capability_evidence" not in components["RegisteredModelRequest"]["properties"]
    written = components["CapabilityRequest"]["properties"]["evidence"]["oneOf"]
    assert written[0]["type"] == "string"
    assert written[1]["properties"]["source"]["enum"] == ["operator"]
    assert written[1]["additionalProperties"] is False
