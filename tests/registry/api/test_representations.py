"""The lean read path writes exactly the bytes the serializers and DRF's renderer wrote for the same data."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from registry.api.catalog.serializers import RegisteredModelSerializer
from registry.catalog.selectors import model_get
from registry.models import ModelEndpoint, ModelRuntime, ModelStatus, RegisteredModel
from registry.reads.representations import json_bytes
from registry.selection.ranking import models_select
from tests.factories import (
    ModelCapabilityFactory,
    ModelEndpointFactory,
    ModelParameterFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db


def rendered(data: object) -> bytes:
    return JSONRenderer().render(data)


def serialized(model: RegisteredModel) -> dict[str, object]:
    return dict(RegisteredModelSerializer(model_get(str(model.pk))).data)


def body_of(response: object) -> bytes:
    content: bytes = response.content  # type: ignore[attr-defined]
    if response.headers.get("Content-Encoding") == "gzip":  # type: ignore[attr-defined]
        return gzip.decompress(content)
    return content


@pytest.fixture
def varied_models() -> list[RegisteredModel]:
    """Models with every kind of value the representation writes, including the awkward ones."""
    source = ProviderSourceFactory(name="ollama-lab")
    plain = RegisteredModelFactory(name="a-plain")
    rich = RegisteredModelFactory(
        name="b-rich/ünïcode:Q4_K_M",
        display_name="Rich \u2028 line \u2029 break ✓",
        description='quotes " and \\ backslash, tab\t, control \x01, emoji 🦙',
        version="3.2",
        status=ModelStatus.DEPRECATED,
        source=source,
        context_window=131072,
        input_cost_per_mtok=Decimal("0.000001"),
        output_cost_per_mtok=Decimal("12.500000"),
        details={"family": "llama", "size": 3.2e-05, "big": 2**70, "nested": {"list": [1, 2.5, None, True]}},
        first_seen_at=datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        last_seen_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    for capability, score in {"code": 0.00001, "text": 0.9, "vision": 1.0}.items():
        ModelCapabilityFactory(model=rich, capability=capability, capability_score=score)
    # Every part of the evidence object: a measured score (window, microseconds), a catalog one, an operator's.
    ModelCapabilityFactory(
        model=rich,
        capability="reasoning",
        capability_score=0.8125,
        set_by="discovery",
        evidence_source="measured",
        evidence="sample-weighted mean of success_rate on coding over 30 days \u2028 ✓",
        metric_name="success_rate",
        task_category="coding",
        sample_size=1240,
        window_start=datetime(2026, 11, 1, 0, 0, 0, 1, tzinfo=UTC),
        window_end=datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),
        evaluated_at=datetime(2026, 12, 1, 6, 0, 0, 500000, tzinfo=UTC),
    )
    ModelCapabilityFactory(
        model=rich,
        capability="tools",
        capability_score=0.5,
        set_by="discovery",
        evidence_source="catalog",
        evidence="curated catalog (x): https://example.org",
        evaluated_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    ModelCapabilityFactory(model=plain, capability="code", capability_score=0.5)
    ModelParameterFactory(model=rich, parameter_name="temperature", default_value=0.7, min_value=0, max_value=2)
    ModelParameterFactory(model=rich, parameter_name="stop", default_value=["\n"], description="stops")
    ModelEndpointFactory(model=rich, source=source, headers={"X-Team": "routing"})
    keyed = ModelEndpointFactory(model=rich, endpoint_type="api", auth_type="api_key", endpoint_url=None)
    ModelEndpoint.objects.filter(pk=keyed.pk).update()
    keyed.api_key = "sk-secret"
    keyed.secret_headers = {"X-Api-Key": "hidden", "Authorization": "Bearer x"}
    keyed.save()
    empty_key = ModelEndpointFactory(model=plain)
    empty_key.api_key = ""
    empty_key.save()
    # Runtime on two hosts: loaded on one (an expiry with microseconds), checked later on the other.
    other = ProviderSourceFactory(name="ollama-b")
    checked = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ModelRuntime.objects.create(
        model=rich,
        source=source,
        loaded=True,
        size_vram=2**33,
        context_length=8192,
        expires_at=datetime(2026, 1, 2, 3, 9, 5, 483716, tzinfo=UTC),
        checked_at=checked,
    )
    ModelRuntime.objects.create(model=rich, source=other, loaded=False, checked_at=checked.replace(second=35))
    return [plain, rich]


def test_json_bytes_match_drf_for_values_orjson_writes_differently() -> None:
    data = {"small": [1e-05, 1e-06, 0.00012, 5e-324], "big": 2**64, "text": "\u2028\u2029 ✓ \x00", "n": [1e16, -0.0]}
    assert json_bytes(data) == rendered(data)


def test_detail_is_byte_identical_to_the_serializer(
    varied_models: list[RegisteredModel], api_client_for: Callable[[str], APIClient]
) -> None:
    client = api_client_for("viewer")
    for model in varied_models:
        response = client.get(f"/models/{model.pk}")
        assert response.status_code == 200
        assert body_of(response) == rendered(serialized(model))


def test_list_page_is_byte_identical_to_the_paginated_serializer(
    varied_models: list[RegisteredModel], api_client_for: Callable[[str], APIClient]
) -> None:
    response = api_client_for("viewer").get("/models?limit=1&offset=1")
    expected = {
        "count": 2,
        "next": None,
        "previous": "http://testserver/models?limit=1",
        "results": [serialized(varied_models[1])],
    }
    assert body_of(response) == rendered(expected)
    whole = api_client_for("viewer").get("/models")
    assert body_of(whole) == rendered(
        {"count": 2, "next": None, "previous": None, "results": [serialized(m) for m in varied_models]}
    )


def test_selection_is_byte_identical_to_the_serialized_ranking(
    varied_models: list[RegisteredModel], api_client_for: Callable[[str], APIClient]
) -> None:
    RegisteredModel.objects.filter(pk=varied_models[1].pk).update(status=ModelStatus.AVAILABLE)
    ranked = models_select(capabilities=["code"], min_score=0.0, limit=10)
    expected = {
        "count": len(ranked),
        "results": [
            {
                "model": dict(RegisteredModelSerializer(item.model).data),
                "ranking": {
                    "score": item.score,
                    "capabilities": item.capability_scores,
                    "recent_latency": item.recent_latency,
                    "cost_per_mtok": item.cost_per_mtok,
                    "fallback_only": item.fallback_only,
                },
            }
            for item in ranked
        ],
    }
    response = api_client_for("viewer").get("/models/select?capability=code&min_score=0")
    assert response.status_code == 200
    assert len(ranked) == 2
    assert body_of(response) == rendered(expected)


def test_evidence_datetimes_are_byte_identical_in_another_time_zone(
    varied_models: list[RegisteredModel], api_client_for: Callable[[str], APIClient], settings: Any
) -> None:
    settings.TIME_ZONE = "Europe/Paris"
    rich = varied_models[1]
    response = api_client_for("viewer").get(f"/models/{rich.pk}")
    assert body_of(response) == rendered(serialized(rich))
    assert response.json()["capability_evidence"]["reasoning"]["window"] == {
        "from": "2026-11-01T01:00:00.000001+01:00",
        "to": "2026-12-01T00:59:59+01:00",
    }
