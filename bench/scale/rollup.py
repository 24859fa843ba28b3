"""Figures of the usage rollups (issue 21): statistics flat in the table's size, ingestion, retention.

- ``summary_30d_busiest``: the busiest model's 30 days in hourly buckets (``usage_summary``), median
  of 21 runs, under 50 ms, and at most 1.5 times the same query on the 1,000,000-row dataset;
- ``dashboard`` and ``model_page_30d``: the console's front page (superuser: every panel) and the
  busiest model's page with its 30-day charts, through the test client (session, permissions,
  selectors, template), median of 11, under 150 ms;
- ``ingestion``: records/s through ``usage_record_batch`` in batches of 1,000 (rollups maintained),
  at least 50,000/s, and at least 0.3 of a bare ``COPY`` of the same rows into the same table;
- ``maintenance``: the choice of the rollups' maintenance, measured (not a figure with a goal):
  4 processes ingesting into one model-hour at once, with the rollups kept by the statement trigger
  (as shipped on PostgreSQL), by the Python path in the same transaction (SQLite's, forced), and not
  at all (what a worker behind a watermark costs ingestion; the worker's own work comes on top);
- ``retention``: one whole UTC day's raw rows (the oldest whole day) pruned by ``retention`` (its
  day's partition dropped, on PostgreSQL) in under 10 s, while a reader process (the 30-day
  summary) and an ingesting process (batches of 100) each wait no more than 100 ms for any one
  operation.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from registry.models import ModelUsage, RegisteredModel
from registry.operations import retention
from registry.partitions import day_start, usage_partitions
from registry.telemetry import services
from registry.telemetry.rollups import hour_of, rollups_add_in_python
from registry.telemetry.selectors import usage_summary
from scale import Figure, ScaleContext, median_ms

BATCH = 1000
INGEST_BATCHES = 20
ROUNDS = 3
CLIENTS = 4


def _records(count: int, *, base: Any, spread_seconds: float = 3000.0) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": base + timedelta(seconds=spread_seconds * i / count),
            "input_tokens": 300 + i % 700,
            "output_tokens": 100 + i % 300,
            "average_latency": 0.05 * (1 + i % 97),
            "error_count": int(i % 50 == 0),
            "cost": Decimal("0.000150"),
        }
        for i in range(count)
    ]


SUMMARY_ROUNDS = 5


def _summary_figures(context: ScaleContext) -> Iterator[Figure]:
    model = context.busiest
    end = timezone.now()
    start = end - timedelta(days=30)

    def summary() -> object:
        return usage_summary(model_id=model.pk, bucket="hour", start=start, end=end)

    note = f"{context.rows:,} rows, busiest model {int(context.rows * 0.4):,}"
    small_url = getattr(context, "small_database_url", None)
    if small_url is None:  # no small dataset beside this one: the figure measured before the full load
        measured, small = median_ms(summary), context.baseline["summary_ms"]
        yield Figure("summary_30d_busiest", measured, 50, "ms", note=f"{note}; median of 21")
        yield Figure(
            "summary_30d_busiest_vs_1m_rows",
            measured / small,
            1.5,
            "x",
            note=f"{small:.1f} ms on this same dataset, which is no larger than 1,000,000 rows",
        )
        return
    from scale import database  # a run started before it existed imports this module: imported here

    # The same model id in both databases (both built alike): rounds alternate, one ratio a round.
    bigs, smalls = [], []
    for _ in range(SUMMARY_ROUNDS):
        with database(small_url):
            smalls.append(median_ms(summary))
        bigs.append(median_ms(summary))
    ratios = [big / small for big, small in zip(bigs, smalls, strict=True)]
    yield Figure(
        "summary_30d_busiest",
        statistics.median(bigs),
        50,
        "ms",
        note=f"{note}; median of {SUMMARY_ROUNDS} rounds' medians of 21",
    )
    yield Figure(
        "summary_30d_busiest_vs_1m_rows",
        statistics.median(ratios),
        1.5,
        "x",
        note=(
            f"median of {SUMMARY_ROUNDS} rounds alternating with the 1,000,000-row database: "
            f"ratios {', '.join(f'{r:.2f}' for r in ratios)}; 1,000,000 rows {statistics.median(smalls):.1f} ms"
        ),
    )


def _console_figures(context: ScaleContext) -> Iterator[Figure]:
    client = Client()
    client.force_login(context.superuser)
    pages = {
        "dashboard": "/admin/",
        "model_page_30d": f"/admin/registry/registeredmodel/{context.busiest.pk}/change/?range=30d",
    }
    for name, path in pages.items():
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
        measured = median_ms(partial(client.get, path), runs=11, warmup=2)
        yield Figure(name, measured, 150, "ms", note="superuser, through the test client; median of 11")


def _ingestion_figures(context: ScaleContext) -> Iterator[Figure]:
    model = context.models[1]
    service_rates, copy_rates = [], []
    for round_index in range(ROUNDS):
        base = hour_of(timezone.now()) - timedelta(hours=round_index + 1)
        batches = [_records(BATCH, base=base) for _ in range(INGEST_BATCHES)]
        started = time.perf_counter()
        for batch in batches:
            services.usage_record_batch(model=model, records=batch)
        service_rates.append(BATCH * INGEST_BATCHES / (time.perf_counter() - started))
        # The same rows, prepared beforehand, by COPY alone: the table's own ceiling.
        rows = [services._usage_rows(model, batch)[0] for batch in batches]
        started = time.perf_counter()
        for batch_rows in rows:
            with transaction.atomic():
                services._copy_rows(ModelUsage._meta.db_table, services._USAGE_COLUMNS, batch_rows)
        copy_rates.append(BATCH * INGEST_BATCHES / (time.perf_counter() - started))
    service, bare = statistics.median(service_rates), statistics.median(copy_rates)
    note = f"batches of {BATCH}, median of {ROUNDS} rounds of {INGEST_BATCHES}"
    yield Figure("ingestion_with_rollups", service, 50_000, "records/s", higher_is_better=True, note=note)
    yield Figure(
        "ingestion_vs_copy", service / bare, 0.3, "x", higher_is_better=True, note=f"COPY alone {bare:,.0f} records/s"
    )


# --- The maintenance, measured under concurrent ingestion into one model-hour ----------------------------------


def _rollup_trigger(*, enabled: bool) -> None:
    """Switch the rollups' trigger (migration 0012) on or off for every session."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE model_usage {'ENABLE' if enabled else 'DISABLE'} TRIGGER model_usage_rollup_add")


