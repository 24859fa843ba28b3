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
)
from registry.operations import metrics
from registry.telemetry import alerts
from registry.telemetry.costing import CostTooLarge, price_for_usage, usage_cost
from registry.telemetry.rollups import usage_rollups_add


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


def _usage_rows(
    model: RegisteredModel, records: Sequence[Mapping[str, Any]], *, with_request_id: bool
) -> tuple[list[tuple[Any, ...]], int]:
    """The rows of ``records`` in ``_USAGE_COLUMNS`` order (then request_id), and how many could not be priced."""
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
        )
        rows.append((*row, record.get("request_id")) if with_request_id else row)
    return rows, unpriced


PERFORMANCE_FIELDS: Final = ("timestamp", "metric_name", "metric_value", "task_category", "sample_size")


# Column order of a usage row as usage_record_batch writes it.
_USAGE_COLUMNS: Final = (
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
    "cost_source",
    # Last, so that the positions above (_REQUESTS, ...) stay as they were.
    "cached_input_tokens",
)


_TOKENS, _REQUESTS, _ERRORS, _COST = 3, 6, 8, 9


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
    rows, unpriced = _usage_rows(model, records, with_request_id=False)
    if connection.vendor == "postgresql":
        _copy_rows(ModelUsage._meta.db_table, _USAGE_COLUMNS, rows)
    else:
        ModelUsage.objects.bulk_create([ModelUsage(**dict(zip(_USAGE_COLUMNS, row, strict=True))) for row in rows])
    if unpriced:
        alerts.unpriced_usage_open(model=model, records=unpriced)
    # SQLite's rollups (PostgreSQL's trigger added them at the COPY): last, the locks' hold is shortest.
    usage_rollups_add(rows)
    _count_on_commit(model, rows)
    return len(rows)


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

    For callers that retry a post they did not see answered (the platform's router): a record
    whose ``request_id`` this model already has is skipped, in the database (``ON CONFLICT DO
    NOTHING`` on ``model_usage_request_id_once``), so two concurrent retries cannot both land.
    All of the batch or none of it; returns the number of records written, and only those are
    counted in the metrics.
    """
    columns = (*_USAGE_COLUMNS, "request_id")
    seen: set[str] = set()
    unique: list[Mapping[str, Any]] = []
    for record in records:
        request_id = record.get("request_id")
        if request_id is not None:
            if request_id in seen:
                continue  # the same request twice in one batch: its first record stands
            seen.add(request_id)
        unique.append(record)
    rows, _ = _usage_rows(model, unique, with_request_id=True)
    if not rows:
        return 0
    # Values prepared by each column's field, as the ORM would (aware datetimes, decimals per backend).
    concrete = {field.attname: field for field in ModelUsage._meta.concrete_fields}
    fields = [concrete[column] for column in columns]
    params = [
        field.get_db_prep_save(value, connection) for row in rows for field, value in zip(fields, row, strict=True)
    ]
    quote = connection.ops.quote_name
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rows))
    statement = (
        f"INSERT INTO {quote(ModelUsage._meta.db_table)} ({', '.join(quote(column) for column in columns)}) "  # noqa: S608 (identifiers quoted, values bound)
        f"VALUES {placeholders} ON CONFLICT DO NOTHING RETURNING {quote('request_id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        stored_ids = {row[0] for row in cursor.fetchall()}
    request_id_at = len(_USAGE_COLUMNS)
    written = [row for row in rows if row[request_id_at] is None or row[request_id_at] in stored_ids]
    unpriced = sum(1 for row in written if row[_COST] is None and row[_TOKENS] is not None)
    if unpriced:
        alerts.unpriced_usage_open(model=model, records=unpriced)
    if written:
        usage_rollups_add(written)  # only the records stored: a skipped retry is not counted twice
        _count_on_commit(model, written)
    return len(written)


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
