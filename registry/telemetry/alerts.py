"""Alert checks: error rate, latency regression, long unavailability, failing discovery sources.

``alerts_check()`` evaluates every condition and reconciles the ``alerts`` table with what it
found: an alert is opened once per subject and kind (the table's partial unique constraints make
a duplicate impossible even when two checks run at once), and resolved by a conditional UPDATE
when its condition clears, so only one run ever notifies a change. Running the check twice is
therefore harmless, and it needs no lock.

Every opened or resolved alert is counted in the metrics, logged, and posted as JSON to
``ALERT_WEBHOOK_URL`` after the transaction commits. The webhook is bounded by
``ALERT_WEBHOOK_TIMEOUT`` and its failures are logged and counted, never raised: a dead receiver
must not stop the checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from discovery.models import ProviderSource
from registry.access.audit import log_bulk
from registry.models import (
    Alert,
    AlertKind,
    ModelStatus,
    ModelStatusEvent,
    RegisteredModel,
    StatusEventKind,
    StatusEventOrigin,
)
from registry.operations import metrics
from registry.reads.cache import models_changed
from registry.telemetry.availability import (
    AVAILABILITY_ALERT_KINDS,
    OPENED,
    RESOLVED,
    status_event,
    status_events_record,
    unavailable_since,
)
from registry.telemetry.usage import UsageFigures, usage_totals_by_model

logger = logging.getLogger(__name__)

ALERT_TASK_NAME = "registry.check_alerts"
ALERT_SCHEDULE_NAME = "registry: alert checks"

# The kinds that keep a model from being the primary of a selection chain (registry/selection/explain.py).
SELECTION_ALERTS = (str(AlertKind.ERROR_RATE), str(AlertKind.UNAVAILABLE))

# A subject is ("model", id) or ("source", id).
Subject = tuple[str, int]


@dataclass(frozen=True)
class Finding:
    """A condition that holds now for one subject."""

    kind: str
    subject: Subject
    message: str
    details: dict[str, Any]


@dataclass
class CheckResult:
    """What one check found: firing subjects, and subjects it could not judge (left as they are)."""

    firing: dict[Subject, Finding] = field(default_factory=dict)
    undecided: set[Subject] = field(default_factory=set)


@dataclass
class AlertChanges:
    opened: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)


# What each total is, from a model's usage figures (registry/telemetry/usage.py).
USAGE_TOTALS: dict[str, Callable[[UsageFigures], float]] = {
    "requests": lambda figures: figures.requests,
    "errors": lambda figures: figures.errors,
    "latency_sum": lambda figures: figures.latency_weighted,
    "latency_requests": lambda figures: figures.latency_requests,
}


def _usage_by_model(start: datetime, end: datetime, totals: tuple[str, ...]) -> dict[int, dict[str, float]]:
    """The named ``USAGE_TOTALS`` per model over ``[start, end)``, for models with usage there.

    From the hourly rollups and the raw rows of the partial hours: a check window of minutes reads
    only raw rows, the 7-day latency baseline reads 168 rollup rows per model.
    """
    usage = usage_totals_by_model(start=start, end=end)
    return {
        model_id: {name: float(USAGE_TOTALS[name](figures)) for name in totals} for model_id, figures in usage.items()
    }


def _latency_baseline(window_start: datetime) -> dict[int, dict[str, float]]:
    """Latency totals per model over the 7 days before the hour of ``window_start``, cached for that hour.

    Seven days of every model is the expensive read of the checks (hundreds of thousands of index
    entries); anchored to the hour, it changes once an hour, so the checks of the other 59
    minutes read it from the cache. With the cache unreachable it is simply computed again.

    An empty baseline is not cached: it is cheap to compute again (there is nothing to read), and
    cached it would hide for up to an hour the history that arrives after it was read (usage
    posted late, a registry just started), so a regression's alert would open that much late.
    """
    anchor = window_start.replace(minute=0, second=0, microsecond=0)
    key = f"alerts:latency-baseline:{anchor.isoformat()}"
    cached = cache.get(key)
    if cached:
        return dict(cached)
    baseline = _usage_by_model(anchor - timedelta(days=7), anchor, ("latency_requests", "latency_sum"))
    if baseline:
        cache.set(key, baseline, timeout=3600)
    return baseline


def _model_names(ids: Iterable[int]) -> dict[int, str]:
    return dict(RegisteredModel.objects.filter(pk__in=list(ids)).values_list("pk", "name"))


def check_error_rate(now: datetime) -> CheckResult:
    """Errors / requests over the window above ALERT_ERROR_RATE_THRESHOLD, once there is enough traffic."""
    window = settings.ALERT_WINDOW_MINUTES
    threshold = settings.ALERT_ERROR_RATE_THRESHOLD
    usage = _usage_by_model(now - timedelta(minutes=window), now, ("requests", "errors"))
    names = _model_names(usage)
    result = CheckResult()
    for model_id, totals in usage.items():
        subject: Subject = ("model", model_id)
        requests_seen = totals["requests"]
        if requests_seen < settings.ALERT_MIN_REQUESTS:
            # Too few requests for a rate to mean anything (1 error in 2 requests is not 50%).
            if requests_seen > 0:
                result.undecided.add(subject)
            continue
        rate = totals["errors"] / requests_seen
        if rate > threshold:
            result.firing[subject] = Finding(
                kind=AlertKind.ERROR_RATE,
                subject=subject,
                message=(
                    f"{names.get(model_id, model_id)}: error rate {rate:.1%} over the last {window} min "
                    f"({int(totals['errors'])} of {int(requests_seen)} requests; threshold {threshold:.1%})"
                ),
                details={
                    "error_rate": round(rate, 6),
                    "errors": int(totals["errors"]),
                    "requests": int(requests_seen),
                    "threshold": threshold,
                    "window_minutes": window,
                },
            )
    return result


def check_latency(now: datetime) -> CheckResult:
    """Average latency over the window worse than the model's own previous 7 days by the set percentage."""
    window = settings.ALERT_WINDOW_MINUTES
    percent = settings.ALERT_LATENCY_REGRESSION_PERCENT
    window_start = now - timedelta(minutes=window)
    current = _usage_by_model(window_start, now, ("latency_requests", "latency_sum"))
    baseline = _latency_baseline(window_start)
    names = _model_names(current)
    result = CheckResult()
    for model_id, totals in current.items():
        subject: Subject = ("model", model_id)
        if totals["latency_requests"] < settings.ALERT_MIN_REQUESTS:
            if totals["latency_requests"] > 0:
                result.undecided.add(subject)
            continue
        past = baseline.get(model_id)
        if past is None or past["latency_requests"] < settings.ALERT_MIN_REQUESTS or past["latency_sum"] <= 0:
            continue  # no baseline to regress from
        average = totals["latency_sum"] / totals["latency_requests"]
        reference = past["latency_sum"] / past["latency_requests"]
        worse_by = (average / reference - 1.0) * 100.0
        if worse_by > percent:
            result.firing[subject] = Finding(
                kind=AlertKind.LATENCY,
                subject=subject,
                message=(
                    f"{names.get(model_id, model_id)}: average latency {average:.3f} s over the last {window} min "
                    f"is {worse_by:.0f}% above its 7-day baseline of {reference:.3f} s (threshold {percent:.0f}%)"
                ),
                details={
                    "average_latency": round(average, 6),
                    "baseline_latency": round(reference, 6),
                    "worse_by_percent": round(worse_by, 2),
                    "threshold_percent": percent,
                    "window_minutes": window,
                },
            )
    return result


