"""Alert checks: each condition opens one alert, is not duplicated, clears, and reaches the webhook."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from registry.models import Alert, AlertKind, ModelStatus, RegisteredModel, StatusEventOrigin
from registry.operations import metrics
from registry.tasks import check_alerts
from registry.telemetry.alerts import (
    ALERT_SCHEDULE_NAME,
    ALERT_TASK_NAME,
    alert_schedule_ensure,
    alerts_check,
    check_latency,
)
from registry.telemetry.availability import status_change_record
from tests.factories import ModelUsageFactory, ProviderSourceFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db


class WebhookReceiver:
    """A loopback HTTP server that records the JSON bodies posted to it."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.events: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.events.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(settings) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    settings.ALERT_WEBHOOK_URL = receiver.url
    yield receiver
    receiver.close()


@pytest.fixture
def thresholds(settings) -> None:
    settings.ALERT_WINDOW_MINUTES = 60
    settings.ALERT_ERROR_RATE_THRESHOLD = 0.05
    settings.ALERT_MIN_REQUESTS = 20
    settings.ALERT_LATENCY_REGRESSION_PERCENT = 50.0
    settings.ALERT_UNAVAILABLE_MINUTES = 30
    settings.ALERT_SOURCE_FAILURES = 3


def usage(model: RegisteredModel, at: datetime, *, requests: int, errors: int = 0, latency: float = 0.5) -> None:
    ModelUsageFactory(model=model, timestamp=at, request_count=requests, error_count=errors, average_latency=latency)


def run_check(now: datetime, capture) -> Any:
    with capture(execute=True):
        return alerts_check(now=now)


@pytest.mark.usefixtures("thresholds")
class TestErrorRate:
    def test_error_rate_above_threshold_opens_one_alert(self, django_capture_on_commit_callbacks) -> None:
        now = timezone.now()
        model = RegisteredModelFactory(name="gpt-4o")
        usage(model, now - timedelta(minutes=10), requests=100, errors=12)

        changes = run_check(now, django_capture_on_commit_callbacks)

        alert = Alert.objects.get()
        assert [a.pk for a in changes.opened] == [alert.pk]
        assert (alert.kind, alert.model_id, alert.resolved_at) == (AlertKind.ERROR_RATE, model.pk, None)
        assert alert.details["errors"] == 12
        assert alert.details["requests"] == 100
        assert alert.message.startswith("gpt-4o: error rate 12.0% over the last 60 min")

    def test_error_rate_alert_is_not_duplicated_by_later_checks(self, django_capture_on_commit_callbacks) -> None:
        now = timezone.now()
        model = RegisteredModelFactory()
        usage(model, now - timedelta(minutes=10), requests=100, errors=12)
        run_check(now, django_capture_on_commit_callbacks)

        again = run_check(now + timedelta(minutes=1), django_capture_on_commit_callbacks)

        assert again.opened == []
        assert Alert.objects.count() == 1

    def test_error_rate_alert_resolves_when_the_window_is_healthy(self, django_capture_on_commit_callbacks) -> None:
        now = timezone.now()
        model = RegisteredModelFactory()
        usage(model, now - timedelta(minutes=10), requests=100, errors=12)
        run_check(now, django_capture_on_commit_callbacks)
        later = now + timedelta(hours=2)
        usage(model, later - timedelta(minutes=5), requests=100, errors=1)

        changes = run_check(later, django_capture_on_commit_callbacks)

        alert = Alert.objects.get()
        assert [a.pk for a in changes.resolved] == [alert.pk]
        assert alert.resolved_at == later

    def test_too_few_requests_open_no_alert(self, django_capture_on_commit_callbacks) -> None:
        now = timezone.now()
        usage(RegisteredModelFactory(), now - timedelta(minutes=10), requests=10, errors=10)

        run_check(now, django_capture_on_commit_callbacks)

        assert Alert.objects.count() == 0

    def test_error_rate_at_the_threshold_opens_no_alert(self, django_capture_on_commit_callbacks) -> None:
        now = timezone.now()
        usage(RegisteredModelFactory(), now - timedelta(minutes=10), requests=100, errors=5)

        run_check(now, django_capture_on_commit_callbacks)

        assert Alert.objects.count() == 0

    def test_usage_outside_the_window_is_ignored(self, django_capture_on_commit_callbacks) -> None:
        now = timezone.now()
        usage(RegisteredModelFactory(), now - timedelta(minutes=61), requests=100, errors=50)

        run_check(now, django_capture_on_commit_callbacks)

        assert Alert.objects.count() == 0


