"""Usage and performance lists (bounded counts, filters, CSV) and alert acknowledgement."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import AbstractUser
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from registry.console import history
from registry.models import Alert, AlertKind
from tests.factories import ModelUsageFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

USAGE = "admin:registry_modelusage_changelist"


def test_the_usage_list_never_counts_the_whole_table(staff: dict[str, Client], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "COUNT_CAP", 5)
    ModelUsageFactory.create_batch(8, model=RegisteredModelFactory())

    with CaptureQueriesContext(connection) as queries:
        page = staff["viewer"].get(reverse(USAGE)).content.decode()

    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "model_usage" in q["sql"]]
    assert counts
    assert all("LIMIT" in sql.upper() for sql in counts), counts
    assert "more than 5 model usage records" in page


def test_the_usage_list_filters_by_model_name_date_provider_and_errors(staff: dict[str, Client]) -> None:
    gpt = RegisteredModelFactory(name="gpt-4o", provider="openai")
    llama = RegisteredModelFactory(name="llama3.2:latest", provider="ollama")
    now = timezone.now()
    ModelUsageFactory(model=gpt, request_count=11, error_count=2, timestamp=now)
    ModelUsageFactory(model=llama, request_count=22, timestamp=now)
    ModelUsageFactory(model=llama, request_count=33, timestamp=now - timedelta(days=40))
    url = reverse(USAGE)

    def shown(query: str) -> set[str]:
        page = staff["viewer"].get(url + query).content.decode()
        return {n for n in ("11", "22", "33") if f'<td class="field-requests">{n}</td>' in page}

    assert shown("") == {"11", "22", "33"}
    assert shown("?q=llama") == {"22", "33"}
    assert shown("?provider=openai") == {"11"}
    assert shown("?errors=yes") == {"11"}
    assert shown(f"?timestamp__gte={(now - timedelta(days=7)).date()}") == {"11", "22"}
    assert shown(f"?model__id__exact={llama.pk}") == {"22", "33"}


def test_the_usage_list_exports_its_filtered_rows(staff: dict[str, Client]) -> None:
    gpt = RegisteredModelFactory(name="gpt-4o", provider="openai")
    ModelUsageFactory(model=gpt, request_count=7, token_count=70)
    ModelUsageFactory(model=RegisteredModelFactory(provider="ollama"))

    response = staff["viewer"].get(reverse("admin:registry_modelusage_export") + "?provider=openai")

    lines = b"".join(response.streaming_content).decode().strip().splitlines()  # type: ignore[attr-defined]
    assert lines[0] == (
        "timestamp,model_name,request_count,token_count,error_count,average_latency,cost,"
        "input_tokens,output_tokens,cost_source"
    )
    assert len(lines) == 2
    assert ",gpt-4o,7,70,0," in lines[1]


def test_the_usage_list_prints_a_record_without_a_cost_as_unknown(staff: dict[str, Client]) -> None:
    model = RegisteredModelFactory(name="unpriced-model")
    ModelUsageFactory(model=model, request_count=916, cost=None)
    ModelUsageFactory(model=RegisteredModelFactory(name="gpt-costed"), cost=Decimal("0.25"))

    page = staff["viewer"].get(reverse(USAGE)).content.decode()

    unpriced = page[page.index("unpriced-model") :].split("</tr>")[0]
    priced = page[page.index("gpt-costed") :].split("</tr>")[0]
    assert ">unknown</td>" in unpriced
    assert ">0.250000</td>" in priced


def test_an_admin_acknowledges_and_resolves_alerts_with_who_and_when(staff: dict[str, Client]) -> None:
    alert = Alert.objects.create(kind=AlertKind.ERROR_RATE, model=RegisteredModelFactory(), message="errors")
    url = reverse("admin:registry_alert_changelist")

    staff["admin"].post(url, {"action": "acknowledge", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.acknowledged_by == "admin"
    assert alert.acknowledged_at is not None
    assert alert.resolved_at is None

    staff["admin"].post(url, {"action": "resolve", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.resolved_by == "admin"
    assert alert.resolved_at is not None
    assert "admin · " in staff["admin"].get(url + "?state=resolved").content.decode()


def test_acknowledging_and_resolving_an_alert_is_audited_with_the_actor(
    staff: dict[str, Client], role_users: dict[str, AbstractUser]
) -> None:
    alert = Alert.objects.create(kind=AlertKind.ERROR_RATE, model=RegisteredModelFactory(), message="errors")
    url = reverse("admin:registry_alert_changelist")

    staff["admin"].post(url, {"action": "acknowledge", "_selected_action": [alert.pk]})
    staff["admin"].post(url, {"action": "resolve", "_selected_action": [alert.pk]})

    entries = list(LogEntry.objects.get_for_object(alert).order_by("id"))
    assert [sorted(entry.changes) for entry in entries] == [
        ["acknowledged_at", "acknowledged_by"],
        ["resolved_at", "resolved_by"],
    ]
    assert [
        entry.changes[name][1] for entry, name in zip(entries, ["acknowledged_by", "resolved_by"], strict=True)
    ] == [
        "admin",
        "admin",
    ]
    assert {entry.actor for entry in entries} == {role_users["admin"]}
    assert {entry.action for entry in entries} == {LogEntry.Action.UPDATE}


def test_a_viewer_cannot_acknowledge_alerts(staff: dict[str, Client]) -> None:
    alert = Alert.objects.create(kind=AlertKind.ERROR_RATE, model=RegisteredModelFactory(), message="errors")

    staff["viewer"].post(
        reverse("admin:registry_alert_changelist"), {"action": "acknowledge", "_selected_action": [alert.pk]}
    )

    alert.refresh_from_db()
    assert alert.acknowledged_at is None
