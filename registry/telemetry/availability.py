"""Availability history: each model's status changes over time, and the intervals derived from them.

**Writes.** The code that changes what a model's availability is calls ``status_events_record``
(or ``status_change_record`` for one model) in the same transaction as the change, never a signal:

- discovery (discovery.sync): a model added, vanished from every source, or listed again;
- the runtime checks (discovery.runtime): a host loaded or unloaded it (``GET /api/ps``);
- operators (registry.catalog.services, the console's model form): a status set by hand;
- the alert checks (registry.telemetry.alerts): an unavailability or error-rate alert opened or resolved.

Each event is one row of ``model_status_events`` in one of three lanes (``StatusEventKind``):
the deployment status, the runtime (per host), and the availability alerts.

**Reads.** ``availability(model_id, start, end)`` derives the intervals of ``[start, end)``: the
state in force at ``start`` is read from the newest event before it (retention keeps that one per
lane, registry/operations/retention.py), then each event in the window starts a new interval.
States: ``available``, ``degraded`` (available, with an error-rate alert open), ``unavailable``,
``deprecated``, and ``unknown`` before a model's first event. ``available_fraction`` is the time
available or degraded over the time whose state is known: a model registered mid-period is judged
on the part of it that it existed. Four queries whatever the range. ``availability_shares`` gives
several models' fractions over several windows (Compare) in two queries whatever their number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from discovery.models import ProviderSource
from registry.models import (
    AlertKind,
    ModelStatus,
    ModelStatusEvent,
    RegisteredModel,
    StatusEventKind,
    StatusEventOrigin,
)

# The alert kinds whose opening and resolution are availability events.
AVAILABILITY_ALERT_KINDS = (AlertKind.UNAVAILABLE, AlertKind.ERROR_RATE)

AVAILABLE = "available"
DEGRADED = "degraded"
UNKNOWN = "unknown"
LOADED = "loaded"
UNLOADED = "unloaded"
OPENED = "opened"
RESOLVED = "resolved"

# Every state an interval of the status lane may have, in the order a legend lists them.
STATES = (AVAILABLE, DEGRADED, ModelStatus.UNAVAILABLE.value, ModelStatus.DEPRECATED.value, UNKNOWN)
# The runtime lane: loaded on at least one host, or checked and loaded on none.
RUNTIME_STATES = (LOADED, UNLOADED, UNKNOWN)

CAUSE_MAX = 300  # model_status_events.cause


# --- Writes ----------------------------------------------------------------------------------------


def status_event(
    *,
    model_id: int,
    kind: str,
    state: str,
    origin: str,
    cause: str,
    at: datetime | None = None,
    actor: str = "",
    source_id: int | None = None,
    run_id: int | None = None,
    alert_kind: str = "",
    alert_id: int | None = None,
) -> ModelStatusEvent:
    """One event, not saved: writers build their events with this and record them in one insert."""
    return ModelStatusEvent(
        model_id=model_id,
        at=at or timezone.now(),
        kind=kind,
        state=state,
        origin=origin,
        cause=cause[:CAUSE_MAX],
        actor=actor[:150],
        source_id=source_id,
        run_id=run_id,
        alert_kind=alert_kind,
        alert_id=alert_id,
    )


def status_events_record(events: Iterable[ModelStatusEvent]) -> int:
    """Record ``events`` in one insert (none: no query); returns how many.

    Call it inside the transaction of the change it records, so that history and state agree.
    """
    rows = list(events)
    if rows:
        ModelStatusEvent.objects.bulk_create(rows)
    return len(rows)


def status_change_record(
    *,
    model_id: int,
    status: str,
    origin: str,
    cause: str,
    at: datetime | None = None,
    actor: str = "",
    source_id: int | None = None,
    run_id: int | None = None,
) -> ModelStatusEvent:
    """Record that a model's deployment status became ``status`` (one insert)."""
    event = status_event(
        model_id=model_id,
        kind=StatusEventKind.STATUS,
        state=status,
        origin=origin,
        cause=cause,
        at=at,
        actor=actor,
        source_id=source_id,
        run_id=run_id,
    )
    event.save()
    return event


