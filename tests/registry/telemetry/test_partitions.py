"""model_usage by UTC day on PostgreSQL: days created as records need them, dropped whole by retention.

Also the migration that turns an existing single table into the partitioned one (0018), run here
inside the test's transaction on a table holding rows, and the retention of what it leaves.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry.models import ModelUsage, UsageRequestId
from registry.operations.retention import retention_apply
from registry.partitions import (
    DAYS_AHEAD,
    day_start,
    partition_name,
    usage_partitions,
    usage_partitions_ahead,
)
from registry.telemetry.selectors import usage_summary
from registry.telemetry.services import usage_record_batch, usage_record_idempotent
from tests.factories import ModelUsageFactory, RegisteredModelFactory
from tests.registry.operations.test_metrics import scrape

pytestmark = pytest.mark.django_db

partitions_migration = importlib.import_module("registry.migrations.0018_usage_partitions")

NOW = timezone.now().replace(microsecond=0)
TODAY = day_start(NOW.astimezone(UTC).date())


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("model_usage is partitioned on PostgreSQL only; SQLite keeps one table")


def partition_of(record: ModelUsage) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM model_usage WHERE id = %s", [record.pk])
        (name,) = cursor.fetchone()
    return str(name)


def test_a_record_lands_in_its_utc_days_partition_created_when_the_day_first_needs_one() -> None:
    model = RegisteredModelFactory()
    backfill = TODAY - timedelta(days=40, hours=-3)

    usage_record_batch(model=model, records=[{"timestamp": backfill, "token_count": 5}, {"token_count": 7}])

    stored = {record.token_count: partition_of(record) for record in ModelUsage.objects.filter(model=model)}
    assert stored == {5: partition_name(backfill.date()), 7: partition_name(NOW.astimezone(UTC).date())}
    # The trigger on the partitioned table still keeps the hourly rollups.
    end = timezone.now() + timedelta(seconds=1)
    summary = usage_summary(model_id=model.pk, bucket="day", start=backfill - timedelta(days=1), end=end)
    assert summary["totals"]["tokens"] == 12


def test_the_orm_creates_the_partition_a_record_needs_too() -> None:
    record = ModelUsageFactory(timestamp=TODAY - timedelta(days=400))
    moved = ModelUsageFactory(timestamp=NOW)

    ModelUsage.objects.filter(pk=moved.pk).update(timestamp=TODAY - timedelta(days=500))

    assert partition_of(record) == partition_name((TODAY - timedelta(days=400)).date())
    assert partition_of(moved) == partition_name((TODAY - timedelta(days=500)).date())


def test_the_days_ahead_have_their_partitions_and_a_second_call_creates_none() -> None:
    later = NOW + timedelta(days=30)

    created = usage_partitions_ahead(later)

    ahead = {partition_name((later + timedelta(days=n)).astimezone(UTC).date()) for n in range(DAYS_AHEAD + 1)}
    assert set(created) == ahead
    assert ahead <= {part.name for part in usage_partitions()}
    assert usage_partitions_ahead(later) == []


def test_retention_drops_each_day_wholly_past_it_and_deletes_no_row(settings: Any, client: Any) -> None:
    settings.RETENTION_USAGE_DAYS = 10
    model = RegisteredModelFactory()
    cutoff = day_start((NOW - timedelta(days=10)).astimezone(UTC).date())
    past = [cutoff - timedelta(days=2, minutes=1), cutoff - timedelta(minutes=1), cutoff - timedelta(seconds=1)]
    kept = [cutoff, NOW - timedelta(days=10, seconds=1), NOW]
    usage_record_batch(model=model, records=[{"timestamp": at, "token_count": 1} for at in past + kept])
    labels = (("table", "model_usage"),)
    before = scrape(client).get(("registry_retention_pruned_rows_total", labels), 0.0)

    with CaptureQueriesContext(connection) as captured:
        outcome = retention_apply(now=NOW)

    assert outcome.removed["model_usage"] == 3
    assert sorted(ModelUsage.objects.values_list("timestamp", flat=True)) == kept
    statements = [query["sql"] for query in captured.captured_queries]
    assert not [sql for sql in statements if sql.startswith('DELETE FROM "model_usage"')]
    dropped = {partition_name(at.date()) for at in past}
    assert [sql for sql in statements if sql.startswith("DROP TABLE")] == [
        f'DROP TABLE "{name}"' for name in sorted(dropped)
    ]
    assert not dropped & {part.name for part in usage_partitions()}
    assert scrape(client)[("registry_retention_pruned_rows_total", labels)] == before + 3


def test_a_retried_request_id_is_stored_once_across_days_and_again_after_its_horizon(settings: Any) -> None:
    settings.RETENTION_USAGE_REQUEST_IDS_DAYS = 7
    model = RegisteredModelFactory()
    first = {"request_id": "req-1", "timestamp": NOW - timedelta(days=2), "token_count": 1}
    retry = {**first, "timestamp": NOW, "token_count": 2}  # a different day: another partition

    assert usage_record_idempotent(model=model, records=[first]) == 1
    assert usage_record_idempotent(model=model, records=[retry]) == 0
    UsageRequestId.objects.update(recorded_at=NOW - timedelta(days=8))
    retention_apply(now=NOW)

    assert usage_record_idempotent(model=model, records=[retry]) == 1
    assert sorted(ModelUsage.objects.values_list("token_count", flat=True)) == [1, 2]


def checks_done() -> SimpleNamespace:
    """A schema editor for the migration's functions, once the test's deferred foreign-key checks ran.

    A migration starts its own transaction; here the rows the test wrote before leave deferred
    checks pending, and PostgreSQL alters no table under them.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return SimpleNamespace(connection=connection)


