"""An operator reads a model's availability history on its page, in Chromium on a laptop screen."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from registry.models import AlertKind, ModelStatus, RegisteredModel, StatusEventKind, StatusEventOrigin
from registry.telemetry.availability import status_event, status_events_record
from tests.console.conftest import LAPTOP, Console
from tests.factories import ProviderSourceFactory, RegisteredModelFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def week(transactional_db: None) -> RegisteredModel:
    """A week of qwen3:8b: listed, loaded and unloaded by its host, an error burst, three hours missing."""
    now = timezone.now()
    model = RegisteredModelFactory(name="qwen3:8b")
    host = ProviderSourceFactory(name="gpu-1")

    def event(hours_ago: float, kind: str, state: str, cause: str, **extra: Any) -> Any:
        origin = {
            StatusEventKind.STATUS: StatusEventOrigin.DISCOVERY,
            StatusEventKind.RUNTIME: StatusEventOrigin.RUNTIME,
            StatusEventKind.ALERT: StatusEventOrigin.ALERT_CHECK,
        }[kind]
        return status_event(
            model_id=model.pk,
            kind=kind,
            state=state,
            origin=origin,
            cause=cause,
            at=now - timedelta(hours=hours_ago),
            source_id=host.pk,
            **extra,
        )

    status, runtime, alert = StatusEventKind.STATUS, StatusEventKind.RUNTIME, StatusEventKind.ALERT
    error_rate = {"alert_kind": AlertKind.ERROR_RATE}
    status_events_record(
        [
            event(24 * 10, status, ModelStatus.AVAILABLE, "first listed by source gpu-1 (run #3)", run_id=3),
            event(24 * 6, runtime, "loaded", "host gpu-1 lists it as loaded (GET /api/ps)"),
            event(24 * 6 - 5, runtime, "unloaded", "host gpu-1 no longer lists it as loaded (GET /api/ps)"),
            event(24 * 4, alert, "opened", "qwen3:8b: error rate 27.0% over the last 60 min", **error_rate),
            event(24 * 4 - 6, alert, "resolved", "resolved: qwen3:8b: error rate 27.0%", **error_rate),
            event(50, status, ModelStatus.UNAVAILABLE, "no longer listed by source gpu-1 nor any other", run_id=41),
            event(47, status, ModelStatus.AVAILABLE, "listed again by source gpu-1 (run #44)", run_id=44),
            event(20, runtime, "loaded", "host gpu-1 lists it as loaded (GET /api/ps)"),
        ]
    )
    return model


def test_an_operator_reads_when_a_model_was_down_and_why(console: Console, viewer: Any, week: RegisteredModel) -> None:
    console.login("viewer-op")
    page = console.open(f"/admin/registry/registeredmodel/{week.pk}/change/")

    # The section links sit at the top; the availability one brings the timeline into view.
    page.click("#model-sections a[href='#model-availability']")
    section = page.locator("#model-availability")
    expect(section).to_be_in_viewport()
    expect(section.locator(".availability-periods .selected")).to_have_text("7d")

    status_spans = section.locator("rect.timeline-span")
    states = [status_spans.nth(i).get_attribute("data-state") for i in range(status_spans.count())]
    assert states == [
        "available",
        "degraded",
        "available",
        "unavailable",
        "available",  # the status lane
        "unknown",  # no host asked before six days ago
        "loaded",
        "unloaded",
        "loaded",  # the runtime lane
    ]
    # Hovering a stretch names it, its moments, its length and its cause (the SVG <title>).
    down = section.locator("rect.timeline-unavailable title")
    expect(down).to_have_text(re.compile(r"status: unavailable · .* UTC \(3 h\) · no longer listed"))
    section.locator("rect.timeline-unavailable").hover()
    expect(section.locator(".timeline-legend")).to_contain_text("unavailable 1.8%")
    expect(section.locator(".timeline-legend")).to_contain_text("degraded 3.6%")
    expect(section.locator("#availability-events tbody tr").first).to_contain_text("loaded")
    expect(section.locator("#availability-events")).to_contain_text("open run #41")
    assert console.page_width() <= LAPTOP["width"]
    shot = console.screenshot("availability")
    # What the operator sees after following the link (docs/images/console-availability.png is a copy).
    page.screenshot(path=str(shot.with_name(shot.stem + "-view.png")))

    # A month reaches back before the first event: that part is unknown, not counted as down.
    section.locator(".availability-periods a", has_text="30d").click()
    console.remember()
    section = page.locator("#model-availability")
    expect(section.locator(".availability-periods .selected")).to_have_text("30d")
    expect(section.locator("rect.timeline-unknown").first).to_be_attached()
    expect(section).to_contain_text("history covers 33% of the period")
