"""Loading usage rows as a restore would, shared by the benchmarks that build large usage tables.

``restore_load(span_days)`` is a context manager around the benchmark's own ``INSERT ... SELECT``:
before it, every UTC day of the span gets its partition (``model_usage`` is partitioned by day on
PostgreSQL: registry/partitions.py), the table's secondary indexes are dropped and per-row
foreign-key triggers (and the rollups' trigger) are off; after it, the indexes are rebuilt from
their own definitions on every partition and the table is vacuumed and analyzed, as autovacuum
would leave a live table (statistics, the visibility map that index-only scans need). The rollups
of the loaded hours are the caller's to build (``build_rollups``), as after a restore.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from registry.partitions import usage_partitions_ensure
from registry.telemetry.rollups import hour_of, usage_rollups_rebuild


@contextlib.contextmanager
def restore_load(span_days: int, *, log: Callable[[str], None] | None = None) -> Iterator[Any]:
    """A cursor to load ``model_usage`` with, over the last ``span_days`` days (see the module's docstring)."""
    started = time.perf_counter()
    now = timezone.now()
    usage_partitions_ensure(now - timedelta(days=day) for day in range(span_days + 2))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = 'model_usage' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET session_replication_role = replica")  # no per-row FK triggers: our own ids
        yield cursor
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for name, definition in indexes:
            # A partitioned table's index reads "ON ONLY" the parent in pg_indexes, which would build
            # no partition's index: built on every partition instead.
            cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))
            if log is not None:
                log(f"index {name} rebuilt ({time.perf_counter() - started:.0f} s)")
        cursor.execute("VACUUM (ANALYZE) model_usage")


def build_rollups(span_days: int) -> None:
    """The rollups of every hour of the last ``span_days`` days (and the next two hours), a day per statement."""
    end = hour_of(timezone.now()) + timedelta(hours=2)
    day = end - timedelta(days=span_days + 1)
    while day < end:
        usage_rollups_rebuild(start=day, end=min(end, day + timedelta(days=1)))
        day += timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) model_usage_rollup")
