"""``GET /models/{ref}/availability``: intervals and fraction over a period, clear 400s, roles, flat queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from registry.models import ModelStatus, ModelStatusEvent, StatusEventOrigin
from registry.telemetry.availability import status_change_record
from tests.factories import ProviderSourceFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

ClientFor = Callable[[str], APIClient]
NAME = "hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M"
PATH = "/models/hf.co%2Fbartowski%2FLlama-3.2-3B-Instruct-GGUF:Q4_K_M/availability"


def iso(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def history() -> dict[str, Any]:
    """Available for two days, then three hours missing (a discovery run saw it), then back."""
    now = timezone.now().replace(microsecond=0)
    model = RegisteredModelFactory(name=NAME)
    source = ProviderSourceFactory(name="gpu-1")
    up = now - timedelta(days=2)
    down, back = now - timedelta(hours=6), now - timedelta(hours=3)
    status_change_record(
        model_id=model.pk, status=ModelStatus.AVAILABLE, origin=StatusEventOrigin.DISCOVERY, cause="listed", at=up
    )
    status_change_record(
        model_id=model.pk,
        status=ModelStatus.UNAVAILABLE,
        origin=StatusEventOrigin.DISCOVERY,
        cause="no longer listed by source gpu-1 nor any other (run #4)",
        at=down,
        source_id=source.pk,
        run_id=4,
    )
    status_change_record(
        model_id=model.pk, status=ModelStatus.AVAILABLE, origin=StatusEventOrigin.DISCOVERY, cause="back", at=back
    )
    return {"model": model, "now": now, "down": down, "back": back}


def test_the_history_of_a_period_has_its_intervals_fraction_and_events(
    api_client_for: ClientFor, history: dict[str, Any]
) -> None:
    start, end = history["now"] - timedelta(days=1), history["now"]

    response = api_client_for("viewer").get(PATH, {"from": iso(start), "to": iso(end)})

    assert response.status_code == 200
    body = response.json()
    assert (body["model"], body["from"], body["to"]) == (NAME, iso(start), iso(end))
    assert [(i["start"], i["end"], i["state"]) for i in body["intervals"]] == [
        (iso(start), iso(history["down"]), "available"),
        (iso(history["down"]), iso(history["back"]), "unavailable"),
        (iso(history["back"]), iso(end), "available"),
    ]
    assert body["intervals"][1]["cause"] == "no longer listed by source gpu-1 nor any other (run #4)"
    assert body["available_fraction"] == pytest.approx(21 / 24)
    assert body["known_fraction"] == 1.0
    assert body["seconds"]["unavailable"] == 3 * 3600
    assert body["runtime"] == []
    assert body["events_total"] == 2
    assert body["events"][0] == {
        "at": iso(history["down"]),
        "kind": "status",
        "state": "unavailable",
        "alert_kind": "",
        "origin": "discovery",
        "cause": "no longer listed by source gpu-1 nor any other (run #4)",
        "actor": "",
        "source": "gpu-1",
        "run_id": 4,
        "alert_id": None,
    }


def test_the_default_period_is_the_last_seven_days(api_client_for: ClientFor, history: dict[str, Any]) -> None:
    body = api_client_for("viewer").get(f"/models/{history['model'].pk}/availability").json()

    assert [i["state"] for i in body["intervals"]] == ["unknown", "available", "unavailable", "available"]
    assert body["available_fraction"] == pytest.approx((48 - 3) / 48, abs=1e-3)


def test_a_to_in_the_future_reads_as_now(api_client_for: ClientFor, history: dict[str, Any]) -> None:
    later = history["now"] + timedelta(days=30)

    body = api_client_for("viewer").get(PATH, {"to": iso(later)}).json()

    assert body["to"] <= iso(timezone.now())
    assert body["intervals"][-1]["state"] == "available"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"from": "2026-11-20T00:00:00Z", "to": "2026-11-19T00:00:00Z"}, "from"),
        ({"from": "2026-11-20T00:00:00Z", "to": "2026-11-20T00:00:00Z"}, "from"),
        ({"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"from": ""}, "from"),
        ({"to": "0001-01-01T00:00:00Z"}, "to"),
    ],
)
def test_a_bad_period_is_a_400_naming_the_parameter(
    api_client_for: ClientFor, history: dict[str, Any], query: dict[str, str], field: str
) -> None:
    response = api_client_for("viewer").get(PATH, query)

    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_an_unknown_model_is_a_404(api_client_for: ClientFor) -> None:
    assert api_client_for("viewer").get("/models/nope/availability").status_code == 404


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("viewer", 200), ("service", 200), ("admin", 200)])
def test_any_role_may_read_it_and_no_one_unauthenticated(
    api_client_for: ClientFor, history: dict[str, Any], role: str | None, status: int
) -> None:
    client = api_client_for(role) if role else APIClient()
    assert client.get(PATH).status_code == status


def test_it_is_read_only(api_client_for: ClientFor, history: dict[str, Any]) -> None:
    assert api_client_for("admin").post(PATH, {}, format="json").status_code == 405
    assert ModelStatusEvent.objects.count() == 3


def test_the_queries_do_not_grow_with_the_events(
    api_client_for: ClientFor, history: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    model, now = history["model"], history["now"]
    for hour in range(200):
        status_change_record(
            model_id=model.pk,
            status=ModelStatus.UNAVAILABLE if hour % 2 else ModelStatus.AVAILABLE,
            origin=StatusEventOrigin.DISCOVERY,
            cause="flapping",
            at=now - timedelta(hours=hour, minutes=30),
        )
    client = api_client_for("viewer")

    # Authentication (the user), the model's key, and the selector's four.
    with django_assert_max_num_queries(7):
        body = client.get(PATH).json()

    assert body["events_total"] > 150