def operator_status_cause(status: str, via: str) -> str:
    """The cause of a status an operator set: who decided is the event's actor."""
    return f"set {status} by an operator ({via})"


# --- Reads -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Interval:
    """A stretch of ``[start, end)`` in one state, and the cause of the event that began it."""

    start: datetime
    end: datetime
    state: str
    cause: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(slots=True)
class Event:
    """A status event as the reads give it: plain values, its source by name (one query for any number).

    Not frozen: thousands are built per read, and a frozen dataclass's construction costs twice as much.
    """

    at: datetime
    kind: str
    state: str
    alert_kind: str
    origin: str
    cause: str
    actor: str
    source_id: int | None
    source: str | None
    run_id: int | None
    alert_id: int | None

    @property
    def origin_label(self) -> str:
        return str(StatusEventOrigin(self.origin).label) if self.origin in StatusEventOrigin.values else self.origin


EVENT_COLUMNS = (
    "at",
    "kind",
    "state",
    "alert_kind",
    "origin",
    "cause",
    "actor",
    "source_id",
    "source__name",
    "run_id",
    "alert_id",
)


@dataclass(frozen=True)
class Availability:
    """A model's availability over ``[start, end)``: the status lane, the runtime lane and the events."""

    model_id: int
    start: datetime
    end: datetime
    intervals: list[Interval]
    runtime: list[Interval]  # empty when no host was ever asked about the model
    events: list[Event]  # the period's events, oldest first
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def known_seconds(self) -> float:
        return sum(seconds for state, seconds in self.seconds.items() if state != UNKNOWN)

    @property
    def available_fraction(self) -> float | None:
        """Time available (or degraded) over the time whose state is known; None when none is."""
        known = self.known_seconds
        if known <= 0:
            return None
        return (self.seconds.get(AVAILABLE, 0.0) + self.seconds.get(DEGRADED, 0.0)) / known

    @property
    def known_fraction(self) -> float:
        """How much of the period the history covers (the rest is ``unknown``)."""
        return self.known_seconds / (self.end - self.start).total_seconds()


@dataclass
class _Sweep:
    """The lanes' state while the events are replayed in order."""

    status: str | None = None
    status_cause: str = ""
    degraded_cause: str | None = None  # the open error-rate alert's message
    hosts: dict[int | None, bool] = field(default_factory=dict)  # source -> loaded, for hosts ever asked
    runtime_cause: str = ""

    def state(self) -> tuple[str, str]:
        if self.status is None:
            return UNKNOWN, "no event recorded before"
        if self.status == ModelStatus.AVAILABLE and self.degraded_cause is not None:
            return DEGRADED, self.degraded_cause
        return (AVAILABLE if self.status == ModelStatus.AVAILABLE else self.status), self.status_cause

    def runtime_state(self) -> tuple[str, str]:
        if not self.hosts:
            return UNKNOWN, "no host asked yet"
        return (LOADED if any(self.hosts.values()) else UNLOADED), self.runtime_cause

    def apply(self, event: Event | ModelStatusEvent) -> None:
        if event.kind == StatusEventKind.STATUS:
            self.status, self.status_cause = event.state, event.cause
        elif event.kind == StatusEventKind.RUNTIME:
            self.hosts[event.source_id] = event.state == LOADED
            self.runtime_cause = event.cause
        elif event.kind == StatusEventKind.ALERT and event.alert_kind == AlertKind.ERROR_RATE:
            self.degraded_cause = event.cause if event.state == OPENED else None


class _Lane:
    """Builds a lane's intervals, merging consecutive stretches in the same state.

    Mutable rows until the end: a busy lane extends tens of thousands of times in a quarter, and a
    frozen dataclass per extension costs more than the query that read the events.
    """

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []

    def extend(self, start: datetime, end: datetime, state: str, cause: str) -> None:
        if end <= start:
            return
        rows = self.rows
        if rows and rows[-1][2] == state and rows[-1][1] == start:
            rows[-1][1] = end
        else:
            rows.append([start, end, state, cause])

    @property
    def intervals(self) -> list[Interval]:
        return [Interval(*row) for row in self.rows]


