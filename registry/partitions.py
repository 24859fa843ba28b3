"""The daily partitions of ``model_usage`` on PostgreSQL: created ahead and on demand, dropped by retention.

``model_usage`` is partitioned by range of ``timestamp``, one partition per UTC day named
``model_usage_pYYYYMMDD`` (migration 0018). An install upgraded from the single table keeps its
old rows in ``model_usage_legacy``, the partition of every moment before its first day.

Partitions exist ``DAYS_AHEAD`` days ahead (the migration, then each retention run), so a record
of today or the next days always has one. A record of another day (a backfill, a clock far off)
gets its partition created by the batch that brings it (``usage_partitions_ensure``), in the
batch's transaction: created apart, then attached, under a lock that reads and inserts of
``model_usage`` do not wait on but that another day's creation or a prune's detach does, until the
batch commits. So it is for the rare day, never the current one.

Retention drops a whole day once all of it is past ``RETENTION_USAGE_DAYS``: ``DETACH PARTITION
... CONCURRENTLY`` (readers and writers of other days never wait on it), then ``DROP TABLE``.

On SQLite (the embedded mode) ``model_usage`` is one table and every function here is a no-op.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from django.db import connection, transaction

logger = logging.getLogger(__name__)

TABLE: Final = "model_usage"
LEGACY: Final = "model_usage_legacy"
DAYS_AHEAD: Final = 7
LOCK_NAMESPACE: Final = 0x4D5204  # "MR" + 4: registry/operations/locks.py lists the others
_DAILY: Final = re.compile(r"^model_usage_p(\d{8})$")


@dataclass(frozen=True)
class Partition:
    """One partition of ``model_usage``: a UTC day's, or the legacy one (``start`` None: from the beginning)."""

    name: str
    start: datetime | None
    end: datetime


def partitioned() -> bool:
    """Whether ``model_usage`` is partitioned here (PostgreSQL)."""
    return connection.vendor == "postgresql"


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def partition_name(day: date) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def usage_partitions() -> list[Partition]:
    """The partitions of ``model_usage``, oldest first ([] on SQLite)."""
    if not partitioned():
        return []
    found = []
    for name in _partition_names(detach_pending=False):
        if match := _DAILY.match(name):
            start = day_start(datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC).date())
            found.append(Partition(name, start, start + timedelta(days=1)))
        elif name == LEGACY:
            found.append(Partition(name, None, _legacy_end()))
    return sorted(found, key=lambda p: p.end)


def _partition_names(*, detach_pending: bool) -> list[str]:
    """The partitions of ``model_usage`` attached (``detach_pending`` False) or being detached."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s) AND i.inhdetachpending = %s",
            [TABLE, detach_pending],
        )
        return [name for (name,) in cursor.fetchall()]


def _legacy_end() -> datetime:
    """The legacy partition's upper bound, as the migration attached it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (regexp_match(pg_get_expr(relpartbound, oid), 'TO \\(''([^'']+)''\\)'))[1] "
            "FROM pg_class WHERE oid = to_regclass(%s)",
            [LEGACY],
        )
        (bound,) = cursor.fetchone()
    return datetime.fromisoformat(bound).astimezone(UTC)


def usage_partitions_ensure(moments: Iterable[datetime]) -> list[str]:
    """Create the daily partitions that records at ``moments`` need and lack; the names created.

    One catalog query when every day has its partition (the common case: today's exists ahead).
    """
    if not partitioned():
        return []
    days = sorted({moment.astimezone(UTC).date() for moment in moments})
    if not days:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NULL",
            [[partition_name(day) for day in days]],
        )
        missing = {name for (name,) in cursor.fetchall()}
    if not missing:
        return []
    legacy_end = _legacy_end() if _exists(LEGACY) else None
    wanted = [
        day for day in days if partition_name(day) in missing and (legacy_end is None or day_start(day) >= legacy_end)
    ]  # a day before legacy_end is the legacy partition's
    created = [partition_name(day) for day in wanted if _create(day)]
    if created:
        logger.info("usage partitions created: %s", ", ".join(created))
    return created


def _create(day: date) -> bool:
    """Create and attach ``day``'s partition unless another transaction just did; whether this one did.

    Created apart and then attached: ``ATTACH PARTITION`` takes a lock that reads and inserts of
    ``model_usage`` do not wait on (``CREATE TABLE ... PARTITION OF`` would take one they all
    wait on). The transaction's advisory lock on the day serializes two batches that both need it.
    """
    name = partition_name(day)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, int(f"{day:%Y%m%d}")])
        cursor.execute("SELECT to_regclass(%s) IS NULL", [name])
        if not cursor.fetchone()[0]:
            return False
        cursor.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(
            f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
            [day_start(day), day_start(day + timedelta(days=1))],
        )
    return True


def usage_partitions_ahead(now: datetime) -> list[str]:
    """Make sure today and the next ``DAYS_AHEAD`` days have their partitions; the names created."""
    today = now.astimezone(UTC).date()
    return usage_partitions_ensure(day_start(today + timedelta(days=n)) for n in range(DAYS_AHEAD + 1))


def _exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        (exists,) = cursor.fetchone()
    return bool(exists)


def partition_rows(name: str) -> int:
    """The rows of one partition, counted (what its drop removes)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(name)}")  # noqa: S608 (a partition's name)
        (rows,) = cursor.fetchone()
    return int(rows)


def partition_drop(name: str) -> None:
    """Detach ``name`` from ``model_usage`` and drop it.

    Outside a transaction the detach is ``CONCURRENTLY``: it waits for the transactions that may
    read the partition to end, and nothing waits on it. Inside one (a test's), PostgreSQL refuses
    that form, and the plain detach locks ``model_usage`` until the transaction ends.
    """
    quoted = connection.ops.quote_name(name)
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            # Rows inserted earlier in the same transaction leave deferred foreign-key checks, which
            # PostgreSQL will not drop a table under: run them now, then defer again.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {quoted}")
        else:
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {quoted} CONCURRENTLY")
        cursor.execute(f"DROP TABLE {quoted}")


def partitions_finish_detaching() -> list[str]:
    """Finish and drop the partitions whose concurrent detach was interrupted (a killed prune); their names."""
    if not partitioned():
        return []
    pending = _partition_names(detach_pending=True)
    with connection.cursor() as cursor:
        for name in pending:
            quoted = connection.ops.quote_name(name)
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {quoted} FINALIZE")
            cursor.execute(f"DROP TABLE {quoted}")
    return pending
