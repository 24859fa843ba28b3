"""GET /models/select: the models a router should use for a task, best first, and why."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from registry.models import EndpointType
from registry.telemetry.alerts import alerts_check
from tests.factories import (
    ModelEndpointFactory,
    ModelUsageFactory,
    model_with,
)

pytestmark = pytest.mark.django_db

ClientFor = Callable[[str], APIClient]


def select(client: APIClient, query: str) -> list[str]:
    response = client.get(f"/models/select?{query}")
    assert response.status_code == 200
    return [item["model"]["name"] for item in response.json()["results"]]


def test_selection_ranks_by_score_and_requires_every_capability(api_client_for: ClientFor) -> None:
    model_with("coder", {"code": 0.95, "text": 0.6})
    model_with("generalist", {"code": 0.75, "text": 0.9})
    model_with("weak", {"code": 0.5, "text": 0.9})
    model_with("no-text", {"code": 0.99})
    model_with("retired", {"code": 0.99, "text": 0.99}, status="deprecated")
    client = api_client_for("viewer")
    assert select(client, "capability=code&min_score=0.7") == ["no-text", "coder", "generalist"]
    assert select(client, "capability=code&capability=text&min_score=0.6") == ["generalist", "coder"]


def test_selection_returns_the_figures_that_ranked_each_model(api_client_for: ClientFor) -> None:
    model = model_with("gpt-4o", {"code": 0.9, "text": 0.7}, input_cost_per_mtok=Decimal("2.5"))
    model.output_cost_per_mtok = Decimal("10")
    model.save()
    ModelUsageFactory(model=model, request_count=3, average_latency=0.2)
    ModelUsageFactory(model=model, request_count=1, average_latency=0.6)
    ModelUsageFactory(model=model, request_count=100, average_latency=9.0, timestamp=timezone.now() - timedelta(days=2))
    item = api_client_for("viewer").get("/models/select?capability=code&capability=text").json()["results"][0]
    assert item["ranking"] == {
        "score": pytest.approx(0.8),
        "capabilities": {"code": 0.9, "text": 0.7},
        "recent_latency": pytest.approx(0.3),
        "cost_per_mtok": 6.25,
        "fallback_only": False,
    }
    assert item["model"]["capabilities"] == {"code": 0.9, "text": 0.7}


def test_equal_scores_rank_lower_recent_latency_first_then_lower_cost(api_client_for: ClientFor) -> None:
    slow = model_with("slow", {"code": 0.8})
    fast = model_with("fast", {"code": 0.8})
    model_with(
        "cheap-unmeasured", {"code": 0.8}, input_cost_per_mtok=Decimal("0.1"), output_cost_per_mtok=Decimal("0.1")
    )
    model_with("dear-unmeasured", {"code": 0.8}, input_cost_per_mtok=Decimal("5"), output_cost_per_mtok=Decimal("15"))
    model_with("unknown-price", {"code": 0.8})
    ModelUsageFactory(model=slow, average_latency=2.0)
    ModelUsageFactory(model=fast, average_latency=0.3)
    assert select(api_client_for("viewer"), "capability=code") == [
        "fast",
        "slow",
        "cheap-unmeasured",
        "dear-unmeasured",
        "unknown-price",
    ]


def test_selection_filters_and_limit(api_client_for: ClientFor, django_capture_on_commit_callbacks: Any) -> None:
    model_with("llama3.2:latest", {"text": 0.7}, provider="ollama")
    model_with("gpt-4o", {"text": 0.9}, provider="openai")
    hosted = model_with("claude-sonnet-4-5-20250929", {"text": 0.95}, provider="anthropic")
    model_with("nomic-embed-text", {"text": 0.99}, provider="ollama", model_type="embedding")
    client = api_client_for("viewer")
    assert select(client, "capability=text&provider=openai") == ["gpt-4o"]
    assert select(client, "capability=text&model_type=chat&limit=2") == ["claude-sonnet-4-5-20250929", "gpt-4o"]
    assert select(client, "capability=text&local_only=true&model_type=chat") == ["llama3.2:latest"]
    with django_capture_on_commit_callbacks(execute=True):  # the cache is invalidated on commit
        ModelEndpointFactory(model=hosted, endpoint_type=EndpointType.LOCAL)
    assert select(client, "capability=text&local_only=true&model_type=chat") == [
        "claude-sonnet-4-5-20250929",
        "llama3.2:latest",
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("capability=Code", "capability"),
        ("min_score=1.5", "min_score"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("provider=azure", "provider"),
        ("local_only=perhaps", "local_only"),
    ],
)
def test_bad_selection_query_is_400(api_client_for: ClientFor, query: str, field: str) -> None:
    response = api_client_for("viewer").get(f"/models/select?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_a_model_may_not_be_named_select(api_client_for: ClientFor) -> None:
    body = {"name": "select", "display_name": "x", "provider": "ollama", "model_type": "chat"}
    response = api_client_for("editor").post("/models", body, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_recent_latency_in_a_cached_selection_is_never_older_than_the_cache_ttl(
    api_client_for: ClientFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Usage does not change the generation, and a process keeps its own copy of a body while the
    # generation holds: the key names the TTL window, so neither copy outlives it.
    slow = model_with("slow", {"code": 0.8})
    fast = model_with("fast", {"code": 0.8})
    ModelUsageFactory(model=slow, average_latency=2.0)
    ModelUsageFactory(model=fast, average_latency=0.3)
    client = api_client_for("viewer")
    monkeypatch.setattr("registry.api.responses.ttl_window", lambda: 7)
    assert select(client, "capability=code") == ["fast", "slow"]
    for _ in range(10):
        ModelUsageFactory(model=fast, average_latency=9.0)
    assert select(client, "capability=code") == ["fast", "slow"]  # the same window: the stored answer
    monkeypatch.setattr("registry.api.responses.ttl_window", lambda: 8)
    assert select(client, "capability=code") == ["slow", "fast"]


def test_a_model_with_an_open_error_rate_alert_is_ranked_after_the_others(
    api_client_for: ClientFor, django_capture_on_commit_callbacks: Any
) -> None:
    """Issue 23: a router following GET /models/select took the model whose error-rate alert was open."""
    best = model_with("best", {"code": 0.95})
    model_with("second", {"code": 0.8})
    client = api_client_for("viewer")
    assert select(client, "capability=code") == ["best", "second"]  # cached until something changes

    ModelUsageFactory(model=best, request_count=100, error_count=27)
    with django_capture_on_commit_callbacks(execute=True):
        alerts_check()  # opens the alert, and invalidates the cached answer

    results = client.get("/models/select?capability=code").json()["results"]
    assert [(item["model"]["name"], item["ranking"]["fallback_only"]) for item in results] == [
        ("second", False),
        ("best", True),
    ]