def _state_before(model_id: int, start: datetime) -> _Sweep:
    """Each lane's state at ``start``, from its newest event before it (three queries)."""
    sweep = _Sweep()
    before = ModelStatusEvent.objects.filter(model_id=model_id, at__lt=start).order_by("-at", "-id")
    status = before.filter(kind=StatusEventKind.STATUS).first()
    if status is not None:
        sweep.apply(status)
    alert = before.filter(kind=StatusEventKind.ALERT, alert_kind=AlertKind.ERROR_RATE).first()
    if alert is not None:
        sweep.apply(alert)
    # One row per host ever asked about the model: its newest runtime event's state (a correlated subquery).
    newest = before.filter(kind=StatusEventKind.RUNTIME, source_id=OuterRef("pk"))
    hosts = (
        ProviderSource.objects.annotate(state=Subquery(newest.values("state")[:1]))
        .filter(state__isnull=False)
        .values_list("pk", "state")
    )
    for source_id, state in hosts:
        sweep.hosts[source_id] = state == LOADED
    return sweep


def availability(model_id: int, start: datetime, end: datetime) -> Availability:
    """The intervals of ``model_id``'s availability over ``[start, end)`` and its available fraction.

    ``Availability.intervals`` cover the whole period in order (``unknown`` before the first event);
    ``available_fraction`` is None when no state is known in the period. ``start`` must be before
    ``end`` (a ValueError otherwise); callers bound the range (the API: 366 days).
    """
    if start >= end:
        raise ValueError("start must be before end")
    sweep = _state_before(model_id, start)
    # Plain tuples, not model instances: a host that loads and unloads a model every few minutes
    # gives thousands of events in a quarter, and instances cost five times as much to build.
    rows = (
        ModelStatusEvent.objects.filter(model_id=model_id, at__gte=start, at__lt=end)
        .order_by("at", "id")
        .values_list(*EVENT_COLUMNS)
    )
    events = [Event(*row) for row in rows]
    status_lane, runtime_lane = _Lane(), _Lane()
    moment = start
    for event in events:
        state, cause = sweep.state()
        status_lane.extend(moment, event.at, state, cause)
        runtime_state, runtime_cause = sweep.runtime_state()
        runtime_lane.extend(moment, event.at, runtime_state, runtime_cause)
        sweep.apply(event)
        moment = max(moment, event.at)
    state, cause = sweep.state()
    status_lane.extend(moment, end, state, cause)
    runtime_state, runtime_cause = sweep.runtime_state()
    runtime_lane.extend(moment, end, runtime_state, runtime_cause)

    intervals, runtime = status_lane.intervals, runtime_lane.intervals
    seconds = dict.fromkeys(STATES, 0.0)
    for interval in intervals:
        seconds[interval.state] += interval.seconds
    asked = any(interval.state != UNKNOWN for interval in runtime)
    return Availability(
        model_id=model_id,
        start=start,
        end=end,
        intervals=intervals,
        runtime=runtime if asked else [],
        events=events,
        seconds=seconds,
    )


@dataclass(frozen=True)
class AvailabilityShare:
    """A model's available fraction over a period and how much of the period its history covers."""

    available_fraction: float | None  # None when no state is known in the period
    known_fraction: float


def _status_states_before(model_ids: Sequence[int], start: datetime) -> dict[int, _Sweep]:
    """Each model's status lane at ``start``: its newest status and error-rate alert events before it (one query)."""
    before = ModelStatusEvent.objects.filter(model_id=OuterRef("pk"), at__lt=start).order_by("-at", "-id")
    rows = (
        RegisteredModel.objects.filter(pk__in=model_ids)
        .annotate(
            status_state=Subquery(before.filter(kind=StatusEventKind.STATUS).values("state")[:1]),
            alert_state=Subquery(
                before.filter(kind=StatusEventKind.ALERT, alert_kind=AlertKind.ERROR_RATE).values("state")[:1]
            ),
        )
        .values_list("pk", "status_state", "alert_state")
    )
    sweeps: dict[int, _Sweep] = {model_id: _Sweep() for model_id in model_ids}
    for model_id, status_state, alert_state in rows:
        sweep = sweeps[model_id]
        sweep.status = status_state
        # Only whether an error-rate alert is open matters to the fractions, not its message.
        sweep.degraded_cause = "" if alert_state == OPENED else None
    return sweeps


