"""What Ollama hosts have loaded now (``GET /api/ps``), recorded per (model, source).

Two writers: every discovery run of an Ollama source (after its sync), and ``runtime_poll``, the
light periodic task that only asks ``/api/ps``. Both go through ``runtime_record``, which upserts
the source's rows in a fixed number of queries whatever the number of models.

- A row per (model, source): a model loaded on two hosts has two rows. A model a poll no longer
  lists keeps its row, ``loaded=False`` with that poll's ``checked_at`` ("checked, not loaded");
  no row means the host was never asked about it.
- Entries are matched to models by exact name, as discovery matches ``/api/tags`` names. A loaded
  model with no registered model of its name is reported (``unregistered``): a discovery run
  registers it, the poll queues one.
- Observations, not changes: no audit entries (a 30 s poll would drown the audit log). A model
  loaded or unloaded since the host's last check is an event of its availability history
  (registry.telemetry.availability), one row per change, not per poll. The read
  cache is invalidated by every write, which is every poll that finds rows: model bodies show
  ``checked_at``, and a cached body never shows an older one than the table holds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from discovery.clients import fetch_loaded
from discovery.clients.base import LoadedModel, ProviderError
from discovery.locks import runtime_lock
from discovery.models import DiscoveryRun, ProviderSource
from registry.catalog.credentials import redact_text
from registry.models import ModelRuntime, ModelStatusEvent, RegisteredModel, StatusEventKind, StatusEventOrigin
from registry.operations import metrics
from registry.reads.cache import models_changed
from registry.telemetry.availability import LOADED, UNLOADED, status_event, status_events_record

logger = logging.getLogger(__name__)

NAME_MAX_LENGTH = 100  # models.name: a longer name can never be registered, so it is never asked for
# A poll that sees an unregistered loaded model queues a discovery run unless one started this recently.
DISCOVERY_GAP = timedelta(seconds=60)
VALUE_FIELDS = ("loaded", "size_vram", "context_length", "expires_at")


@dataclass(frozen=True)
class RuntimeRecorded:
    """What ``runtime_record`` did: the loaded names it matched, those it could not, and rows written."""

    loaded: list[str] = field(default_factory=list)
    unregistered: list[str] = field(default_factory=list)
    created: int = 0
    changed: int = 0
    rows: int = 0
    stale: bool = False


def _values(entry: LoadedModel | None) -> dict[str, Any]:
    if entry is None:
        # Not loaded: what it used while it was is no longer true of the host.
        return {"loaded": False, "size_vram": None, "context_length": None, "expires_at": None}
    return {
        "loaded": True,
        # BigIntegerField: no GPU holds 2**63 bytes; unknown rather than a failed write.
        "size_vram": entry.size_vram if entry.size_vram is not None and entry.size_vram < 2**63 else None,
        # PositiveIntegerField: past 2**31 - 1 is no context a host allocates; unknown rather than a failed write.
        "context_length": entry.context_length if entry.context_length and entry.context_length < 2**31 else None,
        "expires_at": entry.expires_at,
    }


def runtime_record(*, source: ProviderSource, entries: Sequence[LoadedModel], checked_at: datetime) -> RuntimeRecorded:
    """Record that ``source``'s host listed ``entries`` as loaded at ``checked_at`` (when it answered).

    Four queries (lock, names, rows, one upsert), and a fifth when a model was loaded or unloaded
    since the last check (its availability history's events), whatever the number of entries on PostgreSQL
    (SQLite splits the upsert at its parameter limit); one for an idle host that never had a model
    loaded. An observation older than the
    rows already stored (a slow poll overtaken by a faster one) is dropped.
    """
    wanted: dict[str, LoadedModel] = {}
    for entry in entries:
        if len(entry.name) <= NAME_MAX_LENGTH:
            wanted.setdefault(entry.name, entry)
    if not wanted and not ModelRuntime.objects.filter(source=source).exists():
        return RuntimeRecorded()  # nothing loaded, nothing recorded before: nothing to write
    with transaction.atomic():
        return _record(source, wanted, checked_at)


def _record(source: ProviderSource, wanted: dict[str, LoadedModel], checked_at: datetime) -> RuntimeRecorded:
    runtime_lock(source)
    ids = dict(RegisteredModel.objects.filter(name__in=list(wanted)).values_list("name", "pk")) if wanted else {}
    existing = {row.model_id: row for row in ModelRuntime.objects.filter(source=source)}
    if any(row.checked_at > checked_at for row in existing.values()):
        return RuntimeRecorded(stale=True)
    desired: dict[int, dict[str, Any]] = {pk: _values(wanted[name]) for name, pk in ids.items()}
    for model_id in existing:
        desired.setdefault(model_id, _values(None))
    created = sum(1 for model_id in desired if model_id not in existing)
    changed = sum(
        1
        for model_id, row in existing.items()
        if any(getattr(row, name) != value for name, value in desired[model_id].items())
    )
    if desired:
        # Every row of the source was checked now: one upsert writes new rows, changed values and
        # the new checked_at alike (bulk_update's CASE per row and column took seconds at 1,000 rows).
        ModelRuntime.objects.bulk_create(
            [
                ModelRuntime(model_id=model_id, source=source, checked_at=checked_at, **values)
                for model_id, values in desired.items()
            ],
            update_conflicts=True,
            unique_fields=["model", "source"],
            update_fields=[*VALUE_FIELDS, "checked_at"],
        )
        models_changed()
    status_events_record(_loaded_changes(source, existing, desired, checked_at))
    return RuntimeRecorded(
        loaded=sorted(ids),
        unregistered=sorted(set(wanted) - set(ids)),
        created=created,
        changed=changed,
        rows=len(desired),
    )


def _loaded_changes(
    source: ProviderSource,
    existing: dict[int, ModelRuntime],
    desired: dict[int, dict[str, Any]],
    checked_at: datetime,
) -> list[ModelStatusEvent]:
    """The availability history's events of a check: each model the host loaded or unloaded since the last one.

    A model first seen not loaded is no event (there is no row then: new rows are loaded ones).
    """
    events = []
    for model_id, values in desired.items():
        row = existing.get(model_id)
        was_loaded = row.loaded if row is not None else False
        if values["loaded"] == was_loaded:
            continue
        loaded = bool(values["loaded"])
        events.append(
            status_event(
                model_id=model_id,
                kind=StatusEventKind.RUNTIME,
                state=LOADED if loaded else UNLOADED,
                origin=StatusEventOrigin.RUNTIME,
                cause=f"host {source.name} {'lists it' if loaded else 'no longer lists it'} as loaded (GET /api/ps)",
                at=checked_at,
                source_id=source.pk,
            )
        )
    return events


class _FailureLog:
    """One warning when a source's polls start failing and one when they succeed again, per process.

    A host that is down for an hour would otherwise log a warning every poll interval.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failing: set[int] = set()

    def failed(self, source: ProviderSource, message: str) -> None:
        with self._lock:
            first = source.pk not in self._failing
            self._failing.add(source.pk)
        if first:
            logger.warning(
                "runtime poll of source %s failed (no further warning until it succeeds): %s", source.name, message
            )
        else:
            logger.debug("runtime poll of source %s still failing: %s", source.name, message)

    def succeeded(self, source: ProviderSource) -> None:
        with self._lock:
            if source.pk not in self._failing:
                return
            self._failing.discard(source.pk)
        logger.warning("runtime poll of source %s succeeds again", source.name)


failure_log = _FailureLog()


@dataclass(frozen=True)
class RuntimePoll:
    """The outcome of one poll: ``succeeded`` or ``failed`` (with why), and whether discovery should run."""

    status: str
    error: str = ""
    recorded: RuntimeRecorded | None = None
    needs_discovery: bool = False


def runtime_poll(*, source: ProviderSource) -> RuntimePoll:
    """Ask ``source``'s host what it has loaded and record it; never raises.

    No retry within a poll (the next poll is the retry). ``needs_discovery`` is set when the host
    has a model loaded that is not registered and no discovery run of the source started in the
    last ``DISCOVERY_GAP``: the caller queues one, which registers it.
    """
    try:
        entries = fetch_loaded(source, max_retries=0)
        checked_at = timezone.now()
        recorded = runtime_record(source=source, entries=entries, checked_at=checked_at)
        needs_discovery = bool(recorded.unregistered) and not (
            DiscoveryRun.objects.filter(source=source, started_at__gte=checked_at - DISCOVERY_GAP).exists()
        )
    except ProviderError as exc:
        return _poll_failed(source, redact_text(str(exc)))
    except Exception as exc:
        # A database failure (or a bug): counted and logged like a provider's, never raised into Celery.
        return _poll_failed(source, redact_text(f"unexpected error while recording runtime: {exc!r}")[:2000])
    failure_log.succeeded(source)
    metrics.runtime_polled(source=source.name, status="succeeded")
    return RuntimePoll(status="succeeded", recorded=recorded, needs_discovery=needs_discovery)


def _poll_failed(source: ProviderSource, message: str) -> RuntimePoll:
    failure_log.failed(source, message)
    metrics.runtime_polled(source=source.name, status="failed")
    return RuntimePoll(status="failed", error=message)
