"""Availability history: intervals derived from status events, the available fraction, and the writers in registry."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.apps import apps
from django.utils import timezone

from registry.access.audit import acting_as
from registry.catalog.services import model_register, model_update, models_set_status
from registry.models import (
    Alert,
    AlertKind,
    ModelStatus,
    ModelStatusEvent,
    RegisteredModel,
    StatusEventKind,
    StatusEventOrigin,
)
from registry.telemetry.alerts import alerts_check, alerts_resolve
from registry.telemetry.availability import (
    AvailabilityShare,
    Interval,
    availability,
    availability_fractions,
    availability_shares,
    status_change_record,
    status_event,
    status_events_record,
)
from tests.factories import ModelUsageFactory, ProviderSourceFactory, RegisteredModelFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def status(model: RegisteredModel, at: datetime, state: str, cause: str = "") -> ModelStatusEvent:
    return status_change_record(
        model_id=model.pk, status=state, origin=StatusEventOrigin.DISCOVERY, cause=cause or state, at=at
    )


def alert_event(model: RegisteredModel, at: datetime, state: str, kind: str = AlertKind.ERROR_RATE) -> None:
    status_events_record(
        [
            status_event(
                model_id=model.pk,
                kind=StatusEventKind.ALERT,
                state=state,
                origin=StatusEventOrigin.ALERT_CHECK,
                cause=f"{kind} {state}",
                at=at,
                alert_kind=kind,
            )
        ]
    )


def runtime_event(model: RegisteredModel, at: datetime, host: Any, loaded: bool) -> None:
    status_events_record(
        [
            status_event(
                model_id=model.pk,
                kind=StatusEventKind.RUNTIME,
                state="loaded" if loaded else "unloaded",
                origin=StatusEventOrigin.RUNTIME,
                cause=f"{host.name} {'loaded' if loaded else 'unloaded'}",
                at=at,
                source_id=host.pk,
            )
        ]
    )


def shape(intervals: list[Interval]) -> list[tuple[datetime, datetime, str]]:
    return [(i.start, i.end, i.state) for i in intervals]


# --- The selector ----------------------------------------------------------------------------------


def test_intervals_follow_the_status_events_with_the_state_before_the_window_carried_in() -> None:
    model = RegisteredModelFactory()
    status(model, T0, ModelStatus.AVAILABLE, "first listed by source gpu (run #1)")
    status(model, T0 + 2 * DAY, ModelStatus.UNAVAILABLE, "no longer listed by source gpu nor any other (run #9)")
    status(model, T0 + 3 * DAY, ModelStatus.AVAILABLE, "listed again by source gpu (run #12)")
    status(model, T0 + 5 * DAY, ModelStatus.DEPRECATED, "set deprecated by an operator (console)")

    found = availability(model.pk, T0 + DAY, T0 + 6 * DAY)

    assert shape(found.intervals) == [
        (T0 + DAY, T0 + 2 * DAY, "available"),
        (T0 + 2 * DAY, T0 + 3 * DAY, "unavailable"),
        (T0 + 3 * DAY, T0 + 5 * DAY, "available"),
        (T0 + 5 * DAY, T0 + 6 * DAY, "deprecated"),
    ]
    assert [i.cause for i in found.intervals] == [
        "first listed by source gpu (run #1)",
        "no longer listed by source gpu nor any other (run #9)",
        "listed again by source gpu (run #12)",
        "set deprecated by an operator (console)",
    ]
    assert found.available_fraction == pytest.approx(3 / 5)
    assert found.known_fraction == 1.0


def test_time_before_the_first_event_is_unknown_and_not_counted_in_the_fraction() -> None:
    model = RegisteredModelFactory()
    status(model, T0 + 2 * DAY, ModelStatus.AVAILABLE)
    status(model, T0 + 3 * DAY, ModelStatus.UNAVAILABLE)

    found = availability(model.pk, T0, T0 + 4 * DAY)

    assert shape(found.intervals) == [
        (T0, T0 + 2 * DAY, "unknown"),
        (T0 + 2 * DAY, T0 + 3 * DAY, "available"),
        (T0 + 3 * DAY, T0 + 4 * DAY, "unavailable"),
    ]
    assert found.available_fraction == pytest.approx(0.5)  # one day of the two known
    assert found.known_fraction == pytest.approx(0.5)


def test_a_model_without_events_has_one_unknown_interval_and_no_fraction() -> None:
    found = availability(RegisteredModelFactory().pk, T0, T0 + DAY)

    assert shape(found.intervals) == [(T0, T0 + DAY, "unknown")]
    assert found.available_fraction is None
    assert found.runtime == []


def test_an_event_at_the_start_counts_from_it_and_one_at_the_end_is_outside() -> None:
    model = RegisteredModelFactory()
    status(model, T0 - DAY, ModelStatus.AVAILABLE)
    status(model, T0, ModelStatus.UNAVAILABLE)
    status(model, T0 + DAY, ModelStatus.AVAILABLE)

    found = availability(model.pk, T0, T0 + DAY)

    assert shape(found.intervals) == [(T0, T0 + DAY, "unavailable")]
    assert found.available_fraction == 0.0
    assert [e.state for e in found.events] == ["unavailable"]


def test_an_unchanged_status_recorded_twice_is_one_interval() -> None:
    model = RegisteredModelFactory()
    status(model, T0, ModelStatus.AVAILABLE, "first")
    status(model, T0 + DAY, ModelStatus.AVAILABLE, "again")

    assert shape(availability(model.pk, T0, T0 + 2 * DAY).intervals) == [(T0, T0 + 2 * DAY, "available")]


def test_an_open_error_rate_alert_makes_an_available_model_degraded_and_still_available() -> None:
    model = RegisteredModelFactory()
    status(model, T0, ModelStatus.AVAILABLE)
    alert_event(model, T0 + DAY, "opened")
    alert_event(model, T0 + DAY, "opened", kind=AlertKind.UNAVAILABLE)  # says nothing new of the state
    alert_event(model, T0 + 2 * DAY, "resolved")

    found = availability(model.pk, T0, T0 + 3 * DAY)

    assert shape(found.intervals) == [
        (T0, T0 + DAY, "available"),
        (T0 + DAY, T0 + 2 * DAY, "degraded"),
        (T0 + 2 * DAY, T0 + 3 * DAY, "available"),
    ]
    assert found.intervals[1].cause == "error_rate opened"
    assert found.available_fraction == 1.0
    assert found.seconds["degraded"] == DAY.total_seconds()


def test_an_alert_opened_before_the_window_is_carried_in() -> None:
    model = RegisteredModelFactory()
    status(model, T0 - 2 * DAY, ModelStatus.AVAILABLE)
    alert_event(model, T0 - DAY, "opened")

    assert shape(availability(model.pk, T0, T0 + DAY).intervals) == [(T0, T0 + DAY, "degraded")]


def test_the_runtime_lane_is_loaded_while_any_host_has_the_model_loaded() -> None:
    model, gpu, cpu = RegisteredModelFactory(), ProviderSourceFactory(name="gpu"), ProviderSourceFactory(name="cpu")
    runtime_event(model, T0 - DAY, gpu, loaded=True)  # before the window: carried in
    runtime_event(model, T0 + DAY, cpu, loaded=True)
    runtime_event(model, T0 + 2 * DAY, gpu, loaded=False)  # cpu still has it
    runtime_event(model, T0 + 3 * DAY, cpu, loaded=False)

    found = availability(model.pk, T0, T0 + 4 * DAY)

    assert shape(found.runtime) == [(T0, T0 + 3 * DAY, "loaded"), (T0 + 3 * DAY, T0 + 4 * DAY, "unloaded")]
    assert shape(found.intervals) == [(T0, T0 + 4 * DAY, "unknown")]  # loading says nothing of the status


def test_a_start_not_before_the_end_is_refused() -> None:
    with pytest.raises(ValueError, match="before"):
        availability(RegisteredModelFactory().pk, T0, T0)


def test_the_selector_reads_in_a_fixed_number_of_queries(django_assert_num_queries: Any) -> None:
    model, host = RegisteredModelFactory(), ProviderSourceFactory()
    for day in range(30):
        status(model, T0 + day * DAY, ModelStatus.AVAILABLE if day % 2 else ModelStatus.UNAVAILABLE)
        runtime_event(model, T0 + day * DAY + timedelta(hours=1), host, loaded=bool(day % 3))

    with django_assert_num_queries(4):
        found = availability(model.pk, T0 + 5 * DAY, T0 + 25 * DAY)

    assert len(found.intervals) == 20


def test_fractions_of_several_models_for_a_side_by_side_page() -> None:
    up, down, new = RegisteredModelFactory(), RegisteredModelFactory(), RegisteredModelFactory()
    status(up, T0 - DAY, ModelStatus.AVAILABLE)
    status(down, T0 - DAY, ModelStatus.UNAVAILABLE)

    assert availability_fractions([up.pk, down.pk, new.pk], T0, T0 + DAY) == {up.pk: 1.0, down.pk: 0.0, new.pk: None}


def test_shares_over_several_windows_agree_with_each_windows_availability() -> None:
    steady, flappy, late, silent = (RegisteredModelFactory() for _ in range(4))
    host = ProviderSourceFactory()
    status(steady, T0 - 40 * DAY, ModelStatus.AVAILABLE)
    alert_event(steady, T0 + 9 * DAY, "opened")  # degraded counts as available
    alert_event(steady, T0 + 9 * DAY + timedelta(hours=6), "resolved")
    status(flappy, T0 - DAY, ModelStatus.AVAILABLE)
    for day in range(1, 10):
        status(flappy, T0 + day * DAY, ModelStatus.UNAVAILABLE if day % 2 else ModelStatus.AVAILABLE)
        status(flappy, T0 + day * DAY + timedelta(hours=day), ModelStatus.AVAILABLE)
        runtime_event(flappy, T0 + day * DAY + timedelta(hours=2), host, loaded=bool(day % 2))  # not counted
    alert_event(flappy, T0 + 8 * DAY, "opened", kind=AlertKind.UNAVAILABLE)  # not a lane of its own
    status(late, T0 + 9 * DAY + timedelta(hours=12), ModelStatus.AVAILABLE)  # registered mid-window
    status(late, T0 + 9 * DAY + timedelta(hours=18), ModelStatus.DEPRECATED)
    end = T0 + 10 * DAY
    windows = {"24h": (end - DAY, end), "7d": (end - 7 * DAY, end), "30d": (end - 30 * DAY, end)}
    models = [steady, flappy, late, silent]

    shares = availability_shares([model.pk for model in models], windows)

    for model in models:
        for name, (start, stop) in windows.items():
            found = availability(model.pk, start, stop)
            share = shares[model.pk][name]
            assert share.known_fraction == pytest.approx(found.known_fraction), (model.pk, name)
            if found.available_fraction is None:
                assert share.available_fraction is None
            else:
                assert share.available_fraction == pytest.approx(found.available_fraction), (model.pk, name)
    assert shares[late.pk]["24h"] == AvailabilityShare(available_fraction=0.5, known_fraction=0.5)
    assert shares[silent.pk]["30d"] == AvailabilityShare(available_fraction=None, known_fraction=0.0)
    assert shares[steady.pk]["7d"] == AvailabilityShare(available_fraction=1.0, known_fraction=1.0)


def test_shares_read_in_two_queries_whatever_the_models_and_windows(django_assert_num_queries: Any) -> None:
    models = [RegisteredModelFactory() for _ in range(6)]
    for model in models:
        for day in range(30):
            status(model, T0 + day * DAY, ModelStatus.AVAILABLE if day % 2 else ModelStatus.UNAVAILABLE)
            alert_event(model, T0 + day * DAY + timedelta(hours=1), "opened" if day % 3 else "resolved")
    windows = {"a": (T0 + 5 * DAY, T0 + 25 * DAY), "b": (T0 + 20 * DAY, T0 + 25 * DAY)}

    with django_assert_num_queries(2):
        shares = availability_shares([model.pk for model in models], windows)

    assert shares[models[0].pk]["b"].available_fraction == pytest.approx(
        availability(models[0].pk, T0 + 20 * DAY, T0 + 25 * DAY).available_fraction
    )


def test_shares_refuse_a_window_that_ends_before_it_starts() -> None:
    with pytest.raises(ValueError, match="start must be before end"):
        availability_shares([RegisteredModelFactory().pk], {"bad": (T0, T0)})


# --- The writers in registry/ ----------------------------------------------------------------------


def test_an_operators_status_change_is_recorded_with_who_made_it() -> None:
    model = RegisteredModelFactory(status=ModelStatus.AVAILABLE)

    models_set_status(models=[model], status=ModelStatus.DEPRECATED, actor="alice")
    models_set_status(models=[model], status=ModelStatus.DEPRECATED, actor="alice")  # unchanged: no event

    event = ModelStatusEvent.objects.get()
    assert (event.kind, event.state, event.origin, event.actor) == (
        StatusEventKind.STATUS,
        ModelStatus.DEPRECATED,
        StatusEventOrigin.OPERATOR,
        "alice",
    )
    assert event.cause == "set deprecated by an operator (console)"
    model.refresh_from_db()
    assert event.at == model.updated_at


def test_a_model_registered_or_changed_by_the_api_names_the_acting_user() -> None:
    user = UserFactory(username="bob")
    with acting_as(user=user):
        model = model_register(fields={"name": "m1", "display_name": "M1", "provider": "openai", "model_type": "chat"})
        model_update(model=model, fields={"status": ModelStatus.UNAVAILABLE})
        model_update(model=model, fields={"display_name": "M one"})  # no status change: no event

    events = list(ModelStatusEvent.objects.order_by("id").values_list("state", "actor", "cause"))
    assert events == [
        ("available", "bob", "registered available by an operator (API)"),
        ("unavailable", "bob", "set unavailable by an operator (API)"),
    ]


def test_alert_checks_record_the_error_rate_alert_opening_and_an_operator_resolving_it(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.ALERT_MIN_REQUESTS, settings.ALERT_ERROR_RATE_THRESHOLD = 20, 0.05
    now = timezone.now()
    model = RegisteredModelFactory(name="gpt-4o")
    ModelUsageFactory(model=model, timestamp=now - timedelta(minutes=5), request_count=100, error_count=27)
    with django_capture_on_commit_callbacks(execute=True):
        alerts_check(now=now)
        alerts_resolve(alerts=Alert.objects.filter(kind=AlertKind.ERROR_RATE), by="carol", now=now + timedelta(hours=1))

    opened, resolved = ModelStatusEvent.objects.order_by("at")
    assert (opened.kind, opened.state, opened.alert_kind, opened.at, opened.origin) == (
        StatusEventKind.ALERT,
        "opened",
        AlertKind.ERROR_RATE,
        now,
        StatusEventOrigin.ALERT_CHECK,
    )
    assert opened.cause.startswith("gpt-4o: error rate 27.0%")
    assert (resolved.state, resolved.actor, resolved.origin) == ("resolved", "carol", StatusEventOrigin.OPERATOR)
    assert opened.alert_id == resolved.alert_id == Alert.objects.get().pk


def test_the_backfill_seeds_one_event_per_model_from_its_current_status() -> None:
    migration = importlib.import_module("registry.migrations.0012_status_events")
    up = RegisteredModelFactory(status=ModelStatus.AVAILABLE)
    gone = RegisteredModelFactory(status=ModelStatus.UNAVAILABLE)

    # The function only reads and inserts rows: it needs no schema editor.
    migration.seed_history(apps, None)

    rows = {e.model_id: e for e in ModelStatusEvent.objects.all()}
    assert {pk: (e.kind, e.state, e.origin) for pk, e in rows.items()} == {
        up.pk: (StatusEventKind.STATUS, ModelStatus.AVAILABLE, StatusEventOrigin.HISTORY_START),
        gone.pk: (StatusEventKind.STATUS, ModelStatus.UNAVAILABLE, StatusEventOrigin.HISTORY_START),
    }
    assert rows[gone.pk].at == RegisteredModel.objects.get(pk=gone.pk).updated_at
    assert availability(gone.pk, rows[gone.pk].at, rows[gone.pk].at + DAY).available_fraction == 0.0
