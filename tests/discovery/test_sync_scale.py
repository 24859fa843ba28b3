"""A run's query count is bounded by a constant, not by the number of models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
from discovery.sync import source_sync
from registry.access.audit import system_actor
from registry.models import ModelCapability, ModelParameter, RegisteredModel
from tests.discovery.fakes.ollama import FakeOllama, generated_models
from tests.factories import ProviderSourceFactory

pytestmark = pytest.mark.django_db

MODELS = 500
# Measured: on PostgreSQL 24 queries for a first run of 500 models (3 capabilities and 5 parameters
# each: 4,500 rows and as many audit entries, written 500 a statement), 12 for a rerun. SQLite caps
# the parameters of one statement (999), so its bulk writes take more statements: 126 and 9.
FIRST_RUN_MAX_QUERIES = {"postgresql": 40, "sqlite": 150}
RERUN_MAX_QUERIES = {"postgresql": 14, "sqlite": 12}


@pytest.fixture
def big_ollama() -> Iterator[FakeOllama]:
    server = FakeOllama(models=generated_models(MODELS)).start()
    yield server
    server.stop()


@pytest.fixture
def big_source(big_ollama: FakeOllama) -> ProviderSource:
    return ProviderSourceFactory(name="big", kind=SourceKind.OLLAMA, base_url=big_ollama.url)


def _sync(source: ProviderSource) -> DiscoveryRun:
    with system_actor("discovery"):
        return source_sync(source=source, trigger="manual")


def test_first_run_of_500_models_takes_a_bounded_number_of_queries(
    big_source: ProviderSource, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(FIRST_RUN_MAX_QUERIES[connection.vendor]):
        run = _sync(big_source)

    assert (run.status, run.models_added) == (RunStatus.SUCCEEDED, MODELS)
    assert RegisteredModel.objects.count() == MODELS
    assert ModelCapability.objects.count() == 3 * MODELS
    assert ModelParameter.objects.count() == 5 * MODELS


def test_rerun_of_500_unchanged_models_takes_a_few_queries(
    big_source: ProviderSource, django_assert_max_num_queries: Any
) -> None:
    _sync(big_source)

    with django_assert_max_num_queries(RERUN_MAX_QUERIES[connection.vendor]):
        run = _sync(big_source)

    assert (run.status, run.models_added, run.models_updated) == (RunStatus.SUCCEEDED, 0, 0)
