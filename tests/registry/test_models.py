"""The six tables' constraints are enforced by the database itself, not only by forms."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from registry.models import ModelCapability, ModelEndpoint, ModelParameter, ModelPerformance, ModelUsage
from tests.factories import (
    ModelCapabilityFactory,
    ModelEndpointFactory,
    ModelParameterFactory,
    ModelPerformanceFactory,
    ModelUsageFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db


def assert_rejected(create: object) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        create()  # type: ignore[operator]


def test_model_name_is_unique() -> None:
    RegisteredModelFactory(name="gpt-4o")
    assert_rejected(lambda: RegisteredModelFactory(name="gpt-4o"))


def test_capability_is_unique_per_model() -> None:
    cap = ModelCapabilityFactory(capability="code")
    assert_rejected(lambda: ModelCapabilityFactory(model=cap.model, capability="code"))


@pytest.mark.parametrize("score", [-0.01, 1.01, 7.0])
def test_capability_score_outside_0_1_is_rejected(score: float) -> None:
    model = RegisteredModelFactory()
    assert_rejected(lambda: ModelCapability.objects.create(model=model, capability="code", capability_score=score))


@pytest.mark.parametrize("score", [0.0, 1.0, 0.5])
def test_capability_score_bounds_are_inclusive(score: float) -> None:
    ModelCapabilityFactory(capability_score=score)
    assert ModelCapability.objects.filter(capability_score=score).count() == 1


def test_parameter_name_is_unique_per_model() -> None:
    param = ModelParameterFactory(parameter_name="temperature")
    assert_rejected(lambda: ModelParameterFactory(model=param.model, parameter_name="temperature"))


def test_parameter_values_round_trip_as_json() -> None:
    param = ModelParameterFactory(parameter_name="stop", default_value=["</s>", "<|eot|>"], min_value=None)
    param.refresh_from_db()
    assert param.default_value == ["</s>", "<|eot|>"]


@pytest.mark.parametrize(
    "field",
    ["token_count", "request_count", "error_count", "average_latency", "cost"],
)
def test_usage_counts_latency_and_cost_cannot_be_negative(field: str) -> None:
    model = RegisteredModelFactory()
    value = Decimal("-0.5") if field == "cost" else -1
    assert_rejected(lambda: ModelUsage.objects.create(model=model, model_name=model.name, **{field: value}))


def test_performance_sample_size_must_be_positive() -> None:
    model = RegisteredModelFactory()
    assert_rejected(
        lambda: ModelPerformance.objects.create(
            model=model, model_name=model.name, metric_name="accuracy", metric_value=0.9, sample_size=0
        )
    )


def test_one_endpoint_per_model_and_source() -> None:
    source = ProviderSourceFactory()
    endpoint = ModelEndpointFactory(source=source)
    assert_rejected(lambda: ModelEndpointFactory(model=endpoint.model, source=source))
    # Endpoints added by hand (no source) are not limited.
    ModelEndpointFactory(model=endpoint.model)
    ModelEndpointFactory(model=endpoint.model)
    assert ModelEndpoint.objects.filter(model=endpoint.model).count() == 3


def test_deleting_a_model_deletes_its_configuration_and_keeps_its_history() -> None:
    model = RegisteredModelFactory(name="llama3.2:latest")
    ModelEndpointFactory(model=model)
    ModelCapabilityFactory(model=model)
    ModelParameterFactory(model=model)
    ModelUsageFactory(model=model)
    ModelPerformanceFactory(model=model)

    model.delete()

    assert ModelEndpoint.objects.count() == 0
    assert ModelCapability.objects.count() == 0
    assert ModelParameter.objects.count() == 0
    usage = ModelUsage.objects.get()
    performance = ModelPerformance.objects.get()
    assert usage.model_id is None
    assert usage.model_name == "llama3.2:latest"
    assert performance.model_id is None
    assert performance.model_name == "llama3.2:latest"


def test_updated_at_moves_on_save() -> None:
    model = RegisteredModelFactory()
    before = model.updated_at
    model.display_name = "Renamed"
    model.save()
    model.refresh_from_db()
    assert model.updated_at > before
    assert model.created_at <= before
