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

from registry.models import (
    Alert,
    AlertKind,
    ModelPrice,
    ModelRuntime,
    ModelStatus,
    SetBy,
    StatusEventOrigin,
)
from registry.selection.compare import best_marks
from registry.telemetry.availability import status_change_record
from registry.telemetry.histograms import RELATIVE_ERROR
from tests.factories import (
    ModelCapabilityFactory,
    ModelUsageFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
)
from tests.registry.telemetry.test_availability import alert_event

pytestmark = pytest.mark.django_db

Client = Callable[[str], APIClient]


def row(body: dict[str, Any], key: str) -> dict[str, Any]:
    return next(item for item in body["rows"] if item["key"] == key)


def status_change(model: Any, at: datetime, state: str) -> None:
    status_change_record(model_id=model.pk, status=state, origin=StatusEventOrigin.DISCOVERY, cause=state, at=at)


def error_rate_alert(model: Any, at: datetime, state: str) -> None:
    alert_event(model, at, state, AlertKind.ERROR_RATE)


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
    # Percentiles from the hourly latency histograms: within RELATIVE_ERROR (2 %) of the exact one.
    assert row(body, "latency_p50_24h")["values"] == [
        pytest.approx(0.5, rel=RELATIVE_ERROR),
        pytest.approx(0.5, rel=RELATIVE_ERROR),
        None,
    ]
    assert row(body, "latency_p95_30d")["values"][1] == pytest.approx(0.96, rel=RELATIVE_ERROR)
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


@pytest.fixture
def four_histories() -> list[Any]:
    """steady: available for 40 days; outage: 3 hours unavailable 6 hours ago; young: first seen 2 days ago,
    degraded for the last hour; silent: no history at all."""
    now = timezone.now()
    steady, outage, young, silent = (
        RegisteredModelFactory(name=name) for name in ("steady", "outage", "young", "silent")
    )
    status_change(steady, now - timedelta(days=40), ModelStatus.AVAILABLE)
    status_change(outage, now - timedelta(days=40), ModelStatus.AVAILABLE)
    status_change(outage, now - timedelta(hours=6), ModelStatus.UNAVAILABLE)
    status_change(outage, now - timedelta(hours=3), ModelStatus.AVAILABLE)
    status_change(young, now - timedelta(days=2), ModelStatus.AVAILABLE)
    error_rate_alert(young, now - timedelta(hours=1), "opened")  # degraded: it answers, badly
    return [steady, outage, young, silent]


def test_availability_rows_give_each_windows_available_fraction(
    api_client_for: Client, four_histories: list[Any]
) -> None:
    body = api_client_for("viewer").get("/models/compare", {"models": "steady,outage,young,silent"}).json()

    keys = [item["key"] for item in body["rows"]]
    assert keys[keys.index("spend_30d") + 1 : keys.index("runtime")] == [
        "availability_24h",
        "availability_7d",
        "availability_30d",
    ]
    day, week, month = (row(body, f"availability_{window}") for window in ("24h", "7d", "30d"))
    assert (day["kind"], day["better"], day["label"]) == ("availability", "higher", "last 24 hours")
    steady, outage, young, silent = day["values"]
    assert steady == {"available_fraction": 1.0, "known_fraction": 1.0}
    assert outage["available_fraction"] == pytest.approx(21 / 24)
    assert young == {"available_fraction": 1.0, "known_fraction": 1.0}
    assert silent is None  # unknown, never 0 % or 100 %
    assert week["values"][1]["available_fraction"] == pytest.approx(1 - 3 / (7 * 24))
    assert month["values"][1]["available_fraction"] == pytest.approx(1 - 3 / (30 * 24))
    # Young is judged on the two days it existed, and says how much of the window that is.
    assert week["values"][2]["available_fraction"] == 1.0
    assert week["values"][2]["known_fraction"] == pytest.approx(2 / 7, abs=1e-6)
    assert month["values"][2]["known_fraction"] == pytest.approx(2 / 30, abs=1e-6)


def test_the_highest_availability_is_marked_ties_alike_unknown_never(
    api_client_for: Client, four_histories: list[Any]
) -> None:
    body = api_client_for("viewer").get("/models/compare", {"models": "steady,outage,young,silent"}).json()

    assert row(body, "availability_24h")["best"] == [True, False, True, False]
    assert row(body, "availability_30d")["best"] == [True, False, True, False]

    body = api_client_for("viewer").get("/models/compare", {"models": "outage,silent"}).json()

    assert row(body, "availability_7d")["best"] == [False, False]  # one known value: nothing to compare


def test_a_window_partly_known_counts_only_its_known_part(api_client_for: Client) -> None:
    now = timezone.now()
    new, old = RegisteredModelFactory(name="new"), RegisteredModelFactory(name="old")
    status_change(new, now - timedelta(hours=12), ModelStatus.AVAILABLE)
    status_change(new, now - timedelta(hours=6), ModelStatus.UNAVAILABLE)
    status_change(old, now - timedelta(days=3), ModelStatus.DEPRECATED)

    body = api_client_for("viewer").get("/models/compare", {"models": "new,old"}).json()

    values = row(body, "availability_24h")["values"]
    # The request's "now" is a moment after the test's: 1e-4 of 12 hours is 4 s of slack for a slow machine.
    assert values[0]["available_fraction"] == pytest.approx(0.5, abs=1e-4)
    assert values[0]["known_fraction"] == pytest.approx(0.5, abs=1e-4)
    assert values[1] == {"available_fraction": 0.0, "known_fraction": 1.0}  # deprecated is not available
    assert row(body, "availability_24h")["best"] == [True, False]


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


def _busy_models(count: int) -> list[Any]:
    """Models with capabilities, usage every third day, an open alert and a status change every day."""
    models = [RegisteredModelFactory() for _ in range(count)]
    now = timezone.now()
    for model in models:
        ModelCapabilityFactory(model=model, capability="code")
        ModelCapabilityFactory(model=model, capability="text")
        for day in range(0, 30, 3):
            ModelUsageFactory(model=model, timestamp=now - timedelta(days=day, minutes=5))
        Alert.objects.create(kind=AlertKind.LATENCY, model=model, message="slow")
        for day in range(40):
            state = ModelStatus.AVAILABLE if day % 2 else ModelStatus.UNAVAILABLE
            status_change(model, now - timedelta(days=day, hours=1), state)
    return models


def _compare_queries(client: APIClient, models: list[Any]) -> int:
    model_refs = ",".join(model.name for model in models)
    client.get("/models/compare", {"models": model_refs})  # the token's user, once

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/models/compare", {"models": model_refs})

    assert response.status_code == 200
    # The models, runtimes, capabilities, alerts, usage totals with their latency histograms (two a
    # window: rollups, edges), availability (the state before the windows, then their events) and the
    # sparklines' days (rollups, edges), plus the user's roles.
    assert len(queries) <= 14, [query["sql"][:120] for query in queries.captured_queries]
    return len(queries)


def test_compare_runs_a_fixed_number_of_queries_whatever_the_usage(api_client_for: Client) -> None:
    client = api_client_for("viewer")

    # No query per model, per row or per status event: six busy models cost what two do.
    assert _compare_queries(client, _busy_models(6)) == _compare_queries(client, _busy_models(2))


def test_a_deprecated_model_compares_too(api_client_for: Client, three: list[Any]) -> None:
    three[2].status = ModelStatus.DEPRECATED
    three[2].save()

    body = api_client_for("viewer").get("/models/compare", {"models": "gpt-4o-mini,claude-3-5-haiku"}).json()

    assert row(body, "status")["values"] == ["available", "deprecated"]
