"""``GET /models/compare``: the shape, the best marks, unknown cost, errors naming ``models``, roles, query count."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from registry.models import Alert, AlertKind, ModelPrice, ModelRuntime, ModelStatus, SetBy
from registry.selection.compare import best_marks
from tests.factories import (
    ModelCapabilityFactory,
    ModelUsageFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db

Client = Callable[[str], APIClient]


def row(body: dict[str, Any], key: str) -> dict[str, Any]:
    return next(item for item in body["rows"] if item["key"] == key)


@pytest.fixture
def three() -> list[Any]:
    """gpt-4o-mini (priced, costed usage), qwen (local, uncosted usage, an open alert, loaded), haiku (no usage)."""
    now = timezone.now()
    mini = RegisteredModelFactory(
        name="gpt-4o-mini",
        provider="openai",
        context_window=128000,
        input_cost_per_mtok=Decimal("0.15"),
        output_cost_per_mtok=Decimal("0.6"),
    )
    qwen = RegisteredModelFactory(name="qwen2.5-coder:7b", context_window=32768)
    haiku = RegisteredModelFactory(
        name="claude-3-5-haiku",
        provider="anthropic",
        context_window=200000,
        input_cost_per_mtok=Decimal("0.8"),
        output_cost_per_mtok=Decimal("4"),
    )
    ModelCapabilityFactory(model=mini, capability="code", capability_score=0.8)
    ModelCapabilityFactory(model=qwen, capability="code", capability_score=0.8)
    ModelCapabilityFactory(model=haiku, capability="code", capability_score=0.7)
    ModelCapabilityFactory(model=haiku, capability="vision", capability_score=0.9)
    for hours, latency in ((1, 0.4), (2, 0.6), (30, 1.0)):
        ModelUsageFactory(
            model=mini, timestamp=now - timedelta(hours=hours), average_latency=latency, cost=Decimal("0.5")
        )
    ModelUsageFactory(model=qwen, timestamp=now - timedelta(hours=3), request_count=916, error_count=9, cost=None)
    ModelUsageFactory(model=qwen, timestamp=now - timedelta(days=10), request_count=4, average_latency=2.0)
    Alert.objects.create(kind=AlertKind.ERROR_RATE, model=qwen, message="qwen error rate 27%")
    ModelRuntime.objects.create(
        model=qwen, source=ProviderSourceFactory(), loaded=True, expires_at=now + timedelta(minutes=4), checked_at=now
    )
    return [mini, qwen, haiku]


def test_compare_answers_one_column_per_model_in_the_order_given(api_client_for: Client, three: list[Any]) -> None:
    mini, qwen, haiku = three

    response = api_client_for("viewer").get("/models/compare", {"models": f"{qwen.name},{mini.pk},{haiku.name}"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert [model["name"] for model in body["models"]] == [qwen.name, mini.name, haiku.name]
    assert row(body, "status")["values"] == ["available"] * 3
    assert row(body, "provider")["values"] == ["ollama", "openai", "anthropic"]
    assert row(body, "context_window")["values"] == [32768, 128000, 200000]
    assert row(body, "input_price")["values"] == [None, 0.15, 0.8]
    assert row(body, "requests_24h")["values"] == [916, 2, 0]
    assert row(body, "requests_30d")["values"] == [920, 3, 0]
    assert row(body, "tokens_24h")["values"] == [100, 200, 0]
    assert row(body, "error_rate_24h")["values"] == [pytest.approx(9 / 916), 0.0, None]
    assert row(body, "latency_p50_24h")["values"] == [0.5, pytest.approx(0.5), None]
    assert row(body, "latency_p95_30d")["values"][1] == pytest.approx(0.96)
    assert row(body, "runtime")["values"][0]["loaded"] is True
    assert row(body, "runtime")["values"][1] is None  # no host was ever asked
    assert row(body, "open_alerts")["values"][0]["count"] == 1
    assert row(body, "open_alerts")["values"][0]["alerts"][0]["message"] == "qwen error rate 27%"
    assert set(body["windows"]) == {"24h", "7d", "30d"}
    assert len(body["sparklines"]["starts"]) == 31
    assert sum(body["sparklines"]["requests"][0]) == 920


def test_unknown_cost_is_null_with_its_uncosted_requests_never_zero(api_client_for: Client, three: list[Any]) -> None:
    mini, qwen, haiku = three

    body = api_client_for("viewer").get("/models/compare", {"models": f"{mini.name},{qwen.name},{haiku.name}"}).json()

    spend = row(body, "spend_24h")["values"]
    assert spend[0] == {"cost": 1.0, "requests": 2, "uncosted_requests": 0}
    assert spend[1] == {"cost": None, "requests": 916, "uncosted_requests": 916}
    assert spend[2] == {"cost": 0.0, "requests": 0, "uncosted_requests": 0}  # no usage: nothing spent
    # The day of qwen's uncosted requests is a gap in its spend sparkline, not a zero.
    assert None in body["sparklines"]["spend"][1]
    assert max(body["sparklines"]["uncosted_requests"][1]) == 916


def test_the_best_value_of_each_row_is_marked_ties_alike(api_client_for: Client, three: list[Any]) -> None:
    mini, qwen, haiku = three

    body = api_client_for("viewer").get("/models/compare", {"models": f"{mini.name},{qwen.name},{haiku.name}"}).json()

    assert row(body, "context_window")["best"] == [False, False, True]  # highest
    assert row(body, "input_price")["best"] == [True, False, False]  # lowest of the two known
    assert row(body, "capability:code")["best"] == [True, True, False]  # a tie, both marked
    assert row(body, "capability:code")["values"][0]["evidence"]["source"] == "operator"
    # Only haiku has vision: one value, nothing to compare, nothing marked.
    assert row(body, "capability:vision")["best"] == [False, False, False]
    assert row(body, "open_alerts")["best"] == [True, False, True]  # fewest
    assert row(body, "error_rate_24h")["best"] == [True, False, False]
    # Volumes are neither better nor worse.
    assert row(body, "requests_24h")["best"] == [False, False, False]
    assert row(body, "spend_24h")["better"] is None


def test_best_marks_need_two_values_and_mark_ties() -> None:
    assert best_marks([1.0, None, 1.0, 2.0], "lower") == [True, False, True, False]
    assert best_marks([1.0, None], "lower") == [False, False]
    assert best_marks([0.1 + 0.2, 0.3], "lower") == [True, True]  # equal as printed
    assert best_marks([3.0, 5.0], "higher") == [False, True]
    assert best_marks([3.0, 5.0], None) == [False, False]


def test_the_price_in_force_on_a_date_is_shown_when_asked(api_client_for: Client, three: list[Any]) -> None:
    mini, qwen, _ = three
    ModelPrice.objects.create(
        model=mini,
        input_per_mtok=Decimal("0.3"),
        output_per_mtok=Decimal("1.2"),
        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
        set_by=SetBy.OPERATOR,
    )
    ModelPrice.objects.create(
        model=mini,
        input_per_mtok=Decimal("0.15"),
        output_per_mtok=Decimal("0.6"),
        effective_from=datetime(2026, 6, 1, tzinfo=UTC),
        set_by=SetBy.OPERATOR,
    )
    client = api_client_for("viewer")

    body = client.get("/models/compare", {"models": f"{mini.name},{qwen.name}", "date": "2026-03-15"}).json()
    without = client.get("/models/compare", {"models": f"{mini.name},{qwen.name}"}).json()

    assert body["price_date"] == "2026-03-15T00:00:00Z"
    assert row(body, "input_price_on_date")["values"] == [0.3, None]
    assert row(body, "output_price_on_date")["values"] == [1.2, None]
    assert row(body, "input_price")["values"] == [0.15, None]
    assert "input_price_on_date" not in {item["key"] for item in without["rows"]}


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ("gpt-4o-mini", "at least 2"),
        ("gpt-4o-mini,,", "at least 2"),
        (",".join(f"m{i}" for i in range(7)), "At most 6"),
        ("gpt-4o-mini,nope", "No such model: nope."),
        ("gpt-4o-mini,{mini}", "are the same model"),
        ("gpt-4o-mini,gpt-4o-mini", "are the same model"),
    ],
)
def test_bad_models_are_a_400_naming_models(
    api_client_for: Client, three: list[Any], models: str, message: str
) -> None:
    response = api_client_for("viewer").get("/models/compare", {"models": models.format(mini=three[0].pk)})

    assert response.status_code == 400
    assert list(response.json()) == ["models"]
    assert message in str(response.json()["models"])


def test_a_missing_models_or_a_bad_date_is_a_400_naming_it(api_client_for: Client, three: list[Any]) -> None:
    client = api_client_for("viewer")

    missing = client.get("/models/compare")
    bad_date = client.get("/models/compare", {"models": "gpt-4o-mini,claude-3-5-haiku", "date": "yesterday"})

    assert missing.status_code == 400
    assert "models" in missing.json()
    assert bad_date.status_code == 400
    assert list(bad_date.json()) == ["date"]


def test_compare_is_for_every_role_that_reads_models_and_no_one_else(api_client_for: Client, three: list[Any]) -> None:
    query = {"models": "gpt-4o-mini,claude-3-5-haiku"}
    for role in ("viewer", "service", "editor", "admin"):
        assert api_client_for(role).get("/models/compare", query).status_code == 200, role
    assert APIClient().get("/models/compare", query).status_code == 401


def test_compare_is_a_reserved_model_name(api_client_for: Client) -> None:
    body = {"name": "compare", "display_name": "C", "provider": "ollama", "model_type": "chat"}

    response = api_client_for("editor").post("/models", body, format="json")

    assert response.status_code == 400
    assert "name" in response.json()


def test_compare_runs_a_fixed_number_of_queries_whatever_the_usage(api_client_for: Client) -> None:
    models = [RegisteredModelFactory() for _ in range(6)]
    now = timezone.now()
    for model in models:
        ModelCapabilityFactory(model=model, capability="code")
        ModelCapabilityFactory(model=model, capability="text")
        for day in range(0, 30, 3):
            ModelUsageFactory(model=model, timestamp=now - timedelta(days=day, minutes=5))
        Alert.objects.create(kind=AlertKind.LATENCY, model=model, message="slow")
    model_refs = ",".join(model.name for model in models)
    client = api_client_for("viewer")
    client.get("/models/compare", {"models": model_refs})  # the token's user, once

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/models/compare", {"models": model_refs})

    assert response.status_code == 200
    # The models, runtimes, capabilities, alerts, usage totals, latency percentiles and the sparklines'
    # days (plus the user's roles): no query per model or per row.
    assert len(queries) <= 10, [query["sql"][:120] for query in queries.captured_queries]


def test_a_deprecated_model_compares_too(api_client_for: Client, three: list[Any]) -> None:
    three[2].status = ModelStatus.DEPRECATED
    three[2].save()

    body = api_client_for("viewer").get("/models/compare", {"models": "gpt-4o-mini,claude-3-5-haiku"}).json()

    assert row(body, "status")["values"] == ["available", "deprecated"]