def check_unavailable(now: datetime) -> CheckResult:
    """A model discovery had listed, unavailable for longer than ALERT_UNAVAILABLE_MINUTES.

    Counted from the moment it became unavailable, as its availability history recorded it (the
    discovery run that no longer found it), not from ``last_seen_at``: discovery refreshes that
    only every DISCOVERY_LAST_SEEN_RESOLUTION_SECONDS (an hour), so it is up to an hour older than
    the disappearance and the alert would fire early and overstate the time. A model without such
    an event (unavailable before the history began) falls back to ``last_seen_at``.

    A model an operator set unavailable by hand (never seen by discovery, or whose unavailability
    an operator decided) is a decision, not an incident. Two queries.
    """
    minutes = settings.ALERT_UNAVAILABLE_MINUTES
    threshold = timedelta(minutes=minutes)
    rows = list(
        RegisteredModel.objects.filter(
            status=ModelStatus.UNAVAILABLE, last_seen_at__isnull=False, last_seen_at__lt=now - threshold
        ).values_list("pk", "name", "last_seen_at")
    )
    events = unavailable_since(model_id for model_id, _, _ in rows)
    result = CheckResult()
    for model_id, name, last_seen in rows:
        if last_seen is None:  # excluded by the filter; narrows the type
            continue
        event = events.get(model_id)
        if event is not None and event.origin == StatusEventOrigin.OPERATOR:
            continue
        since = event.at if event is not None else last_seen
        if now - since <= threshold:
            continue
        subject: Subject = ("model", model_id)
        down_minutes = int((now - since).total_seconds() // 60)
        why = f": {event.cause}" if event is not None and event.cause else ""
        result.firing[subject] = Finding(
            kind=AlertKind.UNAVAILABLE,
            subject=subject,
            message=(
                f"{name}: unavailable for {down_minutes} min (since {since:%Y-%m-%d %H:%M} UTC{why}; "
                f"last seen {last_seen:%Y-%m-%d %H:%M} UTC)"
            ),
            details={
                "unavailable_since": since.isoformat(),
                "last_seen_at": last_seen.isoformat(),
                "threshold_minutes": minutes,
            },
        )
    return result


def check_failing_sources(now: datetime) -> CheckResult:
    """An enabled discovery source whose last ALERT_SOURCE_FAILURES runs or more all failed."""
    limit = settings.ALERT_SOURCE_FAILURES
    rows = ProviderSource.objects.filter(enabled=True, consecutive_failures__gte=limit).values_list(
        "pk", "name", "consecutive_failures", "last_error"
    )
    result = CheckResult()
    for source_id, name, failures, last_error in rows:
        subject: Subject = ("source", source_id)
        result.firing[subject] = Finding(
            kind=AlertKind.SOURCE_FAILING,
            subject=subject,
            message=f"discovery source {name}: {failures} failed runs in a row",
            details={"consecutive_failures": failures, "threshold": limit, "last_error": last_error[:500]},
        )
    return result


CHECKS: dict[str, Callable[[datetime], CheckResult]] = {
    AlertKind.ERROR_RATE: check_error_rate,
    AlertKind.LATENCY: check_latency,
    AlertKind.UNAVAILABLE: check_unavailable,
    AlertKind.SOURCE_FAILING: check_failing_sources,
}


def _subject_of(alert: Alert) -> Subject:
    if alert.model_id is not None:
        return ("model", alert.model_id)
    assert alert.source_id is not None  # the alerts_have_a_subject constraint
    return ("source", alert.source_id)


def _open(finding: Finding, now: datetime) -> Alert | None:
    """Insert the alert; None when one is already open for the subject (constraint, not a read)."""
    subject_type, subject_id = finding.subject
    alert = Alert(
        kind=finding.kind,
        model_id=subject_id if subject_type == "model" else None,
        source_id=subject_id if subject_type == "source" else None,
        message=finding.message,
        details=finding.details,
        opened_at=now,
    )
    try:
        with transaction.atomic():
            alert.save()
    except IntegrityError:
        return None  # a concurrent check opened it first
    return alert


def _unpriced_open_alert(model: RegisteredModel, *, lock: bool) -> Alert | None:
    alerts = Alert.objects.filter(kind=AlertKind.UNPRICED_USAGE, model=model, resolved_at__isnull=True)
    return (alerts.select_for_update() if lock else alerts).first()


@transaction.atomic
def unpriced_usage_open(*, model: RegisteredModel, records: int, now: datetime | None = None) -> Alert | None:
    """Count ``records`` of usage that could not be costed, opening the model's alert on the first of them.

    Once per model: while the alert is open, later records only add to its count (the row is
    locked for the increment, so concurrent batches all count); it is resolved when the model
    gets a price. Returns the alert when this call opened it.
    """
    now = now or timezone.now()
    transaction.on_commit(lambda: metrics.usage_unpriced(model=model.name, records=records))
    finding = Finding(
        kind=AlertKind.UNPRICED_USAGE,
        subject=("model", model.pk),
        message=f"Usage of {model.name} arrives without a cost and the model has no known price: "
        "it is counted, not costed, until a price is set.",
        details={"model": model.name, "records": records},
    )
    alert = _unpriced_open_alert(model, lock=True)
    if alert is None:
        opened = _open(finding, now)
        if opened is not None:
            metrics.alert_opened(kind=opened.kind)
            logger.warning("alert opened: %s", opened.message, extra={"alert_id": opened.pk, "kind": opened.kind})
            events = [alert_payload(opened, "opened")]
            transaction.on_commit(lambda: alert_webhook_post(events))
            return opened
        alert = _unpriced_open_alert(model, lock=True)  # opened by a concurrent batch since the read
    if alert is not None:
        alert.details = {**alert.details, "records": int(alert.details.get("records", 0)) + records}
        alert.save(update_fields=["details"])
    return None


def unpriced_usage_resolve(*, model: RegisteredModel, now: datetime | None = None) -> bool:
    """Resolve the model's unpriced-usage alert (it has a price now); True when one was open."""
    now = now or timezone.now()
    return bool(
        Alert.objects.filter(kind=AlertKind.UNPRICED_USAGE, model=model, resolved_at__isnull=True).update(
            resolved_at=now
        )
    )


def _alert_events(alerts: Iterable[Alert], state: str, *, actor: str = "") -> list[ModelStatusEvent]:
    """The availability history's events of alerts opened or resolved (a model's unavailability or error rate)."""
    return [
        status_event(
            model_id=alert.model_id,
            kind=StatusEventKind.ALERT,
            state=state,
            origin=StatusEventOrigin.OPERATOR if actor else StatusEventOrigin.ALERT_CHECK,
            cause=alert.message
            if state == OPENED
            else f"alert resolved{' by ' + actor if actor else ''}: {alert.message}",
            at=alert.resolved_at if state == RESOLVED and alert.resolved_at else alert.opened_at,
            actor=actor,
            alert_kind=alert.kind,
            alert_id=alert.pk,
        )
        for alert in alerts
        if alert.model_id is not None and alert.kind in AVAILABILITY_ALERT_KINDS
    ]


@transaction.atomic
def alerts_check(*, now: datetime | None = None) -> AlertChanges:
    """Run every alert check, open new alerts and resolve cleared ones; notify after commit."""
    now = now or timezone.now()
    changes = AlertChanges()
    open_alerts = list(Alert.objects.open())
    for kind, check in CHECKS.items():
        result = check(now)
        open_of_kind = {_subject_of(alert): alert for alert in open_alerts if alert.kind == kind}
        for subject, finding in result.firing.items():
            if subject in open_of_kind:
                continue
            alert = _open(finding, now)
            if alert is not None:
                changes.opened.append(alert)
        for subject, alert in open_of_kind.items():
            if subject in result.firing or subject in result.undecided:
                continue
            # Conditional UPDATE: of two concurrent checks, only the one that resolves it notifies.
            if Alert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(resolved_at=now):
                alert.resolved_at = now
                changes.resolved.append(alert)
    status_events_record(_alert_events(changes.opened, OPENED) + _alert_events(changes.resolved, RESOLVED))
    for alert in changes.opened:
        metrics.alert_opened(kind=alert.kind)
        logger.warning("alert opened: %s", alert.message, extra={"alert_id": alert.pk, "kind": alert.kind})
    for alert in changes.resolved:
        metrics.alert_resolved(kind=alert.kind)
        logger.info("alert resolved: %s", alert.message, extra={"alert_id": alert.pk, "kind": alert.kind})
    if any(alert.kind in SELECTION_ALERTS for alert in (*changes.opened, *changes.resolved)):
        # Selection ranks a model with an open error-rate or unavailability alert after the others
        # (registry/selection/explain.py): a cached answer must not outlive the alert's change.
        models_changed()
    if changes.opened or changes.resolved:
        events = [alert_payload(a, "opened") for a in changes.opened] + [
            alert_payload(a, "resolved") for a in changes.resolved
        ]
        transaction.on_commit(lambda: alert_webhook_post(events))
    return changes


@transaction.atomic
def alerts_acknowledge(*, alerts: Iterable[Alert], by: str, now: datetime | None = None) -> int:
    """Mark open, unacknowledged alerts as seen by ``by`` (a username); returns how many changed.

    Each change is audited under the caller's actor (``acting_as``): alerts are not registered with
    auditlog (the checks open and close them all day), so an operator's decision is logged here.
    """
    now = now or timezone.now()
    changed = []
    for alert in alerts:
        if alert.resolved_at is None and not alert.acknowledged_at:
            alert.acknowledged_at, alert.acknowledged_by = now, by
            alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
            changed.append(alert)
    log_bulk(
        "update",
        changed,
        [{"acknowledged_at": ["None", now.isoformat()], "acknowledged_by": ["None", by]} for _ in changed],
    )
    return len(changed)


@transaction.atomic
def alerts_resolve(*, alerts: Iterable[Alert], by: str, now: datetime | None = None) -> list[Alert]:
    """Resolve open alerts by hand (audited); the check opens a new one if the condition still holds.

    Notifies after commit.
    """
    now = now or timezone.now()
    resolved = []
    for alert in alerts:
        # Conditional UPDATE, as alerts_check does: a concurrent check's resolution is not overwritten.
        if Alert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(resolved_at=now, resolved_by=by):
            alert.resolved_at, alert.resolved_by = now, by
            resolved.append(alert)
            metrics.alert_resolved(kind=alert.kind)
            logger.info("alert resolved by %s: %s", by, alert.message, extra={"alert_id": alert.pk, "kind": alert.kind})
    status_events_record(_alert_events(resolved, RESOLVED, actor=by))
    # Audited under the caller's actor, as an acknowledgement is (see alerts_acknowledge).
    log_bulk(
        "update", resolved, [{"resolved_at": ["None", now.isoformat()], "resolved_by": ["None", by]} for _ in resolved]
    )
    if resolved:
        events = [alert_payload(alert, "resolved") for alert in resolved]
        transaction.on_commit(lambda: alert_webhook_post(events))
    return resolved


def alert_payload(alert: Alert, event: str) -> dict[str, Any]:
    """The JSON document a webhook receives for one alert event."""
    return {
        "event": event,
        "id": alert.pk,
        "kind": alert.kind,
        "model": alert.model.name if alert.model is not None else None,
        "source": alert.source.name if alert.source is not None else None,
        "message": alert.message,
        "details": alert.details,
        "opened_at": alert.opened_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def alert_webhook_post(events: list[dict[str, Any]]) -> int:
    """POST each event to ALERT_WEBHOOK_URL; returns how many the receiver accepted (2xx). Never raises."""
    url = settings.ALERT_WEBHOOK_URL
    if not url:
        return 0
    # The URL may carry a token (Slack, ntfy): only its host is ever logged.
    host = urlsplit(url).netloc.rpartition("@")[2]
    accepted = 0
    for event in events:
        try:
            response = requests.post(url, json=event, timeout=settings.ALERT_WEBHOOK_TIMEOUT)
            response.raise_for_status()
        except requests.RequestException as exc:
            metrics.alert_webhook_failed()
            reason = f"HTTP {exc.response.status_code}" if exc.response is not None else type(exc).__name__
            logger.warning("alert webhook to %s failed (%s) for alert %s", host, reason, event["id"])
            continue
        accepted += 1
    return accepted


@transaction.atomic
def alert_schedule_ensure() -> PeriodicTask:
    """Create the periodic alert check if it is missing; an existing one is left as the operator set it.

    Upserted, never wiped and rebuilt: an interval changed or a task disabled in the admin
    survives a restart or a deploy.
    """
    existing = PeriodicTask.objects.filter(name=ALERT_SCHEDULE_NAME).first()
    if existing is not None:
        return existing
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=settings.ALERT_CHECK_INTERVAL_SECONDS, period=IntervalSchedule.SECONDS
    )
    return PeriodicTask.objects.create(
        name=ALERT_SCHEDULE_NAME,
        task=ALERT_TASK_NAME,
        interval=interval,
        description="Opens and resolves alerts (registry/telemetry/alerts.py); thresholds from the ALERT_* settings.",
    )
