"""Maintenance of the hourly usage rollups (``model_usage_rollup``), in the transaction that writes the records.

On PostgreSQL a statement trigger on ``model_usage`` does it (``model_usage_rollup_add``, created
by migration 0017, its function given the hour's first and last record timestamps by 0019): after
each INSERT or COPY it sums the statement's rows (a transition table) per model and hour and adds
them to their rollups with ``INSERT ... ON CONFLICT DO UPDATE``, rows in key order so that two
statements cannot deadlock. Elsewhere (SQLite, the embedded mode)
``usage_rollups_add`` does the same from Python, called by the ingestion services; on PostgreSQL
it does nothing, the trigger having done it.

Why in the inserting transaction, and why a trigger on PostgreSQL (measured, docs/BENCHMARKS.md,
"Usage rollups"): a record is in its hour's rollup the moment it is committed, whatever its
timestamp (a router posting an hour late lands in a closed hour too), so readers need raw rows
only for the partial hours at their window's edges, never for "what a worker has not reached
yet"; and the trigger does in one statement, in the database, what the Python path does with a
delta per record, a locking SELECT and an UPDATE: under 4 concurrent clients of one model-hour it
ingested 1.5-2x the records/s of the Python path. Concurrent batches of one model-hour queue on
that rollup row's lock for the last milliseconds of their transactions, never for their COPY.

The Python path: the batch's (model, hour) rows are locked in key order; missing ones are created
with ``INSERT ... ON CONFLICT DO NOTHING`` and locked; then they are merged and written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import reduce
from operator import or_
from typing import Any, Final

from django.db import connection, transaction
from django.db.models import DecimalField, F, Q, Value
from django.db.models.functions import Coalesce

from registry.models import ModelUsage, UsageRollup
from registry.telemetry.histograms import GAMMA, Histogram, bucket_of, merge_into

# A record as the rollups read it: the first ten columns of a usage row, which registry/telemetry/services.py
# writes in this order and continues.
RecordRow = Sequence[Any]
_MODEL, _NAME, _TIMESTAMP, _TOKENS, _INPUT, _OUTPUT, _REQUESTS, _LATENCY, _ERRORS, _COST = range(10)
RECORD_COLUMNS: Final = (
    "model_id",
    "model_name",
    "timestamp",
    "token_count",
    "input_tokens",
    "output_tokens",
    "request_count",
    "average_latency",
    "error_count",
    "cost",
)

# A rollup's integer sums (usage.py reads and subtracts the same).
SUMMED: Final = (
    "records",
    "requests",
    "tokens",
    "input_tokens",
    "output_tokens",
    "errors",
    "uncosted_requests",
    "latency_requests",
    "latency_records",
)


def hour_of(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC hour."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class _Delta:
    records: int = 0
    requests: int = 0
    tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0
    cost: Decimal | None = None
    uncosted_requests: int = 0
    latency_weighted: float = 0.0
    latency_requests: int = 0
    latency_records: int = 0
    latency_histogram: Histogram = field(default_factory=dict)
    first_at: datetime | None = None
    last_at: datetime | None = None

    def add(self, row: RecordRow) -> None:
        requests = int(row[_REQUESTS])
        moment = row[_TIMESTAMP]
        if self.first_at is None or moment < self.first_at:
            self.first_at = moment
        if self.last_at is None or moment > self.last_at:
            self.last_at = moment
        self.records += 1
        self.requests += requests
        self.tokens += row[_TOKENS] or 0
        self.input_tokens += row[_INPUT] or 0
        self.output_tokens += row[_OUTPUT] or 0
        self.errors += int(row[_ERRORS])
        if row[_COST] is None:
            self.uncosted_requests += requests
        else:
            self.cost = (self.cost or Decimal(0)) + Decimal(row[_COST])
        latency = row[_LATENCY]
        if latency is not None:
            self.latency_weighted += float(latency) * requests
            self.latency_requests += requests
            self.latency_records += 1
            key = bucket_of(float(latency))
            self.latency_histogram[key] = self.latency_histogram.get(key, 0) + 1


def usage_rollups_add(rows: Iterable[RecordRow]) -> int:
    """Add usage rows (``model_id, model_name, timestamp, token_count, input_tokens, output_tokens,
    request_count, average_latency, error_count, cost``) to their hours' rollups; returns the rollups touched.

    Must run in the transaction that writes the rows (their rollups commit or roll back with them).
    On PostgreSQL it does nothing: the table's trigger has added the rows as they were inserted.
    """
    if connection.vendor == "postgresql":
        return 0
    return rollups_add_in_python(rows)


def rollups_add_in_python(rows: Iterable[RecordRow]) -> int:
    """``usage_rollups_add``'s work, done here whatever the database (SQLite's path; bench/scale measures it)."""
    deltas: dict[tuple[int, str, datetime], _Delta] = {}
    for row in rows:
        key = (row[_MODEL], row[_NAME], hour_of(row[_TIMESTAMP]))
        deltas.setdefault(key, _Delta()).add(row)
    if not deltas:
        return 0
    # One lock order for every transaction (model, name, hour), so that two batches cannot deadlock.
    keys = sorted(deltas, key=lambda key: (key[0] is None, key[0] or 0, key[1], key[2]))
    matching = reduce(or_, (Q(model_id=model_id, model_name=name, hour=hour) for model_id, name, hour in keys))
    locked = UsageRollup.objects.select_for_update().filter(matching).order_by("model_id", "model_name", "hour")
    rollups = list(locked)
    missing = set(keys) - {(rollup.model_id, rollup.model_name, hour_of(rollup.hour)) for rollup in rollups}
    if missing:
        # A new hour: create its rows (a concurrent creator's row wins, ours is ignored), then lock them all.
        UsageRollup.objects.bulk_create(
            [
                UsageRollup(model_id=model_id, model_name=name, hour=hour)
                for model_id, name, hour in keys
                if (model_id, name, hour) in missing
            ],
            ignore_conflicts=True,
        )
        rollups = list(locked.all())
    for rollup in rollups:
        delta = deltas[(rollup.model_id, rollup.model_name, hour_of(rollup.hour))]  # type: ignore[index]
        if delta.cost is not None:
            rollup.cost = (rollup.cost or Decimal(0)) + delta.cost
        rollup.latency_weighted += delta.latency_weighted
        rollup.latency_histogram = merge_into(dict(rollup.latency_histogram), delta.latency_histogram)
        _widen_bounds(rollup, delta)
        for name in SUMMED:
            setattr(rollup, name, getattr(rollup, name) + getattr(delta, name))
    UsageRollup.objects.bulk_update(
        rollups, [*SUMMED, "cost", "latency_weighted", "latency_histogram", "first_at", "last_at"]
    )
    return len(rollups)


def _widen_bounds(rollup: UsageRollup, delta: _Delta) -> None:
    """Stretch the rollup's first/last record timestamps over the delta's (before its records are added).

    An empty rollup (just created) takes the delta's; one with records but no bounds (its hour's raw
    rows pruned before the bounds existed, migration 0019) keeps them unknown, as the trigger does.
    """
    if delta.first_at is None or delta.last_at is None:  # no record (never: a delta is made by one)
        return
    if rollup.records == 0:
        rollup.first_at, rollup.last_at = delta.first_at, delta.last_at
    elif rollup.first_at is not None and rollup.last_at is not None:
        rollup.first_at = min(rollup.first_at, delta.first_at)
        rollup.last_at = max(rollup.last_at, delta.last_at)


# The rollups of [%(start)s, %(end)s) from the raw rows, in one statement (PostgreSQL): the same
# figures usage_rollups_add keeps, and the same histogram buckets (ceil(ln(x) / ln(GAMMA))).
REBUILD_SQL: Final = """
INSERT INTO model_usage_rollup (
    model_id, model_name, hour, records, requests, tokens, input_tokens, output_tokens, errors, cost,
    uncosted_requests, latency_weighted, latency_requests, latency_records, latency_histogram, first_at, last_at
)
SELECT s.model_id, s.model_name, s.hour, s.records, s.requests, s.tokens, s.input_tokens, s.output_tokens,
       s.errors, s.cost, s.uncosted_requests, s.latency_weighted, s.latency_requests, s.latency_records,
       COALESCE(h.histogram, '{}'::jsonb), s.first_at, s.last_at
