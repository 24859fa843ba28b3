"""Reads of the registry, called directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from registry.catalog.selectors import (
    RuntimeRow,
    model_get,
    model_key_get,
    models_filtered,
    runtime_summary,
    runtimes_of,
)
from registry.models import ModelRuntime, RegisteredModel
from registry.selection.ranking import models_select
from registry.telemetry.selectors import usage_summary
from tests.factories import (
    ModelCapabilityFactory,
    ModelUsageFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db


def test_model_get_reads_digits_as_an_id_and_anything_else_as_a_name() -> None:
    model = RegisteredModelFactory(name="llama3.2:latest")
    assert model_get(str(model.pk)) == model
    assert model_get("llama3.2:latest") == model
    with pytest.raises(RegisteredModel.DoesNotExist):
        model_get(str(model.pk + 1000))


def test_model_key_get_returns_id_and_name() -> None:
    model = RegisteredModelFactory(name="gpt-4o")
    assert model_key_get("gpt-4o") == (model.pk, "gpt-4o")


def test_models_filtered_does_not_repeat_a_model_with_several_matching_rows() -> None:
    model = RegisteredModelFactory()
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.9)
    ModelCapabilityFactory(model=model, capability="text", capability_score=0.9)
    assert list(models_filtered(capability="code")) == [model]


def test_recent_latency_ignores_usage_older_than_a_day() -> None:
    model = RegisteredModelFactory()
    ModelCapabilityFactory(model=model, capability="code")
    ModelUsageFactory(model=model, average_latency=0.4, request_count=1)
    ModelUsageFactory(
        model=model, average_latency=50.0, request_count=99, timestamp=timezone.now() - timedelta(hours=25)
    )
    [ranked] = models_select(capabilities=["code"])
    assert ranked.recent_latency == pytest.approx(0.4)


def test_models_without_recent_usage_rank_after_measured_ones() -> None:
    measured = RegisteredModelFactory(name="b-measured")
    unmeasured = RegisteredModelFactory(name="a-unmeasured")
    for model in (measured, unmeasured):
        ModelCapabilityFactory(model=model, capability="code", capability_score=0.7)
    ModelUsageFactory(model=measured, average_latency=3.0)
    assert [r.model.name for r in models_select(capabilities=["code"])] == ["b-measured", "a-unmeasured"]


def test_selection_without_capabilities_lists_available_models() -> None:
    RegisteredModelFactory(name="on")
    RegisteredModelFactory(name="off", status="unavailable")
    ranked = models_select(capabilities=[])
    assert [(r.model.name, r.score, r.capability_scores) for r in ranked] == [("on", None, {})]


def test_usage_summary_weights_latency_by_requests_and_totals_add_up() -> None:
    model = RegisteredModelFactory()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    ModelUsageFactory(model=model, timestamp=start, request_count=1, average_latency=1.0, cost="0.1")
    ModelUsageFactory(model=model, timestamp=start + timedelta(minutes=5), request_count=3, average_latency=0.2)
    ModelUsageFactory(
        model=model, timestamp=start + timedelta(hours=1), request_count=4, average_latency=0.5, cost="0.3"
    )
    summary = usage_summary(model_id=model.pk, bucket="hour", start=start, end=start + timedelta(hours=2))
    assert [b["average_latency"] for b in summary["buckets"]] == [pytest.approx(0.4), pytest.approx(0.5)]
    assert summary["totals"]["requests"] == 8
    assert summary["totals"]["average_latency"] == pytest.approx((1.0 + 0.6 + 2.0) / 8)
    assert float(summary["totals"]["cost"]) == pytest.approx(0.4)


def test_usage_summary_of_a_quiet_range_is_zero() -> None:
    model = RegisteredModelFactory()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    summary = usage_summary(model_id=model.pk, bucket="day", start=start, end=start + timedelta(days=1))
    assert summary["buckets"] == []
    assert summary["totals"] == {
        "requests": 0,
        "tokens": 0,
        "errors": 0,
        "error_rate": 0.0,
        "average_latency": None,
        "cost": 0,
        "uncosted_requests": 0,
    }


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("index", "definition"),
    [
        # Every column the raw edges of a usage statistic sum (registry/telemetry/usage.py): an
        # index-only scan (migrations 0003, then 0018 on the partitioned table).
        (
            "model_usage_model_ts",
            '(model_id, "timestamp") INCLUDE (request_count, token_count, input_tokens, output_tokens, error_count, '
            "average_latency, cost)",
        ),
        # The selections read a capability's (model, score) pairs from the index alone (migration 0011).
        ("model_capabilities_cap_score", "(capability, capability_score) INCLUDE (model_id)"),
    ],
)
def test_the_read_paths_have_their_covering_indexes(on_postgres: bool, index: str, definition: str) -> None:
    if not on_postgres:
        pytest.skip("covering indexes are PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [index])
        [(found,)] = cursor.fetchall()
    assert found.endswith(definition)


@pytest.mark.postgres
def test_usage_bucket_expressions_have_statistics(on_postgres: bool) -> None:
    if not on_postgres:
        pytest.skip("extended statistics are PostgreSQL's (migration 0004)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT stxname FROM pg_statistic_ext WHERE stxname LIKE 'model_usage_%%' ORDER BY 1")
        names = [row[0] for row in cursor.fetchall()]
    assert names == ["model_usage_day_bucket_stats", "model_usage_hour_bucket_stats"]


def test_runtimes_of_answers_in_one_query_for_any_number_of_models(django_assert_num_queries: Any) -> None:
    source, other = ProviderSourceFactory(), ProviderSourceFactory()
    now = timezone.now()
    models = RegisteredModelFactory.create_batch(30)
    ModelRuntime.objects.bulk_create(
        ModelRuntime(model=model, source=host, loaded=host == source, size_vram=model.pk, checked_at=now)
        for model in models[:20]
        for host in (source, other)
    )
    ids = [model.pk for model in models]

    with django_assert_num_queries(1):
        found = runtimes_of(ids)
    with django_assert_num_queries(1):
        runtimes_of(ids[:2])

    assert set(found) == set(ids[:20])  # never asked: absent, which the API shows as null
    assert found[models[0].pk] == {
        "loaded": True,
        "size_vram": models[0].pk,
        "context_length": None,
        "expires_at": None,
        "checked_at": now,
    }
    assert runtimes_of([]) == {}


def test_runtime_summary_prefers_the_loaded_row_that_expires_last_and_an_unknown_expiry_least() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[RuntimeRow] = [
        (True, 1, 100, None, t),
        (True, 2, 200, t + timedelta(minutes=1), t),
        (False, None, None, None, t + timedelta(seconds=5)),
    ]

    assert runtime_summary(rows) == {
        "loaded": True,
        "size_vram": 2,
        "context_length": 200,
        "expires_at": t + timedelta(minutes=1),
        "checked_at": t + timedelta(seconds=5),
    }
    assert runtime_summary(rows[:1])["size_vram"] == 1  # type: ignore[index]
    assert runtime_summary([]) is None
