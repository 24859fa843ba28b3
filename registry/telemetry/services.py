"""Writes of telemetry: usage and performance records, in batches, each batch one transaction.

Usage is costed at the price in force at each record's moment (registry.telemetry.costing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from registry.models import (
    CostSource,
    ModelPerformance,
    ModelPrice,
    ModelUsage,
    RegisteredModel,
    UsageRequestId,
)
from registry.operations import metrics
from registry.partitions import usage_partitions_ensure
from registry.telemetry import alerts
from registry.telemetry.costing import CostTooLarge, price_for_usage, usage_cost
from registry.telemetry.rollups import RECORD_COLUMNS, usage_rollups_add


class UsageRejected(Exception):
    """A usage batch that cannot be stored as given; ``field`` names the offending input."""

    def __init__(self, field: str, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.index = index  # the record's position in its batch


def _tokens_and_cost(
    record: Mapping[str, Any], moment: datetime, prices: Sequence[ModelPrice] | None
) -> tuple[int | None, Decimal | None, str | None, bool]:
    """A record's (token_count, cost, cost_source, unpriced): the cost at the price for ``moment`` (costing.py).

    ``prices`` is None when every record of the batch reports its cost (no lookup was needed).
    """
    input_tokens = record.get("input_tokens")
    output_tokens = record.get("output_tokens")
    split = input_tokens is not None or output_tokens is not None
    token_count = (input_tokens or 0) + (output_tokens or 0) if split else record.get("token_count")
    cost = record.get("cost")
    if cost is not None:
        return token_count, cost, CostSource.REPORTED, False
    if token_count is None or prices is None:
        return token_count, None, None, False
    price = price_for_usage(prices, moment)
    if price is None:
        return token_count, None, None, True
    try:
        amount, source = usage_cost(
            token_count=token_count,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=record.get("cached_input_tokens"),
            price=price,
        )
    except CostTooLarge as exc:
        raise UsageRejected("cost", str(exc)) from exc
    return token_count, amount, source, False


def _usage_rows(model: RegisteredModel, records: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[Any, ...]], int]:
    """The rows of ``records`` in ``_USAGE_COLUMNS`` order, and how many could not be priced."""
    now = timezone.now()
    needs_price = any(record.get("cost") is None for record in records)
    prices = list(ModelPrice.objects.filter(model=model).order_by("effective_from")) if needs_price else None
    rows: list[tuple[Any, ...]] = []
    unpriced = 0
    for index, record in enumerate(records):
        moment = record.get("timestamp") or now
        try:
            token_count, cost, cost_source, no_price = _tokens_and_cost(record, moment, prices)
        except UsageRejected as exc:
            raise UsageRejected(exc.field, exc.message, index=index) from exc
        unpriced += no_price
        row: tuple[Any, ...] = (
            model.pk,
            model.name,
            moment,
            token_count,
            record.get("input_tokens"),
            record.get("output_tokens"),
            1 if record.get("request_count") is None else record["request_count"],
            record.get("average_latency"),
            0 if record.get("error_count") is None else record["error_count"],
            cost,
            cost_source,
            record.get("cached_input_tokens"),
            record.get("request_id"),
        )
        rows.append(row)
    return rows, unpriced


PERFORMANCE_FIELDS: Final = ("timestamp", "metric_name", "metric_value", "task_category", "sample_size")


# Column order of a usage row as usage_record_batch writes it: the rollups' record first (the
# positions they read), then what only the table keeps.
_USAGE_COLUMNS: Final = (*RECORD_COLUMNS, "cost_source", "cached_input_tokens", "request_id")
_MOMENT, _TOKENS, _REQUESTS, _ERRORS, _COST = (
    RECORD_COLUMNS.index(name) for name in ("timestamp", "token_count", "request_count", "error_count", "cost")
)


def _copy_rows(table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Write ``rows`` with PostgreSQL's COPY: one statement, no per-value ORM preparation."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    )
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


@transaction.atomic
def usage_record_batch(*, model: RegisteredModel, records: Sequence[Mapping[str, Any]]) -> int:
    """Record a batch of usage for ``model`` in one statement and one transaction: all of it or none of it.

    On PostgreSQL the batch goes in with COPY, which is several times faster than ``bulk_create``
    (whose cost is Django preparing each value of each row); the table's CHECK constraints hold
    either way, and a violation rejects the whole batch. Elsewhere (SQLite) it is ``bulk_create``.
    Counters are incremented only once the batch is committed, so a rolled-back batch is never
    counted. The batch's hourly rollups (registry/telemetry/rollups.py) are updated in the same
    transaction: statistics see the records as soon as they are committed. Returns the number of records written.
    """
    rows, unpriced = _usage_rows(model, records)
    _usage_write(model, rows, unpriced)
    return len(rows)


def _usage_write(model: RegisteredModel, rows: Sequence[tuple[Any, ...]], unpriced: int) -> None:
    """Write usage rows (``_USAGE_COLUMNS`` order, then request_id), their rollups and their counts."""
    if not rows:
        return
    # A day without its partition yet (a backfill) gets it first: PostgreSQL, a catalog lookup otherwise.
    usage_partitions_ensure({row[_MOMENT] for row in rows})
    if connection.vendor == "postgresql":
        _copy_rows(ModelUsage._meta.db_table, _USAGE_COLUMNS, rows)
    else:
        ModelUsage.objects.bulk_create([ModelUsage(**dict(zip(_USAGE_COLUMNS, row, strict=True))) for row in rows])
    if unpriced:
        alerts.unpriced_usage_open(model=model, records=unpriced)
    # SQLite's rollups (PostgreSQL's trigger added them at the COPY): last, the locks' hold is shortest.
    usage_rollups_add(rows)
    _count_on_commit(model, rows)


def _count_on_commit(model: RegisteredModel, rows: Sequence[tuple[Any, ...]]) -> None:
    """Count written usage rows in the metrics once their transaction commits (a rolled-back batch never is)."""
    requests = sum(row[_REQUESTS] for row in rows)
    tokens = sum(row[_TOKENS] or 0 for row in rows)
    errors = sum(row[_ERRORS] for row in rows)
    cost = sum((Decimal(row[_COST]) for row in rows if row[_COST] is not None), start=Decimal(0))
    name = model.name
    transaction.on_commit(
        lambda: metrics.usage_recorded(model=name, requests=requests, tokens=tokens, errors=errors, cost=cost)
    )


@transaction.atomic
def usage_record_idempotent(*, model: RegisteredModel, records: Sequence[Mapping[str, Any]]) -> int:
    """Record usage whose records may carry a caller's ``request_id``: each request id is stored once per model.

    For callers that retry a post they did not see answered (the platform's router): the batch's
    request ids are claimed first in ``model_usage_request_ids`` (``ON CONFLICT DO NOTHING`` on
    its unique key), and only the records whose id was claimed now, or that have none, are
    written. Two concurrent retries cannot both land: the second waits on the first's key until
    it commits, then finds it taken. The guarantee holds ``RETENTION_USAGE_REQUEST_IDS_DAYS``.
    All of the batch or none of it; returns the number of records written, and only those are
    counted in the metrics.
    """
    seen: set[str] = set()
    unique: list[Mapping[str, Any]] = []
    for record in records:
        request_id = record.get("request_id")
        if request_id is not None:
            if request_id in seen:
                continue  # the same request twice in one batch: its first record stands
            seen.add(request_id)
        unique.append(record)
    claimed = _claim_request_ids(model.name, sorted(seen))
    written = [record for record in unique if record.get("request_id") is None or record["request_id"] in claimed]
    rows, unpriced = _usage_rows(model, written)
    _usage_write(model, rows, unpriced)
    return len(rows)


def _claim_request_ids(model_name: str, request_ids: Sequence[str]) -> set[str]:
    """Store ``request_ids`` for ``model_name``; the ones that were not stored before.

    In key order, so that two batches claiming overlapping ids lock them in the same order.
    """
    if not request_ids:
        return set()
    quote = connection.ops.quote_name
    now = UsageRequestId._meta.get_field("recorded_at").get_db_prep_save(timezone.now(), connection)
    placeholders = ", ".join(["(%s, %s, %s)"] * len(request_ids))
    statement = (
        f"INSERT INTO {quote(UsageRequestId._meta.db_table)} ({quote('model_name')}, {quote('request_id')}, "  # noqa: S608 (identifiers quoted, values bound)
        f"{quote('recorded_at')}) VALUES {placeholders} ON CONFLICT DO NOTHING RETURNING {quote('request_id')}"
    )
    params = [value for request_id in request_ids for value in (model_name, request_id, now)]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return {row[0] for row in cursor.fetchall()}


@transaction.atomic
def performance_record_batch(*, model: RegisteredModel, records: Sequence[Mapping[str, Any]]) -> list[ModelPerformance]:
    """Record a batch of performance measurements for ``model`` in one INSERT: all of it or none of it."""
    now = timezone.now()
    rows = [
        ModelPerformance(
            model=model,
            model_name=model.name,
            **{key: record[key] for key in PERFORMANCE_FIELDS if record.get(key) is not None},
            **({} if record.get("timestamp") else {"timestamp": now}),
        )
        for record in records
    ]
    return ModelPerformance.objects.bulk_create(rows)
