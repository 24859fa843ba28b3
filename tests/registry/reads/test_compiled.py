"""Querysets compiled once and run again with other values: the same rows as the queryset, every time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry.catalog.selectors import of_model_ids
from registry.models import ModelEndpoint, ModelUsage, RegisteredModel
from registry.reads import compiled
from tests.factories import ModelEndpointFactory, ModelUsageFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

COLUMNS = ("model_id", "endpoint_url", "api_key", "headers", "secret_headers", "source__name", "created_at")


def endpoints_of(ids: list[int]) -> QuerySet[ModelEndpoint, tuple[Any, ...]]:
    return ModelEndpoint.objects.filter(**of_model_ids(ids)).order_by("id").values_list(*COLUMNS)


@pytest.fixture(autouse=True)
def _no_compiled_queries() -> Any:
    # Each test starts from nothing compiled, as a new worker does (keys are shared by name).
    compiled._compiled.clear()
    yield
    compiled._compiled.clear()


def test_rows_are_the_querysets_rows_with_its_converters_applied() -> None:
    # Encrypted columns decrypted, JSON decoded, datetimes aware: what values_list gives.
    first = ModelEndpointFactory(api_key="sk-first", headers={"X-Team": "a"}, secret_headers={"X-Key": "s"})
    second = ModelEndpointFactory(api_key=None, headers={})
    for ids in ([first.model_id], [second.model_id], [first.model_id, second.model_id]):
        assert compiled.rows("test.endpoints", endpoints_of, ids) == list(endpoints_of(ids))
    assert compiled.rows("test.endpoints", endpoints_of, [first.model_id])[0][2] == "sk-first"


def test_the_changing_value_is_substituted_on_every_run() -> None:
    old, new = RegisteredModelFactory(), RegisteredModelFactory()
    ModelUsageFactory(model=old, timestamp=timezone.now() - timedelta(hours=3))
    ModelUsageFactory(model=new, timestamp=timezone.now())

    def since(moment: Any) -> QuerySet[ModelUsage, dict[str, Any]]:
        return ModelUsage.objects.filter(timestamp__gte=moment).order_by("model_id").values("model_id")

    wide = compiled.dict_rows("test.since", since, timezone.now() - timedelta(hours=4))
    narrow = compiled.dict_rows("test.since", since, timezone.now() - timedelta(hours=1))
    assert wide == [{"model_id": old.pk}, {"model_id": new.pk}]
    assert narrow == [{"model_id": new.pk}]


def test_a_value_the_query_does_not_take_as_one_parameter_runs_as_a_queryset() -> None:
    model = RegisteredModelFactory(name="copied")

    def by_names(names: list[str]) -> QuerySet[RegisteredModel, tuple[Any, ...]]:
        # ``name__in`` spreads the list over one parameter per name: not found by identity.
        return RegisteredModel.objects.filter(name__in=list(names)).values_list("id", "name")

    for _ in range(2):
        assert compiled.rows("test.names", by_names, ["copied"]) == [(model.pk, "copied")]
    assert compiled.rows("test.names", by_names, ["other"]) == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="compiled ahead on PostgreSQL only")
def test_on_postgresql_a_compiled_query_runs_its_sql_once_per_call() -> None:
    endpoint = ModelEndpointFactory()
    compiled.rows("test.endpoints", endpoints_of, [endpoint.model_id])
    with CaptureQueriesContext(connection) as context:
        assert compiled.rows("test.endpoints", endpoints_of, [endpoint.model_id]) == list(
            endpoints_of([endpoint.model_id])
        )
    assert len(context.captured_queries) == 2  # the compiled one, then the queryset's for the comparison
    assert compiled._compiled["test.endpoints"] is not None
