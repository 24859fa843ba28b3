"""Usage posted while PostgreSQL cannot be reached: kept in Redis, written once the database is back.

A post whose database is unreachable is validated as far as it can be without the database (every
field of every record), stamped with the moment it was received (a record without a ``timestamp``
is usage of that moment, not of the moment it is written), and appended to the buffer
(registry/operations/usage_buffer.py) as one entry: the model reference of its URL, which kind of
write it is, and its records. The API then answers that it is buffered.

``usage_buffer_drain`` (the beat task ``registry: usage buffer``) writes the entries in the order
they were answered, through the same ingestion functions a post calls, so the cost is computed at
the price in force at each record's moment and a ``request_id`` is stored once per model, across
the buffer as outside it. The model reference is resolved then: an entry whose model no longer
resolves (deleted, renamed), or that the database refuses, goes to the dead-letter list, counted
and logged, never dropped.

Exactly once, a worker dying included: each entry carries its own id (a UUID), which the drain
inserts into ``usage_buffer_applied`` in the transaction that writes the entry's records. Only after
that commit is the entry removed from Redis; a drain that died in between leaves the entry in
Redis, and the next drain finds its id already applied and only removes it. An id of the entry's
own rather than a watermark of stream ids: stream ids start again from the clock when Redis loses
its data or fails over, and a watermark would then skip new entries as old ones.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from django.conf import settings
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from registry.catalog.selectors import model_get
from registry.models import RegisteredModel, UsageBufferApplied
from registry.operations import metrics, usage_buffer
from registry.operations.usage_buffer import BufferEntry, BufferUnavailable
from registry.telemetry.services import UsageRejected, usage_record_batch, usage_record_idempotent

logger = logging.getLogger(__name__)

# How long one drain may hold the lock before extending it; a drain that dies frees it this soon.
_LOCK_SECONDS: Final = 60
# One run writes at most this long, then lets the next beat continue: a task never runs for ever.
_RUN_SECONDS: Final = 45
# Records written by one call of the ingestion service: the API's largest batch.
_RUN_RECORDS: Final = 1000


class UsageKind(StrEnum):
    """Which write a buffered post stands for."""

    RECORDS = "records"  # POST /models/{ref}/usage: usage_record_batch
    ROUTER = "router"  # the router's metrics (PLATFORM_API_COMPAT=alfred): usage_record_idempotent


class _Undeliverable(Exception):
    """An entry that can never be written as it is: to the dead-letter list."""


def _encoded(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    raise TypeError(f"{type(value).__name__} cannot be buffered")


def _decoded(value: dict[str, Any]) -> Any:
    if value.keys() == {"$datetime"}:
        return datetime.fromisoformat(value["$datetime"])
    if value.keys() == {"$decimal"}:
        return Decimal(value["$decimal"])
    return value


def records_encode(records: Sequence[Mapping[str, Any]]) -> str:
    """Validated records as JSON, datetimes and decimals kept exactly (a float would round a cost)."""
    return json.dumps(list(records), default=_encoded, separators=(",", ":"))


def records_decode(text: str) -> list[dict[str, Any]]:
    return list(json.loads(text, object_hook=_decoded))


def usage_buffer_keep(*, ref: str, kind: UsageKind, records: Sequence[Mapping[str, Any]]) -> int:
    """Keep validated ``records`` for the model ``ref`` in the buffer; how many. Raises BufferUnavailable.

    A record without a ``timestamp`` gets the moment it was received: it is usage of now, costed
    at now's price, however late it is written.
    """
    received = timezone.now()
    stamped = [{**record, "timestamp": record.get("timestamp") or received} for record in records]
    usage_buffer.buffer_append(
        {
            "uid": uuid.uuid4().hex,
            "ref": ref,
            "kind": str(kind),
            "received": received.isoformat(),
            "count": str(len(stamped)),
            "records": records_encode(stamped),
        },
        records=len(stamped),
    )
    metrics.usage_buffered(records=len(stamped))
    return len(stamped)


@dataclass
class DrainOutcome:
    """What one drain did: entries and records written, entries already applied, entries dead-lettered."""

    entries: int = 0
    records: int = 0
    already_applied: int = 0
    dead: int = 0
    # Why it stopped before the buffer was empty: "locked" (another drain runs), "database"
    # (unreachable again), "redis", "disabled", "time" (the run's budget; the next beat continues).
    stopped: str | None = None
    dead_entries: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "records": self.records,
            "already_applied": self.already_applied,
            "dead": self.dead,
            "stopped": self.stopped,
        }


def _claim(uids: Sequence[str]) -> set[str]:
    """Insert the entries' ids into usage_buffer_applied; those that were not there yet (not written before).

    ON CONFLICT DO NOTHING: should two drains ever overlap (a lock that expired under a paused
    worker), the second waits for the first's rows to commit and then finds them, instead of failing.
    """
    table = connection.ops.quote_name(UsageBufferApplied._meta.db_table)
    now = timezone.now()
    values = ", ".join(["(%s, %s)"] * len(uids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (entry, applied_at) VALUES {values} ON CONFLICT DO NOTHING RETURNING entry",  # noqa: S608 (a quoted identifier; values bound)
            [value for uid in uids for value in (uid, now)],
        )
        return {row[0] for row in cursor.fetchall()}


def _model(ref: str, models: dict[str, RegisteredModel]) -> RegisteredModel:
    if ref not in models:
        try:
            models[ref] = model_get(ref, related=False)
        except RegisteredModel.DoesNotExist as exc:
            raise _Undeliverable(f"no model {ref!r}: deleted or renamed since the post") from exc
    return models[ref]


def _write(entries: Sequence[BufferEntry], models: dict[str, RegisteredModel]) -> int:
    """Write entries of one model and kind through the ingestion service, in one call; the number written."""
    model = _model(entries[0].fields["ref"], models)
    records = [record for entry in entries for record in records_decode(entry.fields["records"])]
    if entries[0].fields.get("kind") == UsageKind.ROUTER:
        names = {str(model.pk), model.name}
        if any(record.get("model_id") is not None and record["model_id"] not in names for record in records):
            # Checked at post time when the database answers; here, once the URL's model is known again.
            raise _Undeliverable(f"a record's model_id does not name the model of the URL ({model.pk}, {model.name!r})")
        return usage_record_idempotent(model=model, records=records)
    return usage_record_batch(model=model, records=records)


def _runs(entries: Sequence[BufferEntry]) -> list[list[BufferEntry]]:
    """Consecutive entries of the same model reference and kind, up to 1,000 records a run (an API batch)."""
    runs: list[list[BufferEntry]] = []
    held = 0
    for entry in entries:
        count = int(entry.fields.get("count", 0))
        previous = runs[-1][-1].fields if runs else None
        same = previous is not None and (previous.get("ref"), previous.get("kind")) == (
            entry.fields.get("ref"),
            entry.fields.get("kind"),
        )
        if same and held + count <= _RUN_RECORDS:
            runs[-1].append(entry)
            held += count
        else:
            runs.append([entry])
            held = count
    return runs


def _dead_details(exc: Exception) -> dict[str, str]:
    reason = exc.message if isinstance(exc, UsageRejected) else str(exc)
    return {"reason": f"{type(exc).__name__}: {reason}", "dead_at": timezone.now().isoformat()}


def _apply(run: Sequence[BufferEntry], models: dict[str, RegisteredModel], outcome: DrainOutcome) -> int:
    """Claim and write ``run`` in a savepoint: all of it or none of it. The number of records written."""
    with transaction.atomic():
        claimed = _claim([entry.fields["uid"] for entry in run])
        todo = [entry for entry in run if entry.fields["uid"] in claimed]
        written = _write(todo, models) if todo else 0
    # Entries claimed before were written by a drain that died before removing them from Redis.
    outcome.already_applied += len(run) - len(todo)
    outcome.entries += len(todo)
    return written


_REFUSED = (_Undeliverable, UsageRejected, IntegrityError, DataError, KeyError, ValueError)


def _drain_batch(entries: Sequence[BufferEntry], outcome: DrainOutcome) -> None:
    """Write ``entries`` in order in one transaction, then remove them from Redis.

    Consecutive posts of the same model go in with one call of the ingestion service (the drain
    writes as fast as a batch post, measured in docs/BENCHMARKS.md); should the database refuse
    such a run, its posts are retried one by one, each in a savepoint of its own, so that only the
    refused one is dead-lettered. Raises OperationalError/InterfaceError (database gone: nothing of
    the batch is written or removed) and RedisError (written, not yet removed: the next drain finds
    them applied).
    """
    done: list[BufferEntry] = []
    dead: list[tuple[BufferEntry, dict[str, str]]] = []
    records = 0
    models: dict[str, RegisteredModel] = {}
    with transaction.atomic():
        for run in _runs(entries):
            try:
                records += _apply(run, models, outcome)
                done.extend(run)
                continue
            except _REFUSED as exc:
                if len(run) == 1:
                    dead.append((run[0], _dead_details(exc)))
                    continue
            for entry in run:
                try:
                    records += _apply([entry], models, outcome)
                except _REFUSED as exc:
                    dead.append((entry, _dead_details(exc)))
                    continue
                done.append(entry)
    removed_records = sum(int(entry.fields.get("count", 0)) for entry in [*done, *(entry for entry, _ in dead)])
    usage_buffer.buffer_remove(done, dead, records=removed_records)
    # The markers of removed entries are no longer needed: their entries cannot come back.
    UsageBufferApplied.objects.filter(entry__in=[entry.fields.get("uid", "") for entry in done]).delete()
    outcome.records += records
    outcome.dead += len(dead)
    metrics.usage_buffer_drained(written=records, dead=sum(int(entry.fields.get("count", 0)) for entry, _ in dead))
    for entry, details in dead:
        outcome.dead_entries.append(entry.id)
        logger.warning(
            "usage buffer: entry %s (%s records for model %r, received %s) moved to the dead-letter list: %s",
            entry.id,
            entry.fields.get("count"),
            entry.fields.get("ref"),
            entry.fields.get("received"),
            details["reason"],
        )


def usage_buffer_drain(*, batch_size: int | None = None, max_seconds: float = _RUN_SECONDS) -> DrainOutcome:
    """Write buffered usage to the database, oldest first, in batches; one drain at a time (a Redis lock).

    Stops at the first database failure (the entries stay, the next run retries them), when the
    buffer is empty, or after ``max_seconds`` (the next beat continues). Safe to run twice: the
    second finds the lock held and returns at once.
    """
    outcome = DrainOutcome()
    size = batch_size or settings.USAGE_BUFFER_DRAIN_BATCH
    try:
        if not usage_buffer.client().xlen(usage_buffer.STREAM):
            return outcome  # the common case, every few seconds: one Redis call, no database
        with usage_buffer.drain_lock(_LOCK_SECONDS) as lock:
            if lock is None:
                outcome.stopped = "locked"
                return outcome
            deadline = time.monotonic() + max_seconds
            while entries := usage_buffer.buffer_head(size):
                if time.monotonic() > deadline:
                    outcome.stopped = "time"
                    break
                try:
                    _drain_batch(entries, outcome)
                except (OperationalError, InterfaceError) as exc:
                    # Gone again: drop the broken connection so the next run reconnects.
                    connection.close()
                    _outage.failed(exc)
                    outcome.stopped = "database"
                    break
                _outage.answered()
                lock.extend(_LOCK_SECONDS, replace_ttl=True)
            else:
                _forget_markers()
    except BufferUnavailable:
        outcome.stopped = "disabled"
    except RedisError as exc:
        logger.warning("usage buffer: Redis is unreachable, draining later: %s", exc)
        outcome.stopped = "redis"
    if outcome.entries or outcome.dead:
        logger.info(
            "usage buffer: wrote %d records of %d posts, %d posts dead-lettered%s",
            outcome.records,
            outcome.entries,
            outcome.dead,
            f", stopped ({outcome.stopped})" if outcome.stopped else "",
        )
    return outcome


class _DatabaseOutage:
    """This process's memory of an outage, so that a drain every few seconds logs it twice, not every time."""

    def __init__(self) -> None:
        self.since: float | None = None

    def failed(self, exc: Exception) -> None:
        if self.since is None:
            self.since = time.monotonic()
            logger.warning("usage buffer: the database is unreachable, draining when it answers: %s", exc)
        else:
            logger.debug("usage buffer: the database is still unreachable: %s", exc)

    def answered(self) -> None:
        if self.since is not None:
            away = time.monotonic() - self.since
            self.since = None
            logger.warning("usage buffer: the database answers again after %.0f s, draining", away)


_outage = _DatabaseOutage()


def _forget_markers() -> None:
    """With the buffer empty (and the lock held), every marker is of an entry gone for good: delete them all.

    Removes the markers a drain that died after removing its entries from Redis left behind; should
    the database fail now, the next empty drain removes them.
    """
    if not usage_buffer.client().xlen(usage_buffer.STREAM):
        try:
            UsageBufferApplied.objects.all().delete()
        except (OperationalError, InterfaceError):
            connection.close()
