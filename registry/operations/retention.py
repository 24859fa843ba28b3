"""Retention: what leaves the tables that grow, in bounded batches, one pruner at a time.

Each pruned table has a setting (``RETENTION_*_DAYS``, 0 keeps it for ever) and a time column;
rows older than the cutoff go, ``RETENTION_BATCH_SIZE`` at a time: the ids of a batch are read
first, oldest ids first, and deleted by primary key in a transaction of their own, so a batch holds
its row locks for milliseconds and ingestion or a read never waits on a whole prune.

The deletes go through ``QuerySet.delete()``, which Django turns into one ``DELETE ... WHERE id IN
(...)`` when no signal handler and no cascade is attached to the model ("fast delete"): none of
these tables is registered with auditlog (registry/access/audit.py), so removing history writes no
audit entry per row. tests/registry/operations/test_retention.py bounds the queries per batch and
would catch a handler added later.

Raw usage (``model_usage``) leaves a whole UTC day at a time. On PostgreSQL the table is
partitioned by day (registry/partitions.py): a day wholly past the cutoff is detached
and dropped, not deleted row by row (one day of 1.1 million rows took 31.8 s to delete, and slowed
reads to 588 ms meanwhile; docs/BENCHMARKS.md), and the batches only meet the rows of an upgraded
install's legacy partition. Each prune also creates the partitions of the days ahead.

Hourly usage rollups (``model_usage_rollup``, registry/telemetry/rollups.py) have a retention of
their own, longer than the raw rows': pruning raw usage leaves them as they are.

Runtime observations (``model_runtime``) are not pruned: one row per model and host, overwritten by
each poll, it does not accumulate history.

Pruning changes no cached read: the cache holds model reads (registry/reads/cache.py), and the
statistics that read usage are computed per request (from rollups for whole hours, so a prune of
raw rows does not change them), so the cache generation is not bumped.

A prune holds a lock for its whole run, so that two beats (or a beat and ``manage.py prune``)
never prune together: a PostgreSQL session advisory lock, released by PostgreSQL if the process
dies; on SQLite (the embedded mode, one machine) an exclusive ``flock`` on a file in the data
directory, released by the kernel likewise.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditlog.models import LogEntry
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Model, QuerySet
from django.utils import timezone

from discovery.models import DiscoveryRun
from registry.models import (
    Alert,
    ModelPerformance,
    ModelStatusEvent,
    ModelUsage,
    TrustedNetworkRead,
    UsageRequestId,
    UsageRollup,
)
from registry.operations import metrics
from registry.operations.locks import session_advisory_lock
from registry.partitions import (
    day_start,
    partition_drop,
    partition_rows,
    partitions_finish_detaching,
    usage_partitions,
    usage_partitions_ahead,
)

logger = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x4D5203  # "MR" + 3: discovery/locks.py holds "MR" + 1 and + 2
LOCK_KEY = 0
LOCK_FILE_NAME = "prune.lock"


def _discovery_runs_prunable(cutoff: datetime) -> QuerySet[DiscoveryRun]:
    # Each source's newest run stays, however old: the dashboard shows it as the source's last run,
    # and a source that runs less often than the retention would otherwise show "never run".
    newest = DiscoveryRun.objects.order_by().values("source").annotate(newest=Max("pk")).values("newest")
    return DiscoveryRun.objects.filter(started_at__lt=cutoff).exclude(pk__in=newest)


def _status_events_prunable(cutoff: datetime) -> QuerySet[ModelStatusEvent]:
    # Each lane's newest event stays, however old (a model's status, each host's loaded state, each
    # alert kind): it is the state in force at the start of the history that remains, without which
    # a model unchanged for a year would read "unknown". Events of a lane are written in time order,
    # so its newest is its highest id.
    newest = (
        ModelStatusEvent.objects.order_by()
        .values("model", "kind", "source", "alert_kind")
        .annotate(newest=Max("pk"))
        .values("newest")
    )
    return ModelStatusEvent.objects.filter(at__lt=cutoff).exclude(pk__in=newest)


@dataclass(frozen=True)
class RetainedTable:
    """A table that grows, its retention setting and which of its rows are past a cutoff."""

    table: str  # the database table, the metric's label
    label: str
    setting: str
    model: type[Model]
    prunable: Callable[[datetime], QuerySet[Any]]
    # The column the cutoff applies to: batches are read in its order, on its index (see _prune_table).
    time_column: str = "timestamp"
    # Rows leave a whole UTC day at a time, once all of the day is past the retention: what lets
    # PostgreSQL drop model_usage's daily partitions instead of deleting rows (the rest is kept).
    whole_days: bool = False
    # Removes what it can wholesale before the batches (model_usage's partitions); rows removed.
    wholesale: Callable[[datetime], int] | None = None

    @property
    def keep_days(self) -> int:
        return int(getattr(settings, self.setting))

    def cutoff(self, now: datetime) -> datetime | None:
        """Rows older than this go; None keeps every row (a setting of 0)."""
        if self.keep_days <= 0:
            return None
        cutoff = now - timedelta(days=self.keep_days)
        if self.whole_days:
            cutoff = day_start(cutoff.astimezone(UTC).date())
        return cutoff


def _drop_usage_partitions(cutoff: datetime) -> int:
    """Drop ``model_usage``'s partitions wholly before ``cutoff`` (PostgreSQL); the rows they held.

    A partition is counted before it goes, so the metric and the log say what left. Each drop
    detaches concurrently (registry/partitions.py): no read or ingestion waits on it.
    """
    removed = 0
    partitions_finish_detaching()
    for part in usage_partitions():
        if part.end > cutoff:
            break
        rows = partition_rows(part.name)
        partition_drop(part.name)
        removed += rows
        metrics.retention_pruned(table="model_usage", rows=rows)
        logger.info("prune: partition %s dropped (%d rows)", part.name, rows)
    return removed


TABLES: tuple[RetainedTable, ...] = (
    RetainedTable(
        "model_usage",
        "usage records",
        "RETENTION_USAGE_DAYS",
        ModelUsage,
        lambda cutoff: ModelUsage.objects.filter(timestamp__lt=cutoff),
        whole_days=True,
        wholesale=_drop_usage_partitions,
    ),
    # The keys that store a retried post once: kept for a shorter horizon than the records.
    RetainedTable(
        "model_usage_request_ids",
        "usage request ids",
        "RETENTION_USAGE_REQUEST_IDS_DAYS",
        UsageRequestId,
        lambda cutoff: UsageRequestId.objects.filter(recorded_at__lt=cutoff),
        "recorded_at",
    ),
    # Rollups go only past their own, longer, retention: removing raw rows never touches them, so
    # statistics over a year still answer once the raw rows of that year are gone.
    RetainedTable(
        "model_usage_rollup",
        "hourly usage rollups",
        "RETENTION_USAGE_ROLLUP_DAYS",
        UsageRollup,
        # An hour goes once all of it is past the cutoff.
        lambda cutoff: UsageRollup.objects.filter(hour__lte=cutoff - timedelta(hours=1)),
        "hour",
    ),
    RetainedTable(
        "model_performance",
        "performance records",
        "RETENTION_PERFORMANCE_DAYS",
        ModelPerformance,
        lambda cutoff: ModelPerformance.objects.filter(timestamp__lt=cutoff),
    ),
    RetainedTable(
        "auditlog_logentry",
        "audit entries",
        "RETENTION_AUDIT_DAYS",
        LogEntry,
        lambda cutoff: LogEntry.objects.filter(timestamp__lt=cutoff),
    ),
    RetainedTable(
        # The token-less reads' counts are audit entries in another form: they are kept as long.
        "trusted_network_reads",
        "trusted-network read counts",
        "RETENTION_AUDIT_DAYS",
        TrustedNetworkRead,
        lambda cutoff: TrustedNetworkRead.objects.filter(minute__lt=cutoff),
        "minute",
    ),
    RetainedTable(
        "discovery_runs",
        "discovery runs",
        "RETENTION_DISCOVERY_RUNS_DAYS",
        DiscoveryRun,
        _discovery_runs_prunable,
        "started_at",
    ),
    RetainedTable(
        "alerts",
        "resolved alerts",
        "RETENTION_RESOLVED_ALERTS_DAYS",
        Alert,
        # Open alerts stay whatever their age: only resolved ones are history.
        lambda cutoff: Alert.objects.filter(resolved_at__isnull=False, resolved_at__lt=cutoff),
        "resolved_at",
    ),
    RetainedTable(
        "model_status_events",
        "availability history",
        "RETENTION_STATUS_EVENTS_DAYS",
        ModelStatusEvent,
        _status_events_prunable,
        "at",
    ),
)


@dataclass
class PruneOutcome:
    """What a prune removed (or, dry, would remove) per table; ``locked`` when another prune was running."""

    removed: dict[str, int]
    batches: int = 0
    locked: bool = False


@contextlib.contextmanager
def prune_lock() -> Iterator[bool]:
    """Hold the prune lock for the block; yields False when another prune holds it."""
    if connection.vendor == "postgresql":
        with session_advisory_lock(LOCK_NAMESPACE, LOCK_KEY) as acquired:
            yield acquired
        return
    path = Path(settings.DATA_DIR) / LOCK_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    # flock, not lockf: its lock belongs to the open file, so a second open in the same process is refused too.
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prune_table(table: RetainedTable, cutoff: datetime, batch_size: int) -> tuple[int, int]:
    """Delete ``table``'s rows past ``cutoff`` in batches of ``batch_size``; (rows removed, batches).

    Batches are read in the time column's order, from where the last one ended, on the column's
    index: the read stops at the cutoff and never steps over the rows already deleted (dead until
    vacuumed). Read by primary key instead, the batch that cannot fill up scanned the whole table
    for more (measured on 20,000,000 rows: 1.3 s a batch, most of a day's prune).
    """
    removed = batches = 0
    since: Any = None
    while True:
        # Its own short transaction per batch (the ids read and their delete): nothing waits on the run.
        with transaction.atomic():
            rows = table.prunable(cutoff)
            if since is not None:
                rows = rows.filter(**{f"{table.time_column}__gte": since})
            batch = list(rows.order_by(table.time_column, "pk").values_list("pk", table.time_column)[:batch_size])
            if not batch:
                break
            deleted, _ = table.model._default_manager.filter(pk__in=[pk for pk, _ in batch]).delete()
        since = batch[-1][1]
        batches += 1
        removed += deleted
        metrics.retention_pruned(table=table.table, rows=deleted)
        if len(batch) < batch_size:
            break
    return removed, batches


def prune_table(table: RetainedTable, cutoff: datetime, batch_size: int) -> tuple[int, int]:
    """Remove ``table``'s rows past ``cutoff``: wholesale where it can, then in batches; (rows, batches)."""
    wholesale = table.wholesale(cutoff) if table.wholesale is not None else 0
    removed, batches = _prune_table(table, cutoff, batch_size)
    return wholesale + removed, batches


def retention_apply(
    *, dry_run: bool = False, now: datetime | None = None, batch_size: int | None = None
) -> PruneOutcome:
    """Remove every retained table's rows past its cutoff (``dry_run``: count them, remove nothing).

    Holds the prune lock: when another prune holds it this one removes nothing and says ``locked``.
    """
    now = now or timezone.now()
    size = batch_size or settings.RETENTION_BATCH_SIZE
    with prune_lock() as acquired:
        if not acquired:
            logger.info("prune: another prune holds the lock, nothing done")
            return PruneOutcome(removed={}, locked=True)
        outcome = PruneOutcome(removed={})
        if not dry_run:
            usage_partitions_ahead(now)  # the days ahead get their partitions before they are needed
        for table in TABLES:
            cutoff = table.cutoff(now)
            if cutoff is None:
                outcome.removed[table.table] = 0
                continue
            if dry_run:
                outcome.removed[table.table] = table.prunable(cutoff).count()
                continue
            removed, batches = prune_table(table, cutoff, size)
            outcome.removed[table.table] = removed
            outcome.batches += batches
            if removed:
                logger.info("prune: %d rows of %s older than %s removed", removed, table.table, cutoff.isoformat())
    return outcome


@dataclass(frozen=True)
class TableSize:
    """A retained table's size and retention, as the console shows them."""

    table: str
    label: str
    setting: str
    keep_days: int
    rows: int
    rows_estimated: bool  # PostgreSQL's planner estimate (pg_class.reltuples), not a count
    total_bytes: int | None  # with indexes and TOAST; None where the database does not say (SQLite)


def table_sizes() -> list[TableSize]:
    """Each retained table's rows and bytes: estimates on PostgreSQL (no scan), counts on SQLite."""
    sizes = []
    for table in TABLES:
        rows, estimated, total_bytes = _size_of(table)
        sizes.append(
            TableSize(
                table=table.table,
                label=table.label,
                setting=table.setting,
                keep_days=table.keep_days,
                rows=rows,
                rows_estimated=estimated,
                total_bytes=total_bytes,
            )
        )
    return sizes


def _size_of(table: RetainedTable) -> tuple[int, bool, int | None]:
    db_table = table.model._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Over the table's partitions (model_usage's days), or the table itself when it has none
            # (pg_partition_tree lists nothing for a table that is not partitioned).
            cursor.execute(
                "SELECT count(*), min(c.reltuples), sum(greatest(c.reltuples, 0))::bigint, "
                "sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c "
                "WHERE c.oid IN (SELECT relid FROM pg_partition_tree(to_regclass(%s)) WHERE isleaf) "
                "OR (c.oid = to_regclass(%s) AND c.relkind = 'r')",
                [connection.ops.quote_name(db_table)] * 2,
            )
            leaves, least, estimate, total_bytes = cursor.fetchone()
        # reltuples is -1 until a table is first vacuumed or analyzed. A single table is counted then
        # (it is young, small); a partition not analyzed yet is a day ahead or just begun, and counts 0.
        if leaves > 1 or (leaves == 1 and least >= 0):
            return int(estimate), True, int(total_bytes)
        return table.model._default_manager.count(), False, int(total_bytes) if leaves else None
    return table.model._default_manager.count(), False, None
