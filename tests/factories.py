"""factory_boy factories for the registry's data."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.db import transaction

from discovery.models import ProviderSource, SourceKind
from registry.models import (
    EndpointType,
    ModelCapability,
    ModelEndpoint,
    ModelParameter,
    ModelPerformance,
    ModelType,
    ModelUsage,
    Provider,
    RegisteredModel,
)
from registry.telemetry.rollups import RECORD_COLUMNS, usage_rollups_add


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery-staple")

    @factory.post_generation
    def save_after_password(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()


class ProviderSourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProviderSource

    name = factory.Sequence(lambda n: f"source-{n}")
    kind = SourceKind.OLLAMA
    base_url = "http://127.0.0.1:11434"


class RegisteredModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RegisteredModel

    name = factory.Sequence(lambda n: f"model-{n}:latest")
    display_name = factory.LazyAttribute(lambda o: o.name.title())
    provider = Provider.OLLAMA
    model_type = ModelType.CHAT


class ModelEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelEndpoint

    model = factory.SubFactory(RegisteredModelFactory)
    endpoint_type = EndpointType.REST
    endpoint_url = "http://127.0.0.1:11434/api/chat"


class ModelCapabilityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelCapability

    model = factory.SubFactory(RegisteredModelFactory)
    capability = "text"
    capability_score = 0.8


class ModelParameterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelParameter

    model = factory.SubFactory(RegisteredModelFactory)
    parameter_name = "temperature"
    default_value = 0.7
    min_value = 0.0
    max_value = 2.0


class ModelUsageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelUsage

    model = factory.SubFactory(RegisteredModelFactory)
    model_name = factory.LazyAttribute(lambda o: o.model.name)
    token_count = 100
    request_count = 1
    average_latency = 0.5
    error_count = 0

    @classmethod
    def _create(cls, model_class: type[ModelUsage], *args: Any, **kwargs: Any) -> ModelUsage:
        # As the ingestion services do: the record and its hour's rollup in one transaction.
        with transaction.atomic():
            record = super()._create(model_class, *args, **kwargs)
            usage_rollups_add([rollup_row(record)])
        return record


def rollup_row(record: ModelUsage) -> tuple[Any, ...]:
    """A stored usage record as the rollups read it (registry/telemetry/rollups.py)."""
    return tuple(getattr(record, column) for column in RECORD_COLUMNS)


class ModelPerformanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelPerformance

    model = factory.SubFactory(RegisteredModelFactory)
    model_name = factory.LazyAttribute(lambda o: o.model.name)
    metric_name = "latency_p50"
    metric_value = 0.42


def model_with(name: str, scores: dict[str, float], **fields: Any) -> Any:
    """A model with a capability per entry of ``scores`` (capability name: score); ``fields`` go to the model."""
    model = RegisteredModelFactory(name=name, **fields)
    for capability, score in scores.items():
        ModelCapabilityFactory(model=model, capability=capability, capability_score=score)
    return model