def _concurrent_client(arguments: tuple[int, str, str]) -> list[float]:
    """One ingesting process: INGEST_BATCHES batches into the shared model-hour; each batch's seconds."""
    model_id, mode, hour_text = arguments
    connection.close()  # a forked child opens its own connection
    if mode == "python":
        services.usage_rollups_add = rollups_add_in_python  # SQLite's path, on PostgreSQL
    model = RegisteredModel.objects.get(pk=model_id)
    hour = datetime.fromisoformat(hour_text)
    timings = []
    for _ in range(INGEST_BATCHES):
        batch = _records(BATCH, base=hour, spread_seconds=3500)
        started = time.perf_counter()
        services.usage_record_batch(model=model, records=batch)
        timings.append(time.perf_counter() - started)
    connection.close()
    return timings


def _maintenance_lines(context: ScaleContext) -> Iterator[str]:
    model = context.models[2]
    fork = multiprocessing.get_context("fork")
    for round_index, mode in enumerate(("none", "python", "trigger", "none", "python", "trigger")):
        _rollup_trigger(enabled=mode == "trigger")
        hour = hour_of(timezone.now()) - timedelta(hours=10 + round_index)
        connection.close()
        started = time.perf_counter()
        with fork.Pool(CLIENTS) as pool:
            timings = [
                t
                for client in pool.map(_concurrent_client, [(model.pk, mode, hour.isoformat())] * CLIENTS)
                for t in client
            ]
        elapsed = time.perf_counter() - started
        _rollup_trigger(enabled=True)
        timings.sort()
        p99 = timings[int(len(timings) * 0.99) - 1] * 1000
        rate = CLIENTS * INGEST_BATCHES * BATCH / elapsed
        yield (
            f"MEASURE maintenance={mode}: {rate:,.0f} records/s with {CLIENTS} processes into one model-hour; "
            f"batch median {statistics.median(timings) * 1000:.1f} ms, p99 {p99:.1f} ms"
        )


