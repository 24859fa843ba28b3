"""Usage and performance records: batches in, roll-ups out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from registry.models import ModelPerformance, ModelUsage
from tests.factories import ModelPerformanceFactory, ModelUsageFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

ClientFor = Callable[[str], APIClient]
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def model() -> Any:
    return RegisteredModelFactory(name="gpt-4o", provider="openai")


def test_one_usage_record_defaults_timestamp_and_counts(api_client_for: ClientFor, model: Any) -> None:
    before = timezone.now()
    response = api_client_for("service").post("/models/gpt-4o/usage", {"token_count": 120}, format="json")
    assert response.status_code == 201
    assert response.json() == {"recorded": 1}
    row = ModelUsage.objects.get()
    assert (row.model_id, row.model_name, row.token_count, row.request_count, row.error_count) == (
        model.pk,
        "gpt-4o",
        120,
        1,
        0,
    )
    assert before <= row.timestamp <= timezone.now()


def test_a_batch_of_1000_records_is_stored(api_client_for: ClientFor, model: Any) -> None:
    records = [{"token_count": i, "timestamp": (T0 + timedelta(seconds=i)).isoformat()} for i in range(1000)]
    response = api_client_for("service").post("/models/gpt-4o/usage", records, format="json")
    assert response.status_code == 201
    assert response.json() == {"recorded": 1000}
    assert ModelUsage.objects.count() == 1000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token_count": -1}, "token_count"),
        ({"request_count": -1}, "request_count"),
        ({"error_count": -2}, "error_count"),
        ({"average_latency": -0.1}, "average_latency"),
        ({"cost": "-0.01"}, "cost"),
        ({"cost": "12345.0000001"}, "cost"),
        ({"token_count": 2**31}, "token_count"),
        ({"token_count": "many"}, "token_count"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"tokens": 5}, "tokens"),
    ],
)
def test_invalid_usage_is_400_naming_the_field(
    api_client_for: ClientFor, model: Any, body: dict[str, Any], field: str
) -> None:
    response = api_client_for("service").post("/models/gpt-4o/usage", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert ModelUsage.objects.count() == 0


def test_usage_more_than_five_minutes_ahead_is_rejected(api_client_for: ClientFor, model: Any) -> None:
    ahead = (timezone.now() + timedelta(minutes=6)).isoformat()
    response = api_client_for("service").post("/models/gpt-4o/usage", {"timestamp": ahead}, format="json")
    assert response.status_code == 400
    assert "timestamp" in response.json()
    near = (timezone.now() + timedelta(minutes=4)).isoformat()
    assert api_client_for("service").post("/models/gpt-4o/usage", {"timestamp": near}, format="json").status_code == 201


def test_one_bad_record_rejects_the_whole_batch(api_client_for: ClientFor, model: Any) -> None:
    records: list[dict[str, Any]] = [{"token_count": 1}] * 5 + [{"token_count": -1}]
    response = api_client_for("service").post("/models/gpt-4o/usage", records, format="json")
    assert response.status_code == 400
    # Only the failing record is named, by its index in the list.
    assert response.json() == {"5": {"token_count": ["Ensure this value is greater than or equal to 0."]}}
    assert ModelUsage.objects.count() == 0


@pytest.mark.parametrize("size", [0, 1001])
def test_batches_hold_one_to_a_thousand_records(api_client_for: ClientFor, model: Any, size: int) -> None:
    response = api_client_for("service").post("/models/gpt-4o/usage", [{"token_count": 1}] * size, format="json")
    assert response.status_code == 400
    assert ModelUsage.objects.count() == 0


def test_usage_counters_move_only_after_commit(
    api_client_for: ClientFor, model: Any, django_capture_on_commit_callbacks: Any
) -> None:
    def tokens() -> float:
        return REGISTRY.get_sample_value("registry_usage_tokens_total", {"model": "gpt-4o"}) or 0.0

    start = tokens()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        api_client_for("service").post("/models/gpt-4o/usage", [{"token_count": 10}, {"token_count": 5}], format="json")
    assert tokens() == start
    for callback in callbacks:
        callback()
    assert tokens() == start + 15


def test_usage_summary_buckets_by_hour(api_client_for: ClientFor, model: Any) -> None:
    ModelUsageFactory(
        model=model, timestamp=T0, request_count=10, token_count=100, error_count=1, average_latency=0.2, cost="0.5"
    )
    ModelUsageFactory(
        model=model,
        timestamp=T0 + timedelta(minutes=30),
        request_count=30,
        token_count=300,
        error_count=0,
        average_latency=0.6,
        cost="1.25",
    )
    ModelUsageFactory(
        model=model, timestamp=T0 + timedelta(hours=2), request_count=5, token_count=None, average_latency=None
    )
    ModelUsageFactory(model=model, timestamp=T0 - timedelta(days=2))  # outside the range
    response = api_client_for("viewer").get(
        "/models/gpt-4o/usage",
        {"bucket": "hour", "from": T0.isoformat(), "to": (T0 + timedelta(hours=3)).isoformat()},
    )
    assert response.status_code == 200
    data = response.json()
    assert data["model"] == "gpt-4o"
    assert data["totals"] == {
        "requests": 45,
        "tokens": 400,
        "errors": 1,
        "error_rate": pytest.approx(1 / 45),
        "average_latency": pytest.approx((10 * 0.2 + 30 * 0.6) / 40),
        "cost": 1.75,
        "uncosted_requests": 5,
    }
    assert [bucket["start"] for bucket in data["buckets"]] == ["2026-11-20T10:00:00Z", "2026-11-20T12:00:00Z"]
    assert data["buckets"][0]["requests"] == 40
    assert data["buckets"][0]["average_latency"] == pytest.approx(0.5)
    assert data["buckets"][1] == {
        "start": "2026-11-20T12:00:00Z",
        "requests": 5,
        "tokens": 0,
        "errors": 0,
        "error_rate": 0.0,
        "average_latency": None,
        "cost": 0.0,
        "uncosted_requests": 5,
    }


def test_usage_summary_buckets_by_day(api_client_for: ClientFor, model: Any) -> None:
    ModelUsageFactory(model=model, timestamp=T0, request_count=2)
    ModelUsageFactory(model=model, timestamp=T0 + timedelta(hours=15), request_count=3)
    response = api_client_for("viewer").get(
        "/models/gpt-4o/usage", {"bucket": "day", "from": "2026-11-19T00:00:00Z", "to": "2026-11-23T00:00:00Z"}
    )
    assert [(b["start"], b["requests"]) for b in response.json()["buckets"]] == [
        ("2026-11-20T00:00:00Z", 2),
        ("2026-11-21T00:00:00Z", 3),
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"bucket": "minute"}, "bucket"),
        ({"from": "2026-11-20T00:00:00Z", "to": "2026-11-19T00:00:00Z"}, "from"),
        ({"from": "not-a-date"}, "from"),
        ({"bucket": "hour", "from": "2025-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
    ],
)
def test_bad_usage_query_is_400(api_client_for: ClientFor, model: Any, query: dict[str, str], field: str) -> None:
    response = api_client_for("viewer").get("/models/gpt-4o/usage", query)
    assert response.status_code == 400
    assert field in response.json()


def test_performance_records_are_stored_with_the_model_name(api_client_for: ClientFor, model: Any) -> None:
    records = [
        {"metric_name": "latency_p50", "metric_value": 0.41, "task_category": "chat", "sample_size": 200},
        {"metric_name": "accuracy", "metric_value": 0.87, "timestamp": T0.isoformat()},
    ]
    response = api_client_for("service").post("/models/gpt-4o/performance", records, format="json")
    assert response.status_code == 201
    assert response.json() == {"recorded": 2}
    assert sorted(ModelPerformance.objects.values_list("model_name", "metric_name")) == [
        ("gpt-4o", "accuracy"),
        ("gpt-4o", "latency_p50"),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metric_name": "accuracy", "metric_value": 0.9, "sample_size": 0}, "sample_size"),
        ({"metric_name": "latency_p95", "metric_value": -1.0}, "metric_value"),
        ({"metric_name": "", "metric_value": 1.0}, "metric_name"),
        ({"metric_name": "accuracy"}, "metric_value"),
        ({"metric_name": "accuracy", "metric_value": "high"}, "metric_value"),
        ({"metric_name": "accuracy", "metric_value": 1.0, "samples": 3}, "samples"),
    ],
)
def test_invalid_performance_is_400_naming_the_field(
    api_client_for: ClientFor, model: Any, body: dict[str, Any], field: str
) -> None:
    response = api_client_for("service").post("/models/gpt-4o/performance", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert ModelPerformance.objects.count() == 0


def test_performance_filters_and_summarises_per_metric(api_client_for: ClientFor, model: Any) -> None:
    for value, category in [(0.2, "chat"), (0.4, "chat"), (0.9, "code")]:
        ModelPerformanceFactory(model=model, metric_name="latency_p50", metric_value=value, task_category=category)
    ModelPerformanceFactory(model=model, metric_name="accuracy", metric_value=0.8, task_category="chat")
    ModelPerformanceFactory(model=model, metric_name="accuracy", metric_value=0.1, timestamp=T0 - timedelta(days=30))
    client = api_client_for("viewer")
    data = client.get("/models/gpt-4o/performance", {"task_category": "chat"}).json()
    assert data["summary"] == {
        "accuracy": {"count": 1, "avg": 0.8, "min": 0.8, "max": 0.8},
        "latency_p50": {"count": 2, "avg": pytest.approx(0.3), "min": 0.2, "max": 0.4},
    }
    assert len(data["records"]) == 3
    only_latency = client.get("/models/gpt-4o/performance", {"metric_name": "latency_p50", "limit": 1}).json()
    assert len(only_latency["records"]) == 1
    assert only_latency["summary"]["latency_p50"]["count"] == 3
    since = client.get("/models/gpt-4o/performance", {"metric_name": "accuracy", "from": T0.isoformat()}).json()
    assert since["summary"]["accuracy"]["count"] == 1


def test_usage_of_an_unknown_model_is_404(api_client_for: ClientFor) -> None:
    client = api_client_for("service")
    assert client.post("/models/nope/usage", {"token_count": 1}, format="json").status_code == 404
    assert client.get("/models/nope/usage").status_code == 404


def test_usage_cost_keeps_six_decimals(api_client_for: ClientFor, model: Any) -> None:
    api_client_for("service").post("/models/gpt-4o/usage", {"cost": "0.000123"}, format="json")
    assert ModelUsage.objects.get().cost == Decimal("0.000123")


def test_usage_statistics_stay_finite_at_the_largest_accepted_figures(api_client_for: ClientFor, model: Any) -> None:
    # make fuzz found it: latencies near 1e308 times 2**31 requests summed past a float's range,
    # and the statistics answered a 500 (PostgreSQL's overflow error, or an infinity JSON cannot carry).
    service = api_client_for("service")
    extreme = {"average_latency": 1e308, "request_count": 2**31 - 1}
    assert service.post("/models/gpt-4o/usage", extreme, format="json").status_code == 400
    largest = {"average_latency": 86_400.0, "request_count": 2**31 - 1, "timestamp": T0.isoformat()}
    assert service.post("/models/gpt-4o/usage", [largest] * 3, format="json").status_code == 201
    response = api_client_for("viewer").get("/models/gpt-4o/usage", {"from": T0.isoformat(), "bucket": "day"})
    assert response.status_code == 200
    assert response.json()["totals"]["average_latency"] == pytest.approx(86_400.0)


def test_performance_statistics_stay_finite_at_the_largest_accepted_values(
    api_client_for: ClientFor, model: Any
) -> None:
    service = api_client_for("service")
    huge = {"metric_name": "throughput", "metric_value": 1.7e308, "timestamp": T0.isoformat()}
    refused = service.post("/models/gpt-4o/performance", huge, format="json")
    assert refused.status_code == 400
    assert "metric_value" in refused.json()
    largest = {**huge, "metric_value": 1e15}
    assert service.post("/models/gpt-4o/performance", [largest] * 2, format="json").status_code == 201
    response = api_client_for("viewer").get("/models/gpt-4o/performance", {"from": T0.isoformat()})
    assert response.status_code == 200
    assert response.json()["summary"]["throughput"]["avg"] == pytest.approx(1e15)