@pytest.mark.usefixtures("thresholds")
class TestLatency:
    def baseline(self, model: RegisteredModel, now: datetime, latency: float = 0.5) -> None:
        for days in (2, 4, 6):
            usage(model, now - timedelta(days=days), requests=30, latency=latency)

    def test_latency_worse_than_baseline_opens_one_alert(self, django_capture_on_commit_callbacks) -> None:
        now = timezone.now()
        model = RegisteredModelFactory(name="llama3.2:latest")
        self.baseline(model, now)
        usage(model, now - timedelta(minutes=5), requests=40, latency=1.0)

        run_check(now, django_capture_on_commit_callbacks)
        run_check(now + timedelta(minutes=1), django_capture_on_commit_callbacks)

        alert = Alert.objects.get()
        assert (alert.kind, alert.model_id) == (AlertKind.LATENCY, model.pk)
        assert alert.details["average_latency"] == 1.0
        assert alert.details["baseline_latency"] == 0.5
        assert alert.details["worse_by_percent"] == 100.0

    def test_latency_within_the_allowed_regression_opens_no_alert(self, django_capture_on_commit_callbacks) -> None:
        now = timezone.now()
        model = RegisteredModelFactory()
        self.baseline(model, now)
        usage(model, now - timedelta(minutes=5), requests=40, latency=0.74)

        run_check(now, django_capture_on_commit_callbacks)

        assert Alert.objects.count() == 0

    def test_latency_alert_resolves_when_latency_returns_to_baseline(self, django_capture_on_commit_callbacks) -> None:
        now = timezone.now()
        model = RegisteredModelFactory()
        self.baseline(model, now)
        usage(model, now - timedelta(minutes=5), requests=40, latency=1.0)
        run_check(now, django_capture_on_commit_callbacks)
        later = now + timedelta(hours=2)
        usage(model, later - timedelta(minutes=5), requests=40, latency=0.5)

        changes = run_check(later, django_capture_on_commit_callbacks)

        assert len(changes.resolved) == 1
        assert Alert.objects.get().resolved_at == later

    def test_the_baseline_is_read_once_an_hour(self, django_assert_num_queries) -> None:
        now = timezone.now().replace(minute=30)
        model = RegisteredModelFactory()
        self.baseline(model, now)
        usage(model, now - timedelta(minutes=5), requests=40, latency=1.0)
        first = check_latency(now)

        # The current window, the names of the models in it; not the seven days before.
        with django_assert_num_queries(2):
            later = check_latency(now + timedelta(minutes=1))

        assert list(first.firing) == list(later.firing) == [("model", model.pk)]

    def test_an_empty_baseline_is_not_cached_so_history_posted_later_counts_at_the_next_check(
        self, django_capture_on_commit_callbacks
    ) -> None:
        # Seen live: a regression's alert opened 33 minutes late, at the next hour's baseline.
        now = timezone.now().replace(minute=10)
        model = RegisteredModelFactory()
        usage(model, now - timedelta(minutes=5), requests=40, latency=1.0)
        run_check(now, django_capture_on_commit_callbacks)
        assert Alert.objects.count() == 0  # no week of history yet: nothing to regress from
        self.baseline(model, now)  # the week's records arrive (posted late, or a registry just filled)

        run_check(now + timedelta(minutes=1), django_capture_on_commit_callbacks)

        alert = Alert.objects.get()
        assert (alert.kind, alert.model_id) == (AlertKind.LATENCY, model.pk)
        assert alert.opened_at == now + timedelta(minutes=1)

    def test_no_baseline_opens_no_alert(self, django_capture_on_commit_callbacks) -> None:
        now = timezone.now()
        usage(RegisteredModelFactory(), now - timedelta(minutes=5), requests=40, latency=9.0)

        run_check(now, django_capture_on_commit_callbacks)

        assert Alert.objects.count() == 0


