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


def _claim(uid: str) -> bool:
    """Insert the entry's id into usage_buffer_applied; False when it is there already (written before).

    ON CONFLICT DO NOTHING: should two drains ever overlap (a lock that expired under a paused
    worker), the second waits for the first's row to commit and then finds it, instead of failing.
    """
    table = connection.ops.quote_name(UsageBufferApplied._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (entry, applied_at) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING entry",  # noqa: S608 (a quoted identifier; values bound)
            [uid, timezone.now()],
        )
        return cursor.fetchone() is not None


def _model(ref: str, models: dict[str, RegisteredModel]) -> RegisteredModel:
    if ref not in models:
        try:
            models[ref] = model_get(ref, related=False)
        except RegisteredModel.DoesNotExist as exc:
            raise _Undeliverable(f"no model {ref!r}: deleted or renamed since the post") from exc
    return models[ref]


def _write(entry: BufferEntry, models: dict[str, RegisteredModel]) -> int:
    """Write one entry's records through the ingestion service; the number written."""
    model = _model(entry.fields["ref"], models)
    records = records_decode(entry.fields["records"])
    if entry.fields.get("kind") == UsageKind.ROUTER:
        names = {str(model.pk), model.name}
        if any(record.get("model_id") is not None and record["model_id"] not in names for record in records):
            # Checked at post time when the database answers; here, once the URL's model is known again.
            raise _Undeliverable(f"a record's model_id does not name the model of the URL ({model.pk}, {model.name!r})")
        return usage_record_idempotent(model=model, records=records)
    return usage_record_batch(model=model, records=records)


def _dead_details(reason: str) -> dict[str, str]:
    return {"reason": reason, "dead_at": timezone.now().isoformat()}


def _drain_batch(entries: Sequence[BufferEntry], outcome: DrainOutcome) -> None:
    """Write ``entries`` in order in one transaction, then remove them from Redis.

    Each entry in a savepoint of its own: one the database refuses is dead-lettered without undoing
    the others. Raises OperationalError/InterfaceError (database gone: nothing of the batch is
    written or removed) and RedisError (written, not yet removed: the next drain finds them applied).
    """
    written: list[BufferEntry] = []
    dead: list[tuple[BufferEntry, dict[str, str]]] = []
    records = 0
    fresh = 0
    removed_records = 0
    models: dict[str, RegisteredModel] = {}
    with transaction.atomic():
        for entry in entries:
            count = int(entry.fields.get("count", 0))
            removed_records += count
            try:
                with transaction.atomic():
                    if not _claim(entry.fields["uid"]):
                        # Written by a drain that died before removing it from Redis: only remove it now.
                        outcome.already_applied += 1
                        written.append(entry)
                        continue
                    records += _write(entry, models)
                    fresh += 1
            except (_Undeliverable, UsageRejected, IntegrityError, DataError, KeyError, ValueError) as exc:
                reason = exc.message if isinstance(exc, UsageRejected) else str(exc)
                dead.append((entry, _dead_details(f"{type(exc).__name__}: {reason}")))
                continue
            written.append(entry)
    usage_buffer.buffer_remove(written, dead, records=removed_records)
    # The markers of removed entries are no longer needed: their entries cannot come back.
    UsageBufferApplied.objects.filter(entry__in=[entry.fields.get("uid", "") for entry in written]).delete()
    outcome.entries += fresh
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
                    logger.warning("usage buffer: the database is unreachable, draining later: %s", exc)
                    outcome.stopped = "database"
                    break
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


def _forget_markers() -> None:
    """With the buffer empty (and the lock held), every marker is of an entry gone for good: delete them all.

    Removes the markers a drain that died after removing its entries from Redis left behind.
    """
    if not usage_buffer.client().xlen(usage_buffer.STREAM):
        UsageBufferApplied.objects.all().delete()