FROM (
    SELECT model_id, model_name, date_trunc('hour', "timestamp", 'UTC') AS hour,
           min("timestamp") AS first_at, max("timestamp") AS last_at,
           count(*) AS records,
           COALESCE(sum(request_count), 0) AS requests,
           COALESCE(sum(token_count), 0) AS tokens,
           COALESCE(sum(input_tokens), 0) AS input_tokens,
           COALESCE(sum(output_tokens), 0) AS output_tokens,
           COALESCE(sum(error_count), 0) AS errors,
           sum(cost) AS cost,
           COALESCE(sum(request_count) FILTER (WHERE cost IS NULL), 0) AS uncosted_requests,
           COALESCE(sum(average_latency * request_count) FILTER (WHERE average_latency IS NOT NULL), 0)
               AS latency_weighted,
           COALESCE(sum(request_count) FILTER (WHERE average_latency IS NOT NULL), 0) AS latency_requests,
           count(average_latency) AS latency_records
    FROM model_usage
    WHERE "timestamp" >= %(start)s AND "timestamp" < %(end)s
    GROUP BY 1, 2, 3
) s
LEFT JOIN (
    SELECT model_id, model_name, hour, jsonb_object_agg(bucket, n) AS histogram
    FROM (
        SELECT model_id, model_name, date_trunc('hour', "timestamp", 'UTC') AS hour,
               CASE WHEN average_latency <= 0 THEN 'z'
                    ELSE ceil(ln(average_latency) / ln(%(gamma)s))::bigint::text END AS bucket,
               count(*) AS n
        FROM model_usage
        WHERE "timestamp" >= %(start)s AND "timestamp" < %(end)s AND average_latency IS NOT NULL
        GROUP BY 1, 2, 3, 4
    ) buckets
    GROUP BY 1, 2, 3
) h ON h.model_id IS NOT DISTINCT FROM s.model_id AND h.model_name = s.model_name AND h.hour = s.hour
"""


def usage_rollups_rebuild(*, start: datetime, end: datetime, batch_size: int = 10_000) -> int:
    """Recompute the rollups of the hours ``[start, end)`` (whole UTC hours) from the raw rows; returns rollups written.

    For rollups of rows written around the ingestion services (a bulk load, a restore): it replaces
    the hours' rollups, so it must not run while records of those hours are being ingested. On
    PostgreSQL one INSERT ... SELECT; elsewhere the rows are read in batches and added.
    """
    if hour_of(start) != start or hour_of(end) != end:
        raise ValueError("A rebuild covers whole UTC hours: start and end must be on the hour.")
    with transaction.atomic():
        UsageRollup.objects.filter(hour__gte=start, hour__lt=end).delete()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(REBUILD_SQL, {"start": start, "end": end, "gamma": GAMMA})
                return int(cursor.rowcount)
        records = (
            ModelUsage.objects.filter(timestamp__gte=start, timestamp__lt=end)
            .order_by("pk")
            .values_list(*RECORD_COLUMNS)
        )
        batch: list[RecordRow] = []
        for row in records.iterator(chunk_size=batch_size):
            batch.append(row)
            if len(batch) >= batch_size:
                usage_rollups_add(batch)
                batch = []
        usage_rollups_add(batch)
        return UsageRollup.objects.filter(hour__gte=start, hour__lt=end).count()


def usage_rollups_costed(rows: Iterable[tuple[int | None, str, datetime, int, Decimal]]) -> int:
    """Move records that were uncosted and now have a cost into their hours' known cost; returns the rollups touched.

    ``rows`` are ``(model_id, model_name, timestamp, request_count, cost)`` of records whose cost was
    NULL and was just set (registry/telemetry/costing.py, in the same transaction): each hour's cost
    grows by theirs and its uncosted requests shrink by their requests. On every database: the
    PostgreSQL trigger adds inserted rows only, and a re-costing is an UPDATE.
    """
    changes: dict[tuple[int | None, str, datetime], tuple[Decimal, int]] = {}
    for model_id, model_name, moment, requests, cost in rows:
        key = (model_id, model_name, hour_of(moment))
        known, uncosted = changes.get(key, (Decimal(0), 0))
        changes[key] = (known + Decimal(cost), uncosted + int(requests))
    # The same lock order as ``rollups_add_in_python``: a re-costing and an ingestion cannot deadlock.
    for model_id, model_name, hour in sorted(changes, key=lambda key: (key[0] is None, key[0] or 0, key[1], key[2])):
        known, uncosted = changes[(model_id, model_name, hour)]
        UsageRollup.objects.filter(model_id=model_id, model_name=model_name, hour=hour).update(
            cost=Coalesce(F("cost"), Value(Decimal(0)), output_field=DecimalField(max_digits=20, decimal_places=6))
            + Value(known, output_field=DecimalField(max_digits=20, decimal_places=6)),
            uncosted_requests=F("uncosted_requests") - uncosted,
        )
    return len(changes)