@pytest.mark.usefixtures("thresholds")
class TestUnavailable:
    def test_model_unavailable_longer_than_the_limit_opens_one_alert(self, django_capture_on_commit_callbacks) -> None:
        now = timezone.now()
        model = RegisteredModelFactory(status=ModelStatus.UNAVAILABLE, last_seen_at=now - timedelta(minutes=45))

        run_check(now, django_capture_on_commit_callbacks)
        run_check(now + timedelta(minutes=1), django_capture_on_commit_callbacks)

        alert = Alert.objects.get()
        assert (alert.kind, alert.model_id, alert.resolved_at) == (AlertKind.UNAVAILABLE, model.pk, None)

    def test_model_unavailable_for_less_than_the_limit_opens_no_alert(self, django_capture_on_commit_callbacks) -> None:
        now = timezone.now()
        RegisteredModelFactory(status=ModelStatus.UNAVAILABLE, last_seen_at=now - timedelta(minutes=20))

        run_check(now, django_capture_on_commit_callbacks)

        assert Alert.objects.count() == 0

    def test_unavailability_counts_from_the_run_that_found_the_model_missing_not_from_last_seen(
        self, django_capture_on_commit_callbacks
    ) -> None:
        # Discovery refreshes last_seen_at hourly: listed 55 minutes ago, missing since the run 10 minutes ago.
        now = timezone.now()
        model = RegisteredModelFactory(
            name="qwen3:8b", status=ModelStatus.UNAVAILABLE, last_seen_at=now - timedelta(minutes=55)
        )
        missing_since = now - timedelta(minutes=10)
        status_change_record(
            model_id=model.pk,
            status=ModelStatus.UNAVAILABLE,
            origin=StatusEventOrigin.DISCOVERY,
            cause="no longer listed by source gpu nor any other (run #7)",
            at=missing_since,
        )

        run_check(now, django_capture_on_commit_callbacks)
        assert Alert.objects.count() == 0  # 10 minutes, not 55

        run_check(now + timedelta(minutes=25), django_capture_on_commit_callbacks)

        alert = Alert.objects.get()
        assert alert.message.startswith(
            f"qwen3:8b: unavailable for 35 min (since {missing_since:%Y-%m-%d %H:%M} UTC: "
            "no longer listed by source gpu nor any other (run #7); last seen"
        )
        assert alert.details["unavailable_since"] == missing_since.isoformat()

    def test_a_discovered_model_an_operator_set_unavailable_opens_no_alert(
        self, django_capture_on_commit_callbacks
    ) -> None:
        now = timezone.now()
        model = RegisteredModelFactory(status=ModelStatus.UNAVAILABLE, last_seen_at=now - timedelta(hours=3))
        status_change_record(
            model_id=model.pk,
            status=ModelStatus.UNAVAILABLE,
            origin=StatusEventOrigin.OPERATOR,
            cause="set unavailable by an operator (console)",
            at=now - timedelta(hours=2),
            actor="alice",
        )

        run_check(now, django_capture_on_commit_callbacks)

        assert Alert.objects.count() == 0

    def test_model_set_unavailable_by_hand_opens_no_alert(self, django_capture_on_commit_callbacks) -> None:
        RegisteredModelFactory(status=ModelStatus.UNAVAILABLE, last_seen_at=None)

        run_check(timezone.now(), django_capture_on_commit_callbacks)

        assert Alert.objects.count() == 0

    def test_unavailable_alert_resolves_when_the_model_is_back(self, django_capture_on_commit_callbacks) -> None:
        now = timezone.now()
        model = RegisteredModelFactory(status=ModelStatus.UNAVAILABLE, last_seen_at=now - timedelta(minutes=45))
        run_check(now, django_capture_on_commit_callbacks)
        RegisteredModel.objects.filter(pk=model.pk).update(status=ModelStatus.AVAILABLE, last_seen_at=now)

        changes = run_check(now + timedelta(minutes=1), django_capture_on_commit_callbacks)

        assert len(changes.resolved) == 1
        assert Alert.objects.open().count() == 0


@pytest.mark.usefixtures("thresholds")
class TestFailingSource:
    def test_source_failing_several_times_opens_one_alert(self, django_capture_on_commit_callbacks) -> None:
        source = ProviderSourceFactory(name="ollama-gpu", consecutive_failures=3, last_error="connection refused")

        run_check(timezone.now(), django_capture_on_commit_callbacks)
        run_check(timezone.now(), django_capture_on_commit_callbacks)

        alert = Alert.objects.get()
        assert (alert.kind, alert.source_id, alert.model_id) == (AlertKind.SOURCE_FAILING, source.pk, None)
        assert alert.message == "discovery source ollama-gpu: 3 failed runs in a row"

    def test_source_with_fewer_failures_opens_no_alert(self, django_capture_on_commit_callbacks) -> None:
        ProviderSourceFactory(consecutive_failures=2)

        run_check(timezone.now(), django_capture_on_commit_callbacks)

        assert Alert.objects.count() == 0

    def test_source_alert_resolves_after_a_successful_run(self, django_capture_on_commit_callbacks) -> None:
        source = ProviderSourceFactory(consecutive_failures=5)
        run_check(timezone.now(), django_capture_on_commit_callbacks)
        source.consecutive_failures = 0
        source.save()

        changes = run_check(timezone.now(), django_capture_on_commit_callbacks)

        assert len(changes.resolved) == 1
        assert Alert.objects.open().count() == 0