# --- Retention: one day's raw rows while a reader and an ingester run --------------------------------------------


def _timed_loop(arguments: tuple[str, int, Any]) -> list[tuple[float, float]]:
    """(start, seconds) of each operation of one kind until ``stop`` is set."""
    kind, model_id, stop = arguments
    connection.close()
    model = RegisteredModel.objects.get(pk=model_id)
    operations = []
    while not stop.is_set():
        started = time.perf_counter()
        if kind == "read":
            end = timezone.now()
            usage_summary(model_id=model_id, bucket="hour", start=end - timedelta(days=30), end=end)
        else:
            services.usage_record_batch(model=model, records=_records(100, base=timezone.now(), spread_seconds=1))
        operations.append((started, time.perf_counter() - started))
        time.sleep(0.01)
    connection.close()
    return operations


def _retention_figures(context: ScaleContext) -> Iterator[Figure]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(timestamp) FROM model_usage")
        oldest = cursor.fetchone()[0]
    table = next(t for t in retention.TABLES if t.table == "model_usage")
    # The load's first UTC day is partial: it goes first, unmeasured; then one whole day is measured.
    first_day = day_start(oldest.astimezone(UTC).date())
    retention.prune_table(table, first_day + timedelta(days=1), settings.RETENTION_BATCH_SIZE)
    cutoff = first_day + timedelta(days=2)
    day_rows = ModelUsage.objects.filter(timestamp__lt=cutoff).count()
    partitions_before = {part.name for part in usage_partitions()}
    fork = multiprocessing.get_context("fork")
    manager = fork.Manager()
    stop = manager.Event()
    connection.close()
    with fork.Pool(2) as pool:
        loops = pool.map_async(_timed_loop, [("read", context.busiest.pk, stop), ("ingest", context.busiest.pk, stop)])
        time.sleep(2)  # both loops running before the prune starts
        started = time.perf_counter()
        removed, batches = retention.prune_table(table, cutoff, settings.RETENTION_BATCH_SIZE)
        finished = time.perf_counter()
        time.sleep(1)
        stop.set()
        reads, ingests = loops.get()
    elapsed = finished - started
    dropped = len(partitions_before - {part.name for part in usage_partitions()})

    def slowest(operations: list[tuple[float, float]], *, during_prune: bool) -> float:
        seconds = [
            took
            for at, took in operations
            if (started <= at + took and at <= finished) == during_prune and (during_prune or at + took < started)
        ]
        return max(seconds, default=0.0) * 1000

    during = [took for at, took in reads + ingests if started <= at + took and at <= finished]
    before = [took for at, took in reads + ingests if at + took < started]
    worst = max(during, default=0.0) * 1000
    typical = statistics.median(before) * 1000 if before else 0.0
    yield Figure(
        "retention_one_day",
        elapsed,
        10,
        "s",
        note=(
            f"{removed:,} rows ({day_rows:,} counted): {dropped} partition(s) dropped, "
            f"{batches} batches of {settings.RETENTION_BATCH_SIZE} deleted"
        ),
    )
    yield Figure(
        "retention_max_wait",
        worst,
        100,
        "ms",
        note=(
            f"slowest of {len(during)} reads and ingests during the prune "
            f"(read {slowest(reads, during_prune=True):.0f}, ingest {slowest(ingests, during_prune=True):.0f} ms); "
            f"before it: median {typical:.1f} ms, slowest read "
            f"{slowest(reads, during_prune=False):.0f}, ingest {slowest(ingests, during_prune=False):.0f} ms"
        ),
    )


def figures(context: ScaleContext) -> Iterator[Figure]:
    yield from _summary_figures(context)
    yield from _console_figures(context)
    yield from _ingestion_figures(context)
    for line in _maintenance_lines(context):
        print(line, flush=True)
    yield from _retention_figures(context)