def single_table_with_rows(model: Any) -> list[int]:
    """model_usage as it was before 0018 (the migration's own reverse), holding rows of several days."""
    editor = checks_done()
    partitions_migration.unpartition(apps, editor)
    ids = []
    with connection.cursor() as cursor:
        for days, request_id in ((30, "old-1"), (30, None), (12, "old-2"), (2, None), (0, None)):
            cursor.execute(
                'INSERT INTO model_usage (model_id, model_name, "timestamp", token_count, request_count, '
                "error_count, request_id) VALUES (%s, %s, %s, 10, 1, 0, %s) RETURNING id",
                [model.pk, model.name, NOW - timedelta(days=days), request_id],
            )
            ids.append(cursor.fetchone()[0])
    return ids


def test_the_migration_keeps_the_existing_rows_in_a_legacy_partition_and_retention_empties_it(
    settings: Any,
) -> None:
    model = RegisteredModelFactory()
    ids = single_table_with_rows(model)
    editor = checks_done()

    partitions_migration.copy_request_ids(apps, editor)
    partitions_migration.partition(apps, editor)

    parts = usage_partitions()
    assert parts[0].name == "model_usage_legacy"
    assert parts[0].end == TODAY + timedelta(days=1)  # the day after the newest row
    assert sorted(ModelUsage.objects.values_list("pk", flat=True)) == ids
    assert {partition_of(record) for record in ModelUsage.objects.all()} == {"model_usage_legacy"}
    # New ids follow the old ones, and records go to the days' partitions.
    usage_record_batch(model=model, records=[{"timestamp": NOW + timedelta(days=1), "token_count": 3}])
    newest = ModelUsage.objects.get(token_count=3)
    assert newest.pk > max(ids)
    assert partition_of(newest) == partition_name((TODAY + timedelta(days=1)).date())
    # The request ids stored before still hold.
    assert usage_record_idempotent(model=model, records=[{"request_id": "old-2", "token_count": 4}]) == 0

    # Retention deletes the legacy rows past it while the partition still holds younger ones...
    settings.RETENTION_USAGE_DAYS = 10
    assert retention_apply(now=NOW).removed["model_usage"] == 3
    assert "model_usage_legacy" in {part.name for part in usage_partitions()}
    # ...and drops it once all of it is past.
    later = NOW + timedelta(days=11)  # the cutoff is tomorrow's start, the legacy partition's end
    assert retention_apply(now=later).removed["model_usage"] == 2
    assert "model_usage_legacy" not in {part.name for part in usage_partitions()}
    assert list(ModelUsage.objects.values_list("pk", flat=True)) == [newest.pk]


def test_the_migration_reversed_gives_back_one_table_with_every_row() -> None:
    model = RegisteredModelFactory()
    usage_record_batch(model=model, records=[{"timestamp": NOW - timedelta(days=d), "token_count": d} for d in (0, 5)])

    partitions_migration.unpartition(apps, checks_done())

    assert usage_partitions() == []
    assert sorted(ModelUsage.objects.values_list("token_count", flat=True)) == [0, 5]
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass('model_usage')")
        assert cursor.fetchone()[0] == "r"


def test_a_day_is_a_utc_day() -> None:
    assert day_start(datetime(2026, 3, 29, tzinfo=UTC).date()) == datetime(2026, 3, 29, tzinfo=UTC)
    assert partition_name(datetime(2026, 3, 29, 23, 59, tzinfo=UTC).date()) == "model_usage_p20260329"


def test_the_partitioned_tables_checks_are_the_ones_the_model_declares() -> None:
    """Word for word as Django writes them: ATTACH PARTITION refuses a table whose checks read otherwise."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE usage_shape (LIKE model_usage)")
        with connection.schema_editor() as editor:
            for constraint in ModelUsage._meta.constraints:
                statement = str(constraint.create_sql(ModelUsage, editor))
                cursor.execute(statement.replace('"model_usage"', "usage_shape", 1))

        def checks(table: str) -> dict[str, str]:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(%s) "
                "AND contype = 'c'",
                [table],
            )
            return dict(cursor.fetchall())

        declared = checks("usage_shape")
        assert declared
        assert checks("model_usage") == declared
