"""A model's availability history on its page: the timeline of its status and runtime, and the period's events.

The figures are the selector's (``registry.telemetry.availability``), the same that
``GET /models/{ref}/availability`` answers; this module only picks the period and draws them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from registry.console.charts import Span, duration_text, timeline_chart
from registry.models import StatusEventKind
from registry.telemetry.availability import RUNTIME_STATES, STATES, Event, Interval, availability

# The periods the page offers (``?availability=``), the first the default.
PERIODS: dict[str, timedelta] = {
    "7d": timedelta(days=7),
    "24h": timedelta(hours=24),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
EVENTS_SHOWN = 20


@dataclass(frozen=True)
class EventRow:
    """One event as the page's table shows it."""

    at: datetime
    lane: str
    state: str
    cause: str
    by: str
    run_url: str | None
    run_id: int | None


def _spans(intervals: list[Interval]) -> list[Span]:
    return [Span(i.start, i.end, i.state, i.cause) for i in intervals]


def _lane(event: Event) -> str:
    if event.kind == StatusEventKind.ALERT:
        return f"{event.alert_kind.replace('_', ' ')} alert"
    return "runtime" if event.kind == StatusEventKind.RUNTIME else "status"


def _run_url(run_id: int | None) -> str | None:
    if run_id is None:
        return None
    try:
        return reverse("admin:discovery_discoveryrun_change", args=[run_id])
    except NoReverseMatch:  # the console without discovery's pages
        return None


def _event_rows(events: list[Event]) -> list[EventRow]:
    return [
        EventRow(
            at=event.at,
            lane=_lane(event),
            state=event.state,
            cause=event.cause,
            by=event.actor or event.origin_label,
            run_url=_run_url(event.run_id),
            run_id=event.run_id,
        )
        for event in reversed(events[-EVENTS_SHOWN:])
    ]


def availability_context(*, model_id: int, period: str, now: datetime | None = None) -> dict[str, Any]:
    """The template's ``availability_*`` values for ``model_id`` over the named period (7 days if unknown)."""
    name = period if period in PERIODS else next(iter(PERIODS))
    end = now or timezone.now()
    found = availability(model_id, end - PERIODS[name], end)
    fraction = found.available_fraction
    return {
        "availability_period": name,
        "availability_periods": list(PERIODS),
        "availability_fraction": None if fraction is None else f"{fraction:.2%}",
        "availability_known": f"{found.known_fraction:.0%}",
        "availability_down": duration_text(found.seconds["unavailable"]),
        "availability_timeline": timeline_chart(
            title="Availability",
            start=found.start,
            end=found.end,
            lanes=[("status", _spans(found.intervals)), ("loaded", _spans(found.runtime))],
            states=[*STATES, *(state for state in RUNTIME_STATES if state not in STATES)],
        ),
        "availability_events": _event_rows(found.events),
        "availability_events_total": len(found.events),
    }