@pytest.mark.usefixtures("thresholds")
class TestNotifications:
    def test_opened_and_resolved_alerts_are_posted_to_the_webhook(
        self, webhook: WebhookReceiver, django_capture_on_commit_callbacks
    ) -> None:
        source = ProviderSourceFactory(name="openai", consecutive_failures=4)
        run_check(timezone.now(), django_capture_on_commit_callbacks)
        source.consecutive_failures = 0
        source.save()
        run_check(timezone.now(), django_capture_on_commit_callbacks)

        alert = Alert.objects.get()
        assert [(e["event"], e["id"], e["kind"], e["source"], e["model"]) for e in webhook.events] == [
            ("opened", alert.pk, "source_failing", "openai", None),
            ("resolved", alert.pk, "source_failing", "openai", None),
        ]
        assert webhook.events[0]["resolved_at"] is None
        assert webhook.events[1]["resolved_at"] == alert.resolved_at.isoformat()

    def test_a_failing_webhook_does_not_stop_the_check(
        self, webhook: WebhookReceiver, django_capture_on_commit_callbacks
    ) -> None:
        webhook.status = 500
        failures_before = metrics.ALERT_WEBHOOK_FAILURES._value.get()
        ProviderSourceFactory(consecutive_failures=3)
        RegisteredModelFactory(status=ModelStatus.UNAVAILABLE, last_seen_at=timezone.now() - timedelta(hours=1))

        changes = run_check(timezone.now(), django_capture_on_commit_callbacks)

        assert len(changes.opened) == 2
        assert Alert.objects.open().count() == 2
        assert len(webhook.events) == 2
        assert metrics.ALERT_WEBHOOK_FAILURES._value.get() == failures_before + 2

    def test_an_unreachable_webhook_does_not_stop_the_check(
        self, settings, free_port: int, django_capture_on_commit_callbacks
    ) -> None:
        settings.ALERT_WEBHOOK_URL = f"http://127.0.0.1:{free_port}/hook"
        ProviderSourceFactory(consecutive_failures=3)

        changes = run_check(timezone.now(), django_capture_on_commit_callbacks)

        assert len(changes.opened) == 1

    def test_open_alerts_are_counted_in_metrics(self, client: Client, django_capture_on_commit_callbacks) -> None:
        ProviderSourceFactory(consecutive_failures=3)
        run_check(timezone.now(), django_capture_on_commit_callbacks)

        text = client.get("/metrics").content.decode()

        assert 'registry_open_alerts{kind="source_failing"} 1.0' in text
        assert 'registry_open_alerts{kind="error_rate"} 0.0' in text


class TestSchedule:
    def test_schedule_is_created_with_the_configured_interval(self, settings) -> None:
        settings.ALERT_CHECK_INTERVAL_SECONDS = 120

        task = alert_schedule_ensure()

        assert (task.name, task.task, task.enabled) == (ALERT_SCHEDULE_NAME, ALERT_TASK_NAME, True)
        assert (task.interval.every, task.interval.period) == (120, "seconds")

    def test_an_operators_change_to_the_schedule_survives(self) -> None:
        task = alert_schedule_ensure()
        PeriodicTask.objects.filter(pk=task.pk).update(enabled=False)

        out = io.StringIO()
        call_command("register_schedules", stdout=out)

        assert PeriodicTask.objects.filter(name=ALERT_SCHEDULE_NAME).count() == 1
        assert PeriodicTask.objects.get(name=ALERT_SCHEDULE_NAME).enabled is False
        assert "(disabled)" in out.getvalue()

    @pytest.mark.usefixtures("thresholds")
    def test_the_periodic_task_runs_the_checks(self, django_capture_on_commit_callbacks) -> None:
        ProviderSourceFactory(consecutive_failures=3)

        with django_capture_on_commit_callbacks(execute=True):
            result = check_alerts.apply().get()

        assert result == {"opened": 1, "resolved": 0}
        assert Alert.objects.open().count() == 1
