"""Writes of the registry, called directly (the API, admin actions and tasks all go through them)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from registry.catalog.services import (
    ModelNameConflict,
    capability_set,
    endpoint_create,
    endpoint_update,
    is_secret_header,
    model_register,
    model_update,
    parameter_set,
)
from registry.models import ModelCapability, ModelEndpoint, ModelParameter, ModelUsage, RegisteredModel, SetBy
from registry.telemetry.services import usage_record_batch, usage_record_idempotent
from tests.factories import ModelCapabilityFactory, ModelEndpointFactory, ProviderSourceFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

FIELDS: dict[str, Any] = {"name": "gpt-4o", "display_name": "GPT-4o", "provider": "openai", "model_type": "chat"}


def test_model_register_refuses_a_taken_name() -> None:
    RegisteredModelFactory(name="gpt-4o")
    with pytest.raises(ModelNameConflict, match="gpt-4o"):
        model_register(fields=FIELDS)


def test_model_register_is_all_or_nothing() -> None:
    with pytest.raises(IntegrityError):
        model_register(fields=FIELDS, capabilities={"code": 0.5, "text": 7.0})
    assert RegisteredModel.objects.count() == 0
    assert ModelCapability.objects.count() == 0


def test_capability_set_takes_a_discovery_row_for_the_operator() -> None:
    row = ModelCapabilityFactory(capability="code", capability_score=0.5, set_by=SetBy.DISCOVERY)
    updated, created = capability_set(model=row.model, capability="code", score=0.8)
    assert created is False
    assert (updated.pk, updated.capability_score, updated.set_by) == (row.pk, 0.8, SetBy.OPERATOR)


def test_parameter_set_adds_then_updates_by_name() -> None:
    model = RegisteredModelFactory()
    _, created = parameter_set(model=model, parameter_name="top_k", default_value=40)
    _, created_again = parameter_set(model=model, parameter_name="top_k", default_value=20, min_value=1)
    assert (created, created_again) == (True, False)
    row = ModelParameter.objects.get(model=model)
    assert (row.default_value, row.min_value, row.set_by) == (20, 1, SetBy.OPERATOR)


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("Authorization", True),
        ("proxy-authorization", True),
        ("X-Api-Key", True),
        ("api-key", True),
        ("X-Auth-Token", True),
        ("Cookie", True),
        ("X-Client-Secret", True),
        # Credential-like by name, beyond the usual ones.
        ("X-Credential", True),
        ("X-Goog-Credentials", True),
        ("X-Session", True),
        ("X-Session-Id", True),
        ("X-Signature", True),
        ("X-Hub-Signature-256", True),
        ("Cookie2", True),
        ("Set-Cookie", True),
        ("X-Passwd", True),
        ("X-JWT", True),
        ("X-Bearer", True),
        ("OpenAI-Organization", False),
        ("OpenAI-Project", False),
        ("X-Request-Id", False),
        ("Accept-Language", False),
        ("Content-Type", False),
        ("X-Tenant", False),
    ],
)
def test_credential_like_headers_are_secret(name: str, secret: bool) -> None:
    assert is_secret_header(name) is secret


def test_endpoint_credentials_are_kept_cleared_or_replaced_as_asked() -> None:
    endpoint = endpoint_create(
        model=RegisteredModelFactory(),
        endpoint_type="rest",
        headers={"Authorization": "Bearer a", "X-Tenant": "t"},
        api_key="sk-1",
    )
    assert (endpoint.headers, endpoint.secret_headers, endpoint.api_key) == (
        {"X-Tenant": "t"},
        {"Authorization": "Bearer a"},
        "sk-1",
    )
    endpoint_update(endpoint=endpoint, endpoint_url="https://x.example")
    endpoint.refresh_from_db()
    assert (endpoint.secret_headers, endpoint.api_key) == ({"Authorization": "Bearer a"}, "sk-1")
    endpoint_update(endpoint=endpoint, secret_headers={"Authorization": None, "X-Api-Key": "k"}, api_key=None)
    endpoint.refresh_from_db()
    assert (endpoint.secret_headers, endpoint.api_key) == ({"X-Api-Key": "k"}, None)
    endpoint_update(endpoint=endpoint, secret_headers=None)
    endpoint.refresh_from_db()
    assert endpoint.secret_headers is None


def test_endpoints_created_by_hand_have_no_source() -> None:
    endpoint = endpoint_create(model=RegisteredModelFactory(), endpoint_type="local")
    assert endpoint.source_id is None


def test_model_update_replaces_endpoints_and_leaves_them_alone_when_not_given() -> None:
    model = RegisteredModelFactory()
    managed = ModelEndpointFactory(model=model, source=ProviderSourceFactory())
    model_update(model=model, fields={"description": "x"})
    assert ModelEndpoint.objects.filter(pk=managed.pk).exists()
    model_update(model=model, fields={}, endpoints=[{"endpoint_type": "rest", "endpoint_url": "https://n"}])
    assert list(ModelEndpoint.objects.filter(model=model).values_list("endpoint_url", flat=True)) == ["https://n"]


@pytest.mark.postgres
def test_usage_batch_goes_in_with_copy_on_postgres(on_postgres: bool) -> None:
    if not on_postgres:
        pytest.skip("COPY is PostgreSQL's; SQLite takes the bulk_create path")
    model = RegisteredModelFactory(name="gpt-4o")
    records = [
        {"token_count": i, "timestamp": datetime(2026, 1, 1, tzinfo=UTC), "cost": Decimal("0.5")} for i in range(1000)
    ]
    with CaptureQueriesContext(connection) as context:
        assert usage_record_batch(model=model, records=records) == 1000
    # Django logs no INSERT: the rows went in through COPY, outside the ORM.
    assert not [q for q in context.captured_queries if "INSERT" in q["sql"]]
    assert ModelUsage.objects.filter(model=model, model_name="gpt-4o").count() == 1000
    assert ModelUsage.objects.filter(model=model).aggregate(total=Sum("cost"))["total"] == Decimal("500")


def test_usage_batch_that_the_database_rejects_writes_nothing() -> None:
    model = RegisteredModelFactory()
    with pytest.raises(IntegrityError):
        usage_record_batch(model=model, records=[{"token_count": 1}, {"token_count": -1}])
    assert ModelUsage.objects.count() == 0


def test_usage_batch_defaults_counts() -> None:
    model = RegisteredModelFactory()
    assert usage_record_batch(model=model, records=[{}]) == 1
    row = ModelUsage.objects.get()
    assert (row.request_count, row.error_count, row.token_count, row.cost) == (1, 0, None, None)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_posts_of_one_request_id_store_it_once(on_postgres: bool) -> None:
    """The second insert waits on the first's uncommitted row in the unique index, then does nothing."""
    if not on_postgres:
        pytest.skip("SQLite serializes writers: there is no overlap to test")
    model = RegisteredModelFactory(name="gpt-4o")
    first_inserted = threading.Event()
    results: dict[str, int] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = usage_record_idempotent(model=model, records=[{"request_id": "r"}])
                first_inserted.set()
                time.sleep(0.5)  # the second insert runs now, and must wait for this commit
        finally:
            connection.close()

    def second() -> None:
        try:
            first_inserted.wait(timeout=10)
            results["second"] = usage_record_idempotent(model=model, records=[{"request_id": "r"}])
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert results == {"first": 1, "second": 0}
    assert ModelUsage.objects.filter(request_id="r").count() == 1


def test_usage_with_request_ids_skips_those_already_stored_for_the_model() -> None:
    model = RegisteredModelFactory(name="gpt-4o")
    other = RegisteredModelFactory(name="gpt-4o-mini")
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    records = [{"request_id": "a", "token_count": 3, "cost": Decimal("0.25"), "timestamp": stamp}, {"request_id": "b"}]
    assert usage_record_idempotent(model=model, records=records) == 2
    assert usage_record_idempotent(model=model, records=[*records, {"request_id": None}]) == 1
    assert usage_record_idempotent(model=other, records=records) == 2
    row = ModelUsage.objects.get(model=model, request_id="a")
    assert (row.token_count, row.cost, row.timestamp, row.model_name) == (3, Decimal("0.25"), stamp, "gpt-4o")
    assert ModelUsage.objects.filter(model=model).count() == 3