def availability_shares(
    model_ids: Sequence[int], windows: Mapping[str, tuple[datetime, datetime]]
) -> dict[int, dict[str, AvailabilityShare]]:
    """Each model's ``AvailabilityShare`` over each window ``{name: (start, end)}``, in two queries whatever
    the number of models and windows: the state before the earliest start, then the events up to the
    latest end (the status and error-rate alert lanes only; the runtime lane does not count).

    The same figures as ``availability(model_id, start, end)``'s ``available_fraction`` and
    ``known_fraction`` for each window, without reading each model's history once per window.
    """
    ids = list(dict.fromkeys(model_ids))
    if not ids or not windows:
        return {model_id: {} for model_id in ids}
    for start, end in windows.values():
        if start >= end:
            raise ValueError("start must be before end")
    first = min(start for start, _ in windows.values())
    last = max(end for _, end in windows.values())
    sweeps = _status_states_before(ids, first)
    rows = (
        ModelStatusEvent.objects.filter(model_id__in=ids, at__gte=first, at__lt=last)
        .filter(Q(kind=StatusEventKind.STATUS) | Q(kind=StatusEventKind.ALERT, alert_kind=AlertKind.ERROR_RATE))
        .order_by("model_id", "at", "id")
        .values_list("model_id", "at", "kind", "state", "alert_kind")
    )
    events: dict[int, list[Event]] = {model_id: [] for model_id in ids}
    for model_id, at, kind, state, alert_kind in rows:
        events[model_id].append(Event(at, kind, state, alert_kind, "", "", "", None, None, None, None))
    shares: dict[int, dict[str, AvailabilityShare]] = {}
    for model_id in ids:
        # The status lane over [first, last), then each window's part of it.
        sweep, lane, moment = sweeps[model_id], _Lane(), first
        for event in events[model_id]:
            lane.extend(moment, event.at, sweep.state()[0], "")
            sweep.apply(event)
            moment = max(moment, event.at)
        lane.extend(moment, last, sweep.state()[0], "")
        shares[model_id] = {name: _share(lane.rows, start, end) for name, (start, end) in windows.items()}
    return shares


def _share(rows: list[list[Any]], start: datetime, end: datetime) -> AvailabilityShare:
    """The share of ``[start, end)`` of a lane's rows ``[start, end, state, cause]``."""
    known = up = 0.0
    for row_start, row_end, state, _ in rows:
        seconds = (min(row_end, end) - max(row_start, start)).total_seconds()
        if seconds <= 0 or state == UNKNOWN:
            continue
        known += seconds
        if state in (AVAILABLE, DEGRADED):
            up += seconds
    return AvailabilityShare(
        available_fraction=up / known if known > 0 else None,
        known_fraction=known / (end - start).total_seconds(),
    )


def availability_fractions(model_ids: Sequence[int], start: datetime, end: datetime) -> dict[int, float | None]:
    """Each model's ``available_fraction`` over ``[start, end)`` (for side-by-side pages; two queries in all)."""
    shares = availability_shares(model_ids, {"period": (start, end)})
    return {model_id: shares[model_id]["period"].available_fraction for model_id in model_ids}


def unavailable_since(model_ids: Iterable[int]) -> dict[int, ModelStatusEvent]:
    """For each model, its newest status event when that event made it unavailable (one query).

    What the unavailability alert counts from: the moment the change was seen (the discovery run
    that stopped finding the model), not ``last_seen_at``, which discovery refreshes only hourly.
    """
    ids = list(model_ids)
    if not ids:
        return {}
    newest = (
        ModelStatusEvent.objects.filter(model_id=OuterRef("model_id"), kind=StatusEventKind.STATUS)
        .order_by("-at", "-id")
        .values("pk")[:1]
    )
    rows = ModelStatusEvent.objects.filter(
        model_id__in=ids, kind=StatusEventKind.STATUS, pk=Subquery(newest), state=ModelStatus.UNAVAILABLE
    )
    return {event.model_id: event for event in rows}


def default_period(end: datetime | None = None, *, days: int = 7) -> tuple[datetime, datetime]:
    """The period a page shows when none is asked for: the last ``days`` days up to now."""
    end = end or timezone.now()
    return end - timedelta(days=days), end
