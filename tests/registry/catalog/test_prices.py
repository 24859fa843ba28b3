"""Dated prices and computed cost: the service, the API, the console and discovery."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from registry.catalog.prices import price_set, prices_follow_all
from registry.catalog.services import model_update
from registry.models import Alert, AlertKind, ModelPrice, ModelUsage, RegisteredModel, SetBy
from registry.operations.schedules import PRICES_SCHEDULE_NAME
from registry.tasks import prices_follow, usage_recost_task
from registry.telemetry import costing
from registry.telemetry.selectors import usage_summary
from registry.telemetry.services import UsageRejected, usage_record_batch, usage_record_idempotent
from tests.admin_forms import rendered_form
from tests.factories import RegisteredModelFactory

pytestmark = pytest.mark.django_db

ClientFor = Callable[[str], APIClient]
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def model() -> RegisteredModel:
    model: RegisteredModel = RegisteredModelFactory(
        name="gpt-4o", provider="openai", input_cost_per_mtok=None, output_cost_per_mtok=None
    )
    return model


def price(model: RegisteredModel, input_: str, output: str, at: datetime) -> ModelPrice:
    row, _ = price_set(model=model, input_per_mtok=Decimal(input_), output_per_mtok=Decimal(output), effective_from=at)
    return row


# --- Service -----------------------------------------------------------------------------------------


def test_the_models_price_fields_follow_the_price_in_force(model: RegisteredModel) -> None:
    price(model, "2.5", "10", T0)
    price(model, "5", "20", timezone.now() + timedelta(days=1))  # announced, not yet in force
    model.refresh_from_db()
    assert (model.input_cost_per_mtok, model.output_cost_per_mtok) == (Decimal("2.5"), Decimal("10"))
    assert prices_follow_all(now=timezone.now() + timedelta(days=2)) == 1
    model.refresh_from_db()
    assert (model.input_cost_per_mtok, model.output_cost_per_mtok) == (Decimal("5"), Decimal("20"))


def test_usage_is_costed_at_the_price_in_force_at_its_timestamp(model: RegisteredModel) -> None:
    price(model, "2", "10", T0)
    price(model, "4", "20", T0 + timedelta(days=10))
    usage_record_batch(
        model=model,
        records=[
            {"timestamp": T0 + timedelta(days=1), "input_tokens": 1_000_000, "output_tokens": 500_000},
            {"timestamp": T0 + timedelta(days=11), "input_tokens": 1_000_000, "output_tokens": 500_000},
        ],
    )
    rows = list(ModelUsage.objects.order_by("timestamp").values_list("token_count", "cost", "cost_source"))
    assert rows == [(1_500_000, Decimal("7"), "computed"), (1_500_000, Decimal("14"), "computed")]


def test_a_price_change_never_rewrites_past_costs(model: RegisteredModel) -> None:
    price(model, "2", "10", T0)
    usage_record_batch(model=model, records=[{"timestamp": T0 + timedelta(days=1), "input_tokens": 1000}])
    price(model, "200", "1000", T0)  # a correction of the same moment
    price(model, "300", "300", T0 - timedelta(days=1))  # and an earlier one
    assert ModelUsage.objects.get().cost == Decimal("0.002")


def test_a_bare_token_count_is_estimated_at_the_mean_price(model: RegisteredModel) -> None:
    price(model, "2", "10", T0)
    usage_record_batch(model=model, records=[{"timestamp": T0, "token_count": 1_000_000}])
    assert ModelUsage.objects.values_list("cost", "cost_source").get() == (Decimal("6"), "estimated")


def test_a_reported_cost_is_kept_and_marked_reported(model: RegisteredModel) -> None:
    price(model, "2", "10", T0)
    usage_record_batch(model=model, records=[{"timestamp": T0, "input_tokens": 10, "cost": Decimal("1.5")}])
    assert ModelUsage.objects.values_list("cost", "cost_source", "token_count").get() == (
        Decimal("1.5"),
        "reported",
        10,
    )


def test_usage_without_a_known_price_is_counted_and_alerts_once(model: RegisteredModel) -> None:
    usage_record_batch(model=model, records=[{"token_count": 10}, {"token_count": 20}])
    usage_record_batch(model=model, records=[{"token_count": 30}])
    assert list(ModelUsage.objects.values_list("cost", "cost_source")) == [(None, None)] * 3
    alert = Alert.objects.get(kind=AlertKind.UNPRICED_USAGE)
    assert (alert.model_id, alert.details["records"], alert.resolved_at) == (model.pk, 3, None)
    price(model, "1", "1", T0)
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_usage_before_the_first_price_is_not_costed(model: RegisteredModel) -> None:
    price(model, "2", "10", T0)
    usage_record_batch(model=model, records=[{"timestamp": T0 - timedelta(seconds=1), "token_count": 5}])
    assert ModelUsage.objects.get().cost is None
    assert Alert.objects.open().filter(kind=AlertKind.UNPRICED_USAGE).count() == 1


def test_a_computed_cost_too_large_to_store_rejects_the_batch(model: RegisteredModel) -> None:
    price(model, "999999", "999999", T0)
    with pytest.raises(UsageRejected):
        usage_record_batch(model=model, records=[{"timestamp": T0, "input_tokens": 2_000_000_000}])
    assert not ModelUsage.objects.exists()


def test_idempotent_ingestion_costs_records_too(model: RegisteredModel) -> None:
    price(model, "2", "10", T0)
    records = [{"timestamp": T0, "input_tokens": 1000, "output_tokens": 100, "request_id": "r1"}]
    assert usage_record_idempotent(model=model, records=records) == 1
    assert ModelUsage.objects.values_list("cost", "cost_source").get() == (Decimal("0.003"), "computed")


def test_usage_statistics_total_costs_per_bucket(model: RegisteredModel) -> None:
    price(model, "2", "10", T0)
    usage_record_batch(
        model=model,
        records=[
            {"timestamp": T0 + timedelta(minutes=5), "input_tokens": 1_000_000},
            {"timestamp": T0 + timedelta(minutes=6), "cost": Decimal("1")},
            {"timestamp": T0 + timedelta(hours=1, minutes=5), "output_tokens": 1_000_000},
            {"timestamp": T0 + timedelta(hours=1, minutes=6)},
        ],
    )
    summary = usage_summary(model_id=model.pk, bucket="hour", start=T0, end=T0 + timedelta(hours=2))
    assert [(b["cost"], b["uncosted_requests"]) for b in summary["buckets"]] == [(Decimal(3), 0), (Decimal(10), 1)]
    assert (summary["totals"]["cost"], summary["totals"]["uncosted_requests"]) == (Decimal(13), 1)


def test_registering_or_changing_a_models_price_dates_it(model: RegisteredModel) -> None:
    model_update(model=model, fields={"input_cost_per_mtok": Decimal("1"), "output_cost_per_mtok": Decimal("2")})
    row = ModelPrice.objects.get(model=model)
    assert (row.input_per_mtok, row.output_per_mtok, row.set_by) == (Decimal("1"), Decimal("2"), SetBy.OPERATOR)


# --- API ---------------------------------------------------------------------------------------------


def test_post_and_get_a_models_prices(api_client_for: ClientFor, model: RegisteredModel) -> None:
    editor = api_client_for("editor")
    body = {"input_per_mtok": 2.5, "output_per_mtok": 10, "effective_from": "2026-11-01T00:00:00Z"}
    response = editor.post("/models/gpt-4o/prices", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["in_force"] is True
    later = {"input_per_mtok": 3, "output_per_mtok": 12, "effective_from": "2099-01-01T00:00:00Z"}
    assert editor.post("/models/gpt-4o/prices", later, format="json").status_code == 201
    history = api_client_for("viewer").get("/models/gpt-4o/prices").json()
    assert [(p["input_per_mtok"], p["in_force"], p["set_by"]) for p in history] == [
        (3.0, False, "operator"),
        (2.5, True, "operator"),
    ]
    detail = api_client_for("viewer").get("/models/gpt-4o").json()
    assert (detail["input_cost_per_mtok"], detail["output_cost_per_mtok"]) == (2.5, 10.0)
    assert "input_cost_per_mtok" in RegisteredModel.objects.get().operator_fields


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input_per_mtok": -1, "output_per_mtok": 1}, "input_per_mtok"),
        ({"input_per_mtok": 1}, "output_per_mtok"),
        ({"input_per_mtok": 1, "output_per_mtok": 1, "effective_from": "yesterday"}, "effective_from"),
        ({"input_per_mtok": 1, "output_per_mtok": 1, "currency": "EUR"}, "currency"),
    ],
)
def test_a_bad_price_is_a_400_naming_the_field(
    api_client_for: ClientFor, model: RegisteredModel, body: dict[str, Any], field: str
) -> None:
    response = api_client_for("editor").post("/models/gpt-4o/prices", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_only_editors_set_prices(api_client_for: ClientFor, model: RegisteredModel) -> None:
    body = {"input_per_mtok": 1, "output_per_mtok": 1}
    assert api_client_for("service").post("/models/gpt-4o/prices", body, format="json").status_code == 403
    assert api_client_for("viewer").get("/models/nope/prices").status_code == 404


def test_usage_with_input_and_output_tokens_through_the_api(api_client_for: ClientFor, model: RegisteredModel) -> None:
    price(model, "2", "10", T0)
    records = [{"input_tokens": 1000, "output_tokens": 200}, {"input_tokens": 5, "token_count": 4}]
    response = api_client_for("service").post("/models/gpt-4o/usage", records, format="json")
    assert response.status_code == 400
    assert "token_count" in str(response.json())
    response = api_client_for("service").post("/models/gpt-4o/usage", records[:1], format="json")
    assert response.status_code == 201
    assert ModelUsage.objects.values_list("token_count", "cost", "cost_source").get() == (
        1200,
        Decimal("0.004"),
        "computed",
    )
    stats = api_client_for("viewer").get("/models/gpt-4o/usage").json()
    assert (stats["totals"]["cost"], stats["totals"]["uncosted_requests"]) == (0.004, 0)


def test_a_computed_cost_too_large_is_a_400(api_client_for: ClientFor, model: RegisteredModel) -> None:
    price(model, "999999", "999999", T0)
    response = api_client_for("service").post("/models/gpt-4o/usage", {"input_tokens": 2_000_000_000}, format="json")
    assert response.status_code == 400
    assert "cost" in response.json()
    batch = [{"input_tokens": 1}, {"input_tokens": 2_000_000_000}]
    response = api_client_for("service").post("/models/gpt-4o/usage", batch, format="json")
    assert (response.status_code, list(response.json()), list(response.json()["1"])) == (400, ["1"], ["cost"])
    assert not ModelUsage.objects.exists()


# --- Console -----------------------------------------------------------------------------------------


def test_an_editor_adds_a_price_in_the_model_page(staff: dict[str, Client], model: RegisteredModel) -> None:
    url = reverse("admin:registry_registeredmodel_change", args=[model.pk])
    form = rendered_form(staff["editor"], url, "registeredmodel_form")
    assert "prices-__prefix__-input_per_mtok" in form.names  # the row the page's "add another" clones
    data = dict(form.data)
    data.update(
        {
            "prices-TOTAL_FORMS": "1",
            "prices-0-input_per_mtok": "1.5",
            "prices-0-output_per_mtok": "6",
            "prices-0-effective_from_0": "2026-11-01",
            "prices-0-effective_from_1": "00:00:00",
            "prices-0-model": str(model.pk),
        }
    )
    response = staff["editor"].post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    model.refresh_from_db()
    assert (model.input_cost_per_mtok, model.output_cost_per_mtok) == (Decimal("1.5"), Decimal("6"))
    assert ModelPrice.objects.get().set_by == SetBy.OPERATOR
    assert "per million tokens, USD" in staff["viewer"].get(url).content.decode()


# --- Periodic task ---------------------------------------------------------------------------------


def test_the_price_task_makes_a_future_price_take_over_and_its_schedule_is_upserted(model: RegisteredModel) -> None:
    price(model, "1", "1", timezone.now() - timedelta(days=1))
    future = price(model, "2", "2", timezone.now() + timedelta(days=1))
    ModelPrice.objects.filter(pk=future.pk).update(effective_from=timezone.now() - timedelta(seconds=1))
    assert prices_follow.apply().get() == 1
    model.refresh_from_db()
    assert model.input_cost_per_mtok == Decimal("2")
    assert prices_follow.apply().get() == 0  # nothing more to do

    call_command("register_schedules", stdout=io.StringIO())
    PeriodicTask.objects.filter(name=PRICES_SCHEDULE_NAME).update(enabled=False)
    call_command("register_schedules", stdout=io.StringIO())
    assert PeriodicTask.objects.get(name=PRICES_SCHEDULE_NAME).enabled is False


# --- Re-costing (issue 23, item 2) ---------------------------------------------------------------------


def recost_entries() -> list[dict[str, Any]]:
    return [entry.changes for entry in LogEntry.objects.filter(changes__icontains="re-costed").order_by("pk")]


def test_a_back_dated_price_costs_the_uncosted_records_it_covers_up_to_the_next_price(model: RegisteredModel) -> None:
    price(model, "4", "20", T0 + timedelta(days=10))  # stated from the 11th: earlier usage has no price
    usage_record_batch(
        model=model,
        records=[
            {"timestamp": T0 - timedelta(days=1), "input_tokens": 1_000_000},  # before the back-dated price
            {"timestamp": T0 + timedelta(days=1), "input_tokens": 1_000_000},
            {"timestamp": T0 + timedelta(days=5), "token_count": 1_000_000},
            {"timestamp": T0 + timedelta(days=6), "input_tokens": 7, "cost": Decimal("0.5")},  # the caller's
            {"timestamp": T0 + timedelta(days=12), "input_tokens": 1_000_000},
        ],
    )
    assert Alert.objects.open().filter(kind=AlertKind.UNPRICED_USAGE).exists()

    price(model, "2", "10", T0)

    rows = list(ModelUsage.objects.order_by("timestamp").values_list("cost", "cost_source"))
    assert rows == [
        (None, None),  # before every price: no price covers it
        (Decimal("2"), "computed"),
        (Decimal("6"), "estimated"),
        (Decimal("0.5"), "reported"),  # never changed
        (Decimal("4"), "computed"),  # the next price's period: costed at ingestion, untouched
    ]
    assert not Alert.objects.open().exists()
    assert recost_entries() == [{"usage": ["uncosted", "re-costed 2 records"]}]


def test_a_models_first_price_without_a_date_costs_its_earlier_usage(model: RegisteredModel) -> None:
    usage_record_batch(model=model, records=[{"timestamp": T0, "input_tokens": 1_000_000, "output_tokens": 1_000_000}])
    row, _ = price_set(
        model=model, input_per_mtok=Decimal("1"), output_per_mtok=Decimal("3")
    )  # from now, start unknown
    assert row.start_known is False
    assert ModelUsage.objects.values_list("cost", "cost_source").get() == (Decimal("4"), "computed")
    # And usage reported later for a moment before it is costed too: no alert reopens.
    usage_record_batch(model=model, records=[{"timestamp": T0 - timedelta(days=3), "token_count": 1_000_000}])
    assert ModelUsage.objects.order_by("timestamp").values_list("cost", flat=True)[0] == Decimal("2")
    assert not Alert.objects.open().exists()


def test_a_price_typed_on_the_model_costs_its_earlier_usage(model: RegisteredModel) -> None:
    usage_record_batch(model=model, records=[{"timestamp": T0, "token_count": 1_000_000}])
    model_update(model=model, fields={"input_cost_per_mtok": Decimal("1"), "output_cost_per_mtok": Decimal("1")})
    assert ModelUsage.objects.values_list("cost", flat=True).get() == Decimal("1")
    assert ModelPrice.objects.get().start_known is False


def test_a_large_backlog_is_costed_in_batches_and_finished_by_the_task(
    model: RegisteredModel, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    monkeypatch.setattr(costing, "RECOST_BATCH", 3)
    monkeypatch.setattr(costing, "RECOST_INLINE_LIMIT", 6)
    usage_record_batch(
        model=model, records=[{"timestamp": T0 + timedelta(minutes=i), "token_count": 1000} for i in range(10)]
    )
    with django_capture_on_commit_callbacks() as queued:
        row = price(model, "1", "1", T0)
    # The request stopped at its limit, in whole batches, and queued the rest (sent after commit).
    assert ModelUsage.objects.filter(cost__isnull=True).count() == 4
    assert [callback.__qualname__ for callback in queued].count("usage_recost_for.<locals>.send") == 1
    # Records still uncosted: the alert says so until the task is done.
    assert Alert.objects.open().filter(kind=AlertKind.UNPRICED_USAGE).exists()

    assert usage_recost_task(row.pk) == 4  # what the worker runs
    assert not ModelUsage.objects.filter(cost__isnull=True).exists()
    assert not Alert.objects.open().exists()
    assert recost_entries() == [
        {"usage": ["uncosted", "re-costed 6 records"]},
        {"usage": ["uncosted", "re-costed 4 records"]},
    ]
    assert usage_recost_task(row.pk) == 0  # twice: nothing left to do
    price_id = row.pk
    row.delete()
    assert usage_recost_task(price_id) == 0  # a price removed since


def test_a_back_dated_price_through_the_api_costs_the_records_it_covers(
    api_client_for: ClientFor, model: RegisteredModel
) -> None:
    usage_record_batch(model=model, records=[{"timestamp": T0 + timedelta(hours=1), "input_tokens": 1_000_000}])
    response = api_client_for("editor").post(
        f"/models/{model.pk}/prices",
        {"input_per_mtok": "3", "output_per_mtok": "9", "effective_from": T0.isoformat()},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert ModelUsage.objects.values_list("cost", flat=True).get() == Decimal("3")
    entry = LogEntry.objects.filter(changes__icontains="re-costed").get()
    assert entry.actor is not None
    assert entry.actor.username == "editor"


def test_a_price_row_and_the_price_fields_set_differently_in_one_save_are_refused(
    staff: dict[str, Client], model: RegisteredModel
) -> None:
    """Issue 23, item 6c: both used to be stored silently, and the model showed whichever was dated later."""
    url = reverse("admin:registry_registeredmodel_change", args=[model.pk])
    data = dict(rendered_form(staff["editor"], url, "registeredmodel_form").data)
    data.update(
        {
            "input_cost_per_mtok": "2",
            "output_cost_per_mtok": "8",
            "prices-TOTAL_FORMS": "1",
            "prices-0-input_per_mtok": "1.5",
            "prices-0-output_per_mtok": "6",
            "prices-0-effective_from_0": "2026-11-01",
            "prices-0-effective_from_1": "00:00:00",
            "prices-0-model": str(model.pk),
        }
    )
    response = staff["editor"].post(url, data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "The price fields (input 2 / output 8) and a price row (input 1.5 / output 6 from 2026-11-01 00:00)" in page
    assert not ModelPrice.objects.exists()
    model.refresh_from_db()
    assert model.input_cost_per_mtok is None

    data["prices-0-input_per_mtok"], data["prices-0-output_per_mtok"] = "2", "8"  # the same price: one intent
    assert staff["editor"].post(url, data).status_code == 302
    model.refresh_from_db()
    assert (model.input_cost_per_mtok, model.output_cost_per_mtok) == (Decimal("2"), Decimal("8"))


def test_a_models_price_rows_are_labelled_with_its_name(staff: dict[str, Client], model: RegisteredModel) -> None:
    """Issue 23, item 6d: the price rows of a model's page read "model 51: from ...", not its name."""
    price(model, "2", "10", T0)
    page = staff["viewer"].get(reverse("admin:registry_registeredmodel_change", args=[model.pk])).content.decode()
    assert f"model {model.pk}" not in page
    assert "gpt-4o: from 2026-11-01 00:00" in page
